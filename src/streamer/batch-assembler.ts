/**
 * Groups parsed rows into batches of at most `batchSize` samples (dead letters ride along with the
 * samples of the same span of input) and hands each full batch to `publish`, in order, with up to
 * `maxInFlight` publishes outstanding at once (a queue round trip per batch would otherwise leave
 * the reader idle: the etcd queue's enqueue is two round trips). `add` waits while the window is
 * full, so a slow queue still holds the reader back. `flush()` publishes a partial batch and waits for
 * every publish; the streamer calls it on its flush interval and at end of input. A batch whose
 * payload would pass MAX_BATCH_BYTES (many dead letters, long label sets) goes out as several.
 */
import { encodeBatchesWithin } from '../domain/batch-codec.js';
import type { Batch, DeadLetter, Sample, ScrapePresence } from '../domain/types.js';
import type { RowResult } from '../ingest/dcgm-reader.js';

export class BatchAssembler {
  private samples: Sample[] = [];
  private deadLetters: DeadLetter[] = [];
  /** Publishes started and not settled yet. */
  private readonly inFlight = new Set<Promise<void>>();
  /** The first publish that failed: every later add or flush rejects with it. */
  private failure: { error: unknown } | undefined;
  /** When the oldest pending row arrived (ms), or undefined when nothing is pending. */
  private oldestPendingAt: number | undefined;

  constructor(
    private readonly source: string,
    private readonly batchSize: number,
    /** Receives each batch with its encoded queue payload. */
    private readonly publish: (batch: Batch, payload: Uint8Array) => Promise<void>,
    /** Publishes outstanding at once (1: each batch is published before the next one starts). */
    private readonly maxInFlight = 1,
  ) {
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
      throw new RangeError(`maxInFlight must be an integer >= 1, got ${String(maxInFlight)}`);
  }

  /** Rows waiting for the next batch. */
  get pending(): number {
    return this.samples.length + this.deadLetters.length;
  }

  /** Add parsed rows; resolves once the batches they completed are published or in the window. */
  async add(rows: RowResult[]): Promise<void> {
    this.throwIfFailed();
    if (rows.length > 0) this.oldestPendingAt ??= Date.now();
    for (const row of rows) {
      if (row.ok) this.samples.push(row.sample);
      else this.deadLetters.push(row.deadLetter);
      if (this.samples.length + this.deadLetters.length >= this.batchSize) {
        this.cut();
        while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
        this.throwIfFailed();
      }
    }
    // Rows after the last cut wait for the flush timer from now.
    if (this.pending > 0) this.oldestPendingAt ??= Date.now();
  }

  /**
   * Flush when the oldest pending row has waited `maxAgeMs`: a slow source (follow, stdin) still
   * publishes promptly, while a fast one keeps full, reproducible batch boundaries.
   */
  flushIfOlderThan(maxAgeMs: number): Promise<void> {
    if (this.oldestPendingAt !== undefined && Date.now() - this.oldestPendingAt >= maxAgeMs)
      return this.flush();
    return Promise.resolve();
  }

  /**
   * Publish what is pending as one batch (nothing when empty) and wait for every publish started so
   * far. With `presence` (the end of a complete scrape) a batch is published even when nothing is
   * pending, carrying it.
   */
  async flush(presence?: ScrapePresence): Promise<void> {
    // After a failed publish nothing more is started (the caller stops; a rerun publishes again),
    // but the publishes still outstanding settle before this rejects.
    if (this.failure === undefined && (this.pending > 0 || presence !== undefined)) this.cut(presence);
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
    this.throwIfFailed();
  }

  /** Encode what is pending as the next batch and start publishing it. */
  private cut(presence?: ScrapePresence): void {
    const samples = this.samples;
    const deadLetters = this.deadLetters;
    this.samples = [];
    this.deadLetters = [];
    this.oldestPendingAt = undefined;
    for (const encoded of encodeBatchesWithin(this.source, samples, deadLetters, presence)) {
      const batch: Batch = {
        id: encoded.id,
        source: this.source,
        samples: encoded.samples,
        deadLetters: encoded.deadLetters,
      };
      if (encoded.presence !== undefined) batch.presence = encoded.presence;
      this.start(batch, encoded.payload);
    }
  }

  /** Start publishing one batch, tracked in the window. */
  private start(batch: Batch, payload: Uint8Array): void {
    let started: Promise<void>;
    try {
      started = this.publish(batch, payload);
    } catch (error) {
      started = Promise.reject(error);
    }
    const publishing: Promise<void> = started.then(
      () => {
        this.inFlight.delete(publishing);
      },
      (error: unknown) => {
        this.inFlight.delete(publishing);
        this.failure ??= { error };
      },
    );
    this.inFlight.add(publishing);
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }
}
