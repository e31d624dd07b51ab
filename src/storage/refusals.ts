/**
 * Samples the store refuses, and how they become dead letters (reasons in
 * `STORE_DEAD_LETTER_REASONS` of the port):
 *
 * - `unstorable_row`: the database cannot hold the sample. Found without SQL when its time is
 *   outside years 0001-9999 or its value is not finite; otherwise by the write path splitting a
 *   part of the batch the database refused (see `write-batch.ts`) until the single rows are left.
 *   Which errors mean "this input is refused" and so justify splitting: {@link isUnstorableError}.
 * - `conflicting_duplicate`: the natural key (series, time) already holds another value.
 *
 * Samples do not carry their input line, so such a dead letter has `line` 0, `raw` is the sample
 * reconstructed as a DCGM CSV row (not the original text), and `detail` names the batch and the
 * sample's index in it, then the cause (the database's message, or both values).
 */
import type { Batch, DeadLetter, Sample } from '../domain/types.js';
import type { StoreDeadLetterReason } from '../ports/sample-store.js';
import { UNIQUE_VIOLATION, sqlState } from './sql-executor.js';

/** A sample of a batch the store refused. */
export interface RefusedSample {
  /** Index of the sample in `batch.samples`. */
  index: number;
  reason: StoreDeadLetterReason;
  /** The cause: the database's message, or the stored and the refused value. */
  detail: string;
}

/**
 * A batch (or part of one) that cannot be encoded for the database. Counts as refused data: the
 * write path splits the part and dead-letters what still fails (`BAD_REQUEST` if it escapes).
 */
export class InvalidBatchError extends Error {
  override readonly name = 'InvalidBatchError';
}

/** Accepted sample times: years 0001 to 9999 (inside both JS Date's and PostgreSQL's range). */
export const MIN_TS_MS = -62_135_596_800_000; // 0001-01-01T00:00:00Z (Date.UTC maps years 0-99 to 19xx)
export const MAX_TS_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Longest `raw` kept on a store dead letter (characters), as at ingest. */
export const MAX_REFUSED_RAW = 1000;

/** Why the database cannot hold this sample, found without asking it; undefined when it can try. */
export function unstorableSampleProblem(s: Sample): string | undefined {
  return unstorablePointProblem(s.timestampMs, s.value);
}

/** {@link unstorableSampleProblem} of a sample's time and value (its series is never the problem). */
export function unstorablePointProblem(ts: number, value: number): string | undefined {
  if (!(ts >= MIN_TS_MS && ts <= MAX_TS_MS)) return `timestamp ${ts} ms is outside the years 0001-9999`;
  if (!Number.isFinite(value)) return `value ${value} is not finite`;
  return undefined;
}

/**
 * True when `error` means the database refuses some input row, so that splitting the rows can
 * isolate it: data exceptions (SQLSTATE class 22), integrity violations (23) other than the
 * natural-key conflict the write path handles itself, program limits (54, e.g. 54000 "index row
 * size exceeds maximum"), and {@link InvalidBatchError}. Connection loss, serialization failures,
 * lock timeouts, permission or schema errors are not: splitting would not help (and would
 * dead-letter good rows), so those fail the write as before.
 */
export function isUnstorableError(error: unknown): boolean {
  if (error instanceof InvalidBatchError) return true;
  const state = sqlState(error);
  if (state === undefined || state === UNIQUE_VIOLATION) return false;
  return state.startsWith('22') || state.startsWith('23') || state.startsWith('54');
}

/** The database's message of `error`, with its SQLSTATE when it has one. */
export function describeStoreError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const state = sqlState(error);
  return state === undefined ? message : `${message} (SQLSTATE ${state})`;
}

/** A CSV field, quoted when it needs to be (RFC 4180). */
function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Labels in DCGM's `labels_raw` form: `key="value",...` with `\\`, `\"` and `\n` escaped. */
function labelsRaw(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`)
    .join(',');
}

/**
 * The sample as a DCGM CSV row (timestamp, metric_name, gpu_id, device, uuid, modelName, Hostname,
 * container, pod, namespace, value, labels_raw), truncated to {@link MAX_REFUSED_RAW} characters.
 * Reconstructed from the sample: the timestamp is RFC 3339 in UTC (raw ms when it is no valid date).
 */
export function reconstructRow(s: Sample): string {
  const date = new Date(s.timestampMs);
  const ts = Number.isNaN(date.getTime()) ? String(s.timestampMs) : date.toISOString();
  const row = [
    ts,
    s.metric,
    s.gpuId,
    s.device,
    s.uuid,
    s.modelName,
    s.hostname,
    s.container,
    s.pod,
    s.namespace,
    String(s.value),
    labelsRaw(s.labels),
  ]
    .map(csvField)
    .join(',');
  return row.length > MAX_REFUSED_RAW ? row.slice(0, MAX_REFUSED_RAW) : row;
}

/** The dead letters of refused samples, in the order given. */
export function refusalDeadLetters(batch: Batch, refused: readonly RefusedSample[]): DeadLetter[] {
  const n = batch.samples.length;
  return refused.map((r) => ({
    source: batch.source,
    line: 0,
    raw: reconstructRow(batch.samples[r.index] as Sample),
    reason: r.reason,
    detail: `batch ${batch.id}, sample ${r.index} of ${n}: ${r.detail}`,
  }));
}
