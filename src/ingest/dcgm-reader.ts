/**
 * DCGM CSV reader: record splitter + header mapping + row validation over a chunk stream.
 * Yields one array of row results per input chunk so per-row overhead stays low; bad rows become
 * dead letters and never stop the stream.
 *
 * How the stream ended matters for its last record: at a true end of input a record without a line
 * terminator is an `unterminated_record` dead letter (the input may have been cut, e.g. `head -c`);
 * when the stream ended because `signal` aborted (SIGTERM, Ctrl-C), that incomplete record is dropped
 * silently and every complete record before it is kept.
 */
import { NexusError } from '../errors.js';
import { CsvRecordSplitter, unescapeField, type CsvRecord } from './csv-records.js';
import {
  checkHeader,
  defaultColumns,
  DCGM_COLUMNS,
  parseRfc3339,
  REQUIRED_COLUMNS,
  RowValidator,
  type DeadLetterReason,
  type RowResult,
} from './validate.js';

export type { RowResult } from './validate.js';

/** Options of {@link readDcgm} and {@link DcgmParser}. */
export interface DcgmReadOptions {
  /** Source name recorded on dead letters (file path, `stdin`, ...). */
  source: string;
  /** Cluster the samples belong to (CLUSTER_ID). */
  clusterId: string;
  /** `original` (default) keeps row timestamps; `now` shifts them so the first row lands on the processing time. */
  timestamps?: 'original' | 'now';
  /** Largest field in bytes before the row is `oversized_field`. Default 4 KiB. */
  maxFieldBytes?: number;
  /** Largest record in bytes before the row is refused. Default 64 KiB. */
  maxRecordBytes?: number;
  /** How far ahead of now a timestamp may be before it is `future_timestamp`. Default one day. */
  futureToleranceMs?: number;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
  /**
   * The signal that stops the source ({@link readDcgm} only). When the chunk stream ends and it has
   * aborted, the input was stopped rather than ended: an incomplete trailing record is dropped (no
   * sample, no dead letter) instead of becoming `unterminated_record`.
   */
  signal?: AbortSignal;
  /**
   * For one file of a directory: a header that is not DCGM becomes one `bad_header` dead letter, and
   * a read failure one `unreadable_source` dead letter, after which the reader ends, instead of
   * throwing INPUT_UNREADABLE (which stops the whole input). Default false.
   */
  skipUnreadable?: boolean;
}

/** Lower-case DCGM column names, to tell a (broken) header from a data row. */
const COLUMN_NAMES = new Set<string>(DCGM_COLUMNS.map((c) => c.toLowerCase()));

/**
 * Synchronous push parser behind {@link readDcgm}: feed chunks, get row results. The first record
 * is the header. A first record that names at most one DCGM column and has the standard 12 fields
 * (or starts with an RFC 3339 timestamp) is taken as data of a headerless input: the standard column
 * order applies and that record is validated like any row (a dead letter with its real reason when
 * it is bad). Anything else that is not a usable header is refused (see {@link push}).
 */
export class DcgmParser {
  private readonly splitter: CsvRecordSplitter;
  private readonly options: DcgmReadOptions;
  private readonly now: () => number;
  private validator: RowValidator | null = null;
  private isRefused = false;

  constructor(options: DcgmReadOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.splitter = new CsvRecordSplitter({
      maxFieldBytes: options.maxFieldBytes,
      maxRecordBytes: options.maxRecordBytes,
      // labels_raw is cached in its written form; the validator unescapes on a cache miss.
      unescape: false,
    });
  }

  /**
   * Parse one chunk. After a refused header (with `skipUnreadable`) chunks are ignored.
   * @throws NexusError('INPUT_UNREADABLE') when the header lacks a required column or the input is
   *   not DCGM CSV (without `skipUnreadable`; with it, one `bad_header` dead letter instead)
   */
  push(chunk: Buffer | string): RowResult[] {
    if (this.isRefused) return [];
    return this.process(this.splitter.push(chunk));
  }

  /** Finish the input at its true end (a last record without a line terminator is `unterminated_record`). */
  end(): RowResult[] {
    if (this.isRefused) return [];
    return this.process(this.splitter.end());
  }

  /** The input was stopped early (aborted): drop the incomplete trailing record, if any. */
  abort(): void {
    this.splitter.abort();
  }

  /** True once the header was refused with `skipUnreadable`: the rest of the input is not read. */
  get refused(): boolean {
    return this.isRefused;
  }

  /** Physical line number where the next record starts. */
  get nextLine(): number {
    return this.splitter.nextLine;
  }

  /** A dead letter for this source that is not tied to a parsed row. */
  deadLetter(line: number, raw: string, reason: DeadLetterReason, detail: string): RowResult {
    return this.fallbackValidator().deadLetter(line, raw, reason, detail);
  }

