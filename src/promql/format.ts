/**
 * Prometheus' HTTP API JSON shapes (api/v1): success envelopes, query results with values as
 * `[unixSeconds, "text"]`, and error bodies with the HTTP status Prometheus gives each error type.
 */
import type { Labels, PromErrorType, QueryValue } from './types.js';

/** Every `errorType` the API answers with: the engine's, plus `unavailable` (store overloaded or down). */
export type ApiErrorType = PromErrorType | 'unavailable' | 'not_found';

/** HTTP status of each error type, as Prometheus' api/v1 `respondError` maps them. */
export const ERROR_STATUS: Readonly<Record<ApiErrorType, number>> = {
  bad_data: 400,
  execution: 422,
  timeout: 503,
  // Prometheus' "client closed connection" status.
  canceled: 499,
  internal: 500,
  unavailable: 503,
  not_found: 404,
};

/** An error body: `{"status":"error","errorType":...,"error":...}`. */
export interface ErrorBody {
  status: 'error';
  errorType: ApiErrorType;
  error: string;
}

/** A success body: `{"status":"success","data":...}` (plus `warnings` when there are some). */
export interface SuccessBody<T> {
  status: 'success';
  data: T;
  warnings?: string[];
}

/** The error body of `errorType`. */
export function errorBody(errorType: ApiErrorType, message: string): ErrorBody {
  return { status: 'error', errorType, error: message };
}

/** The success body around `data`. */
export function successBody<T>(data: T, warnings: readonly string[] = []): SuccessBody<T> {
  return warnings.length > 0
    ? { status: 'success', data, warnings: [...warnings] }
    : { status: 'success', data };
}

/**
 * A float as Go's `strconv.FormatFloat(v, 'f', -1, 64)` writes it: the shortest decimal that reads
 * back as the same float, never in exponent form (`1e21` -> `"1000000000000000000000"`, `1e-7` ->
 * `"0.0000001"`), `"NaN"`, `"+Inf"`, `"-Inf"`, and `"-0"` for negative zero.
 */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Object.is(v, -0)) return '-0';
  const s = String(v);
  const e = s.indexOf('e');
  if (e < 0) return s;
  // Shortest digits from JS, moved into place: d.ddd e±n.
  const negative = s.startsWith('-');
  const mantissa = s.slice(negative ? 1 : 0, e);
  const exponent = Number(s.slice(e + 1));
  const digits = mantissa.replace('.', '');
  const point = (mantissa.indexOf('.') < 0 ? mantissa.length : mantissa.indexOf('.')) + exponent;
  let out: string;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${out}` : out;
}

/** A time in ms as Prometheus' API writes it: float seconds (ms precision). */
export function formatTime(ms: number): number {
  return ms / 1000;
}

/** One `[unixSeconds, "value"]` pair. */
export type SamplePair = [number, string];

function pair(t: number, v: number): SamplePair {
  return [formatTime(t), formatValue(v)];
}

/** Prometheus' `data` of a query result. */
export type QueryData =
  | { resultType: 'vector'; result: { metric: Labels; value: SamplePair }[] }
  | { resultType: 'matrix'; result: { metric: Labels; values: SamplePair[] }[] }
  | { resultType: 'scalar'; result: SamplePair }
  | { resultType: 'string'; result: [number, string] };

/** An engine result as Prometheus' `data` object. */
export function formatQueryValue(value: QueryValue): QueryData {
  switch (value.resultType) {
    case 'vector':
      return {
        resultType: 'vector',
        result: value.result.map((s) => ({ metric: s.metric, value: pair(s.point.t, s.point.v) })),
      };
    case 'matrix':
      return {
        resultType: 'matrix',
        result: value.result.map((s) => ({ metric: s.metric, values: s.points.map((p) => pair(p.t, p.v)) })),
      };
    case 'scalar':
      return { resultType: 'scalar', result: pair(value.result.t, value.result.v) };
    case 'string':
      return { resultType: 'string', result: [formatTime(value.result.t), value.result.v] };
  }
}
