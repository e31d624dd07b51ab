/**
 * DCGM CSV reader: record splitter + header mapping + row validation over a chunk stream.
 * Yields one array of row results per input chunk so per-row overhead stays low; bad rows become
 * dead letters and never stop the stream.
 */
import { NexusError } from '../errors.js';
import { CsvRecordSplitter, unescapeField, type CsvRecord } from './csv-records.js';
import {
  checkHeader,
  defaultColumns,
  DCGM_COLUMNS,
  parseRfc3339,
  RowValidator,
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
}

/**
 * Synchronous push parser behind {@link readDcgm}: feed chunks, get row results. The first record
 * is the header; a headerless input whose first row is a standard 12-column DCGM row is read with
 * the standard column order.
 */
export class DcgmParser {
  private readonly splitter: CsvRecordSplitter;
  private readonly options: DcgmReadOptions;
  private readonly now: () => number;
  private validator: RowValidator | null = null;

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
   * Parse one chunk.
   * @throws NexusError('INPUT_UNREADABLE') when the header lacks a required column
   */
  push(chunk: Buffer | string): RowResult[] {
    return this.process(this.splitter.push(chunk));
  }

  /** Finish the input (a last line without a line feed). */
  end(): RowResult[] {
    return this.process(this.splitter.end());
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
      this.validator = this.headerValidator(record);
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

  /** A validator for the header record, null if it is a data row, or a thrown error. */
  private headerValidator(record: CsvRecord & { ok: true }): RowValidator | null {
    const fields = record.escaped === 0 ? record.fields : record.fields.map(unescapeField);
    const check = checkHeader(fields);
    if (check.ok) return new RowValidator(check.columns, check.width, this.options, fields.slice());
    if (fields.length === DCGM_COLUMNS.length && !Number.isNaN(parseRfc3339(fields[0]!))) return null;
    throw new NexusError('INPUT_UNREADABLE', `${this.options.source}: ${check.detail}`, {
      details: { source: this.options.source, missing: check.missing, line: record.line },
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
 * for a last line without a line feed. Never throws on bad rows: they come back as dead letters.
 *
 * @throws NexusError('INPUT_UNREADABLE') when the stream fails (e.g. the file vanished) or the
 *   header lacks a required column
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
        if (error instanceof NexusError) throw error;
        throw new NexusError(
          'INPUT_UNREADABLE',
          `cannot read ${options.source}: ${(error as Error).message}`,
          {
            cause: error,
            details: { source: options.source },
          },
        );
      }
      if (next.done) {
        done = true;
        break;
      }
      const rows = parser.push(next.value);
      if (rows.length > 0) yield rows;
    }
  } finally {
    // The consumer stopped early: release the underlying stream (closes a file handle).
    if (!done) await iterator.return?.();
  }
  const rest = parser.end();
  if (rest.length > 0) yield rest;
}
