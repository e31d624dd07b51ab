/**
 * Types shared by the PromQL engine (src/promql/engine.ts) and its callers: the label matchers a
 * query's selectors ask the store for, the series the store answers with, the values a query
 * returns, and the error a query fails with (mapped to Prometheus' `errorType`).
 */

/** A label set in Prometheus' sense; the metric name is the `__name__` label. */
export type Labels = Record<string, string>;

/** One label matcher of a selector: `name op "value"`. Regexes are fully anchored, as in Prometheus. */
export interface LabelMatcher {
  name: string;
  type: '=' | '!=' | '=~' | '!~';
  value: string;
}

/** What one selector of a query needs from the store: matching series, samples in [startMs, endMs]. */
export interface SeriesSelection {
  matchers: readonly LabelMatcher[];
  /** Inclusive bounds, ms since the epoch. */
  startMs: number;
  endMs: number;
}

/** One stored series with its samples in the selected window, oldest first. */
export interface SeriesData {
  labels: Labels;
  /** Sample times, ms since the epoch, strictly ascending. */
  timestamps: readonly number[];
  /** Sample values, one per timestamp. */
  values: readonly number[];
}

/** Where the engine reads series from (the sample store, or an in-memory set in tests). */
export interface Queryable {
  /** Every series matching all `matchers` that has a sample in the window, with those samples. */
  select(selection: SeriesSelection, signal?: AbortSignal): Promise<SeriesData[]>;
}

/** A point of a vector or matrix: time in ms, value. */
export interface Point {
  t: number;
  v: number;
}

/** A query's result, shaped like Prometheus' `data` (times in ms; the HTTP layer formats them). */
export type QueryValue =
  | { resultType: 'vector'; result: { metric: Labels; point: Point }[] }
  | { resultType: 'matrix'; result: { metric: Labels; points: Point[] }[] }
  | { resultType: 'scalar'; result: Point }
  | { resultType: 'string'; result: { t: number; v: string } };

/** Limits and settings of one evaluation. */
export interface QueryOptions {
  /** Lookback delta for instant selectors (staleness), ms. Default 5 minutes, as Prometheus. */
  lookbackMs?: number;
  /** Most samples one query may load or produce at once (Prometheus' --query.max-samples). */
  maxSamples?: number;
  /** Aborts the evaluation (timeout). */
  signal?: AbortSignal;
}

/** Prometheus' error types, as in `{"status":"error","errorType":...}`. */
export type PromErrorType = 'bad_data' | 'execution' | 'timeout' | 'canceled' | 'internal';

/** A query that cannot be answered: a parse error, an unsupported construct, a limit, a timeout. */
export class PromQLError extends Error {
  constructor(
    readonly errorType: PromErrorType,
    message: string,
  ) {
    super(message);
    this.name = 'PromQLError';
  }
}