  private process(records: CsvRecord[]): RowResult[] {
    const out: RowResult[] = [];
    if (records.length === 0) return out;
    const nowMs = this.now();
    let k = 0;
    while (this.validator === null && k < records.length) {
      const record = records[k++]!;
      if (!record.ok) {
        // Cannot be a usable header; report it and keep looking.
        out.push(this.fallbackValidator().validate(record, nowMs)!);
        continue;
      }
      const header = this.headerValidator(record);
      if (typeof header === 'string') {
        // Refused with skipUnreadable: one dead letter for the whole file.
        this.isRefused = true;
        out.push(this.deadLetter(record.line, record.raw, 'bad_header', header));
        return out;
      }
      this.validator = header;
      if (this.validator !== null) continue;
      // Headerless input: this record is data in the standard column order.
      this.validator = new RowValidator(defaultColumns(), DCGM_COLUMNS.length, this.options, [
        ...DCGM_COLUMNS,
      ]);
      k--;
    }
    const v = this.validator;
    if (v === null) return out;
    for (; k < records.length; k++) {
      const r = v.validate(records[k]!, nowMs);
      if (r !== null) out.push(r);
    }
    return out;
  }

  /**
   * A validator for the header record; null if it is a data row of a headerless input; the reason
   * it is refused (with `skipUnreadable`), or a thrown error.
   */
  private headerValidator(record: CsvRecord & { ok: true }): RowValidator | null | string {
    const fields = record.escaped === 0 ? record.fields : record.fields.map(unescapeField);
    const check = checkHeader(fields);
    if (check.ok) return new RowValidator(check.columns, check.width, this.options, fields.slice());
    let named = 0;
    for (const f of fields) if (COLUMN_NAMES.has(f.trim().toLowerCase())) named++;
    let detail: string;
    let missing: readonly string[] = check.missing;
    if (named >= 2) {
      // Looks like a header, but a required column is missing.
      detail = check.detail;
    } else if (fields.length === DCGM_COLUMNS.length || !Number.isNaN(parseRfc3339(fields[0]!))) {
      return null;
    } else {
      missing = [];
      detail =
        `not DCGM CSV: line ${record.line} has ${fields.length} field(s) and is neither a header naming the ` +
        `columns ${REQUIRED_COLUMNS.join(', ')} nor a ${DCGM_COLUMNS.length}-field DCGM row`;
    }
    if (this.options.skipUnreadable === true) return detail;
    throw new NexusError('INPUT_UNREADABLE', `${this.options.source}: ${detail}`, {
      details: { source: this.options.source, missing, line: record.line },
    });
  }

  private fallbackValidator(): RowValidator {
    return new RowValidator(defaultColumns(), DCGM_COLUMNS.length, this.options);
  }
}

/**
 * Read DCGM CSV rows from a chunk stream.
 *
 * Yields one array per input chunk (chunks that complete no row yield nothing) and a final array
 * for what the end of input completes. Never throws on bad rows: they come back as dead letters.
 * When the stream ends and `options.signal` has aborted, an incomplete trailing record is dropped;
 * otherwise a last record without a line terminator is an `unterminated_record` dead letter.
 * With `options.skipUnreadable`, a read failure or a refused header yields one dead letter
 * (`unreadable_source` / `bad_header`) and ends the reader instead of throwing.
 *
 * @throws NexusError('INPUT_UNREADABLE') when the stream fails (e.g. the file vanished) or the
 *   input is not DCGM CSV / the header lacks a required column (without `skipUnreadable`)
 */
export async function* readDcgm(
  chunks: AsyncIterable<Buffer | string>,
  options: DcgmReadOptions,
): AsyncGenerator<RowResult[]> {
  const parser = new DcgmParser(options);
  const iterator = chunks[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      let next: IteratorResult<Buffer | string>;
      try {
        next = await iterator.next();
      } catch (error) {
        done = true;
        const message =
          error instanceof NexusError
            ? error.message
            : `cannot read ${options.source}: ${(error as Error).message}`;
        if (options.skipUnreadable === true) {
          // Rows before the failure were yielded; the record it cut is not known to be complete.
          parser.abort();
          yield [parser.deadLetter(parser.nextLine, '', 'unreadable_source', message)];
          return;
        }
        if (error instanceof NexusError) throw error;
        throw new NexusError('INPUT_UNREADABLE', message, {
          cause: error,
          details: { source: options.source },
        });
      }
      if (next.done) {
        done = true;
        break;
      }
      const rows = parser.push(next.value);
      if (rows.length > 0) yield rows;
      // A refused header: the rest of this input is not read.
      if (parser.refused) return;
    }
  } finally {
    // The consumer stopped early (or the header was refused): release the underlying stream.
    if (!done) await iterator.return?.();
  }
  if (options.signal?.aborted === true) {
    parser.abort();
    return;
  }
  const rest = parser.end();
  if (rest.length > 0) yield rest;
}
