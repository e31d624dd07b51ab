/**
 * Groups parsed rows into batches of at most `batchSize` samples (dead letters ride along with the
 * samples of the same span of input) and hands each full batch to `publish`, one at a time, in order.
 * `flush()` publishes a partial batch; the streamer calls it on its flush interval and at end of input.
 */
import { encodeNewBatch } from '../domain/batch-codec.js';
import type { Batch, DeadLetter, Sample, ScrapePresence } from '../domain/types.js';
import type { RowResult } from '../ingest/dcgm-reader.js';

export class BatchAssembler {
  private samples: Sample[] = [];
  private deadLetters: DeadLetter[] = [];
  private publishing: Promise<void> = Promise.resolve();
  /** When the oldest pending row arrived (ms), or undefined when nothing is pending. */
  private oldestPendingAt: number | undefined;

  constructor(
    private readonly source: string,
    private readonly batchSize: number,
    /** Receives each batch with its encoded queue payload. */
    private readonly publish: (batch: Batch, payload: Uint8Array) => Promise<void>,
  ) {}

  /** Rows waiting for the next batch. */
  get pending(): number {
    return this.samples.length + this.deadLetters.length;
  }

  /** Add parsed rows; resolves once every batch they completed has been published. */
  async add(rows: RowResult[]): Promise<void> {
    if (rows.length > 0) this.oldestPendingAt ??= Date.now();
    for (const row of rows) {
      if (row.ok) this.samples.push(row.sample);
      else this.deadLetters.push(row.deadLetter);
      if (this.samples.length + this.deadLetters.length >= this.batchSize) await this.flush();
    }
  }

  /**
   * Flush when the oldest pending row has waited `maxAgeMs`: a slow source (follow, stdin) still
   * publishes promptly, while a fast one keeps full, reproducible batch boundaries.
   */
  flushIfOlderThan(maxAgeMs: number): Promise<void> {
    if (this.oldestPendingAt !== undefined && Date.now() - this.oldestPendingAt >= maxAgeMs)
      return this.flush();
    return this.publishing;
  }

  /**
   * Publish what is pending as one batch (nothing when empty); publishes stay in order. With
   * `presence` (the end of a complete scrape) a batch is published even when nothing is pending,
   * carrying it.
   */
  flush(presence?: ScrapePresence): Promise<void> {
    if (this.pending > 0 || presence !== undefined) {
      const samples = this.samples;
      const deadLetters = this.deadLetters;
      this.samples = [];
      this.deadLetters = [];
      this.oldestPendingAt = undefined;
      const { id, payload } = encodeNewBatch(this.source, samples, deadLetters, presence);
      const batch: Batch = { id, source: this.source, samples, deadLetters };
      if (presence !== undefined) batch.presence = presence;
      this.publishing = this.publishing.then(() => this.publish(batch, payload));
    }
    return this.publishing;
  }
}
