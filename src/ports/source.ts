/**
 * Source port: where the streamer's rows come from. A source yields chunks of parsed rows (samples
 * and dead letters) in input order, each named by the input it came from (a file, stdin, a scrape
 * target) and followed by a checkpoint from which a later read resumes. The streamer depends on
 * this port only; it owns batching, the flush timer and shutdown. Adapters: files and stdin (CSV or
 * exposition text, src/ingest/file-source.ts) and HTTP scrape targets (src/ingest/scrape-source.ts).
 *
 * Contract, for every adapter (test/conformance/source.ts):
 * - Rows of one input come in input order; a dead letter carries its input (`source`), its 1-based
 *   line and a reason code, and the input goes on after it.
 * - When `signal` aborts, the read ends promptly (no further chunk after the current one) without
 *   throwing; a record cut by the stop is dropped, never dead-lettered. Every row yielded before the
 *   stop was complete.
 * - `checkpoint` counts the records of its input yielded so far (this chunk included). A read given
 *   that checkpoint in `resume` yields exactly the records after it: the two reads together hold
 *   every record once. Adapters without positions (a live target) yield no checkpoint.
 * - A chunk with `end` closes one unit of its input (a file read to its end, one scrape): the
 *   streamer publishes what it holds for that input, with `end.presence` when given.
 */
import type { ScrapePresence } from '../domain/types.js';
import type { RowResult } from '../ingest/validate.js';

/** Where a read of one input stopped: the number of its records yielded so far. */
export interface SourceCheckpoint {
  /** The input's name (the chunks' `source`). */
  source: string;
  /** Replay count of a looping input (0 for the first pass). */
  pass: number;
  /** Records of this input and pass yielded so far. */
  records: number;
}

/** Rows read from one input. */
export interface SourceChunk {
  /** The input: a file path, `stdin`, a target URL. Batches and dead letters are named by it. */
  source: string;
  /** Parsed rows in input order. */
  rows: RowResult[];
  /** Position after these rows; absent for inputs without positions. */
  checkpoint?: SourceCheckpoint;
  /** Set when this chunk ends one unit of the input (a file, a scrape). */
  end?: { presence?: ScrapePresence };
}

/** Options of {@link RowSource.read}. */
export interface SourceReadOptions {
  /** Stops the read (SIGTERM, Ctrl-C, shutdown). */
  signal?: AbortSignal;
  /** Checkpoints of an earlier read: records up to each are not yielded again. */
  resume?: readonly SourceCheckpoint[];
}

/** A source of rows for the streamer. */
export interface RowSource {
  /** Human description for logs, e.g. `file data.csv` or `3 scrape targets`. */
  readonly description: string;
  /** Read the input, chunk by chunk, until it ends or `options.signal` aborts. */
  read(options?: SourceReadOptions): AsyncIterable<SourceChunk>;
}

/**
 * Drop the first `skip` records of `rows` (a resumed read): returns the rows after them and how
 * many of `skip` are left for the next chunk.
 */
export function skipRecords(rows: RowResult[], skip: number): { rows: RowResult[]; left: number } {
  if (skip <= 0) return { rows, left: 0 };
  if (skip >= rows.length) return { rows: [], left: skip - rows.length };
  return { rows: rows.slice(skip), left: 0 };
}
