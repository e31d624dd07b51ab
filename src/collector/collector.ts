/**
 * Collector: WORKERS concurrent loops per queue, each claiming one batch at a time, writing it to the
 * sample store (idempotent: batch ledger + natural key), updating the live hierarchy, and only then
 * acking. A crash anywhere before the ack means redelivery, and the redelivered batch adds nothing.
 *
 * With a live hierarchy, a worker claims its next batch as soon as the current one is durable in the
 * store; the batch is acked when its hierarchy round has been written. Rounds coalesce every batch
 * that arrived meanwhile (up to WORKERS x MAX_UNACKED_PER_WORKER), so a GPU record is written once
 * per round instead of once per batch: DCGM exports are metric-major, and a 500-row batch touched
 * 500 GPUs, so acking batch by batch made etcd write about one GPU record per row.
 *
 * Bad rows: the store isolates the samples the database refuses (`unstorable_row`) and the samples
 * whose natural key holds another value (`conflicting_duplicate`) as dead letters and stores the
 * rest of the batch, so one bad row never fails its batch; the collector counts them
 * (`stats.unstorable`, `stats.conflicts`, `nexus_bad_rows_total{reason}`) and acks as usual.
 *
 * Failures: a retryable store error releases the batch and backs off with jitter; a payload that cannot
 * be decoded, or a batch that failed `maxDeliveries` times, is recorded as one dead letter for the
 * whole item (`undecodable_batch`, `batch_failed`) and acked so a poison batch cannot stall the
 * queue. That dead letter's ledger id is a hash of the topic and the payload: the same payload
 * delivered again (even after a restart, when queue item ids start over) is recorded once, and a
 * different one never collides with it.
 */
import { createHash } from 'node:crypto';
import { decodeBatch, payloadText } from '../domain/batch-codec.js';
import type { Batch } from '../domain/types.js';
import { isRetryable } from '../errors.js';
import type { HierarchyWriter } from '../hierarchy/writer.js';
import type { PipelineMetrics } from '../metrics/registry.js';
import type { ClaimedItem, Queue } from '../ports/queue.js';
import type { SampleStore, WriteResult } from '../ports/sample-store.js';
import type { Logger } from '../util/logger.js';
import { backoffDelay, sleep } from '../util/backoff.js';

/** Dead-letter reason codes of whole queue items, written by the collector, with what they mean. */
export const COLLECTOR_DEAD_LETTER_REASONS = {
  undecodable_batch: 'the queue item is not a batch of the current format; raw holds its first 1,000 bytes',
  batch_failed:
    'the batch failed maxDeliveries times with an error that is not a refused row (raw holds its first 1,000 bytes)',
} as const;

/** Ledger id of the dead letter recording a whole queue item: derived from its topic and payload. */
export function deadItemId(topic: string, payload: Uint8Array): string {
  const hash = createHash('sha256').update(topic).update('\u0000').update(payload).digest('hex');
  return `dead-item:${hash.slice(0, 40)}`;
}

/** The batch without the samples the store refused (the live hierarchy shows only stored values). */
export function storedPart(batch: Batch, result: WriteResult): Batch {
  const refused = result.refusedSamples;
  if (refused === undefined || refused.length === 0) return batch;
  const skip = new Set(refused);
  return { ...batch, samples: batch.samples.filter((_, i) => !skip.has(i)) };
}

/** Batches one worker may have written but not yet acked (waiting for their hierarchy round). */
export const MAX_UNACKED_PER_WORKER = 16;

/** Options of {@link Collector}. */
export interface CollectorOptions {
  queues: Queue[];
  store: SampleStore;
  /** Live hierarchy to keep current; absent in traditional mode (no coordination store). */
  hierarchy?: HierarchyWriter;
  consumerId: string;
  workers: number;
  /** How long one claim call waits for work before looping (ms). */
  pollIntervalMs: number;
  logger: Logger;
  metrics?: PipelineMetrics;
  /** Deliveries after which a failing batch is dead-lettered (default 5). */
  maxDeliveries?: number;
  /** Called after each batch is acked (tests, progress). */
  onBatch?: (batch: Batch, inserted: number) => void;
}

/** Counters of one collector since start. */
export interface CollectorStats {
  batches: number;
  duplicates: number;
  samplesWritten: number;
  failures: number;
  redeliveries: number;
  /** Samples the store refused as unstorable (each a dead letter `unstorable_row`). */
  unstorable: number;
  /** Samples refused for a different value under an existing natural key (`conflicting_duplicate`). */
  conflicts: number;
}

export class Collector {
  readonly stats: CollectorStats = {
    batches: 0,
    duplicates: 0,
    samplesWritten: 0,
    failures: 0,
    redeliveries: 0,
    unstorable: 0,
    conflicts: 0,
  };
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly log: Logger;

  /** True from start() until stop() is called. */
  get isRunning(): boolean {
    return this.running;
  }

  constructor(private readonly options: CollectorOptions) {
    this.log = options.logger.child({ component: 'collector', consumerId: options.consumerId });
  }

  /** Start the worker loops. */
  start(): void {
    if (this.running) return;
    this.running = true;
    for (const queue of this.options.queues) {
      for (let w = 0; w < this.options.workers; w++) this.loops.push(this.workerLoop(queue, w));
    }
    this.log.info(
      { workers: this.options.workers, topics: this.options.queues.map((q) => q.topic) },
      'collector started',
    );
  }

  /** Stop claiming, let in-flight batches finish, and resolve when every loop has ended. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async workerLoop(queue: Queue, worker: number): Promise<void> {
    let failuresInARow = 0;
    // Written batches waiting for their hierarchy round and ack; each resolves to false on failure.
    const unacked = new Set<Promise<boolean>>();
    // Batches of one failed hierarchy round fail together: count them as one failure, so one
    // transient error does not push the backoff to its cap.
    let lastFailureAt = -Infinity;
    // Set by a failure: the next loop waits backoffDelay(failuresInARow) once before claiming.
    let backoffPending = false;
    const settle = (ok: boolean): void => {
      if (ok) {
        failuresInARow = 0;
        return;
      }
      const now = performance.now();
      if (now - lastFailureAt > 50) failuresInARow += 1;
      lastFailureAt = now;
      backoffPending = true;
    };
    try {
      while (this.running) {
        if (unacked.size >= MAX_UNACKED_PER_WORKER) await Promise.race(unacked);
        if (backoffPending) {
          backoffPending = false;
          await sleep(backoffDelay(failuresInARow));
        }
        if (!this.running) break;
        let items: ClaimedItem[];
        try {
          items = await queue.claim(this.options.consumerId, { max: 1, waitMs: this.options.pollIntervalMs });
        } catch (error) {
          if (!this.running) break;
          failuresInARow += 1;
          backoffPending = true;
          this.log.warn({ err: error, worker, topic: queue.topic }, 'claim failed; backing off');
          continue;
        }
        for (const item of items) {
          const done = await this.handle(queue, item);
          if (typeof done === 'boolean') {
            settle(done);
            continue;
          }
          const tracked = done.acked.then((ok) => {
            unacked.delete(tracked);
            settle(ok);
            return ok;
          });
          unacked.add(tracked);
        }
      }
    } finally {
      // Stopping: the written batches still get their hierarchy round and ack (or a release).
      await Promise.all(unacked);
    }
  }

  /**
   * Process one claimed item. Resolves to whether it succeeded (false: it failed and was given
   * back) once it is acked; with a live hierarchy, as soon as the batch is durable in the store, to
   * `acked`, the same answer once its hierarchy round and ack are done.
   */
  private async handle(queue: Queue, item: ClaimedItem): Promise<boolean | { acked: Promise<boolean> }> {
    const { store, hierarchy, metrics } = this.options;
    if (item.deliveries > 1) {
      this.stats.redeliveries += 1;
      // A previous claimer crashed, stalled or failed: the batch comes again (its write is idempotent).
      this.log.info({ item: item.id, deliveries: item.deliveries, topic: queue.topic }, 'redelivered batch');
    }

    let batch: Batch;
    try {
      batch = decodeBatch(item.payload);
    } catch (error) {
      await this.deadLetterWholeItem(queue, item, 'undecodable_batch', String(error));
      return true;
    }

    let result: WriteResult;
    try {
      const started = performance.now();
      result = await store.writeBatch(batch);
      metrics?.writeLatency.observe((performance.now() - started) / 1000);
    } catch (error) {
      return this.failed(queue, item, batch, error);
    }
    if (!hierarchy) return this.acknowledge(queue, item, batch, result);
    // Wrapped: an async function returning a bare promise would wait for it.
    return {
      acked: hierarchy.apply(storedPart(batch, result)).then(
        () => this.acknowledge(queue, item, batch, result),
        (error: unknown) => this.failed(queue, item, batch, error),
      ),
    };
  }

  /** Ack a batch that is durable (and in the hierarchy); counts it. */
  private async acknowledge(
    queue: Queue,
    item: ClaimedItem,
    batch: Batch,
    result: WriteResult,
  ): Promise<boolean> {
    const { metrics } = this.options;
    try {
      const acked = await queue.ack(item);
      if (!acked)
        this.log.warn({ batch: batch.id }, 'claim expired before ack; the batch will be redelivered');
    } catch (error) {
      return this.failed(queue, item, batch, error);
    }
    this.stats.batches += 1;
    this.stats.samplesWritten += result.inserted;
    this.stats.unstorable += result.unstorable;
    this.stats.conflicts += result.conflicts;
    if (result.duplicate) {
      this.stats.duplicates += 1;
      metrics?.batchesDuplicate.inc();
    }
    metrics?.batchesAcked.inc();
    metrics?.samplesWritten.inc(result.inserted);
    if (result.unstorable > 0) metrics?.badRows.inc({ reason: 'unstorable_row' }, result.unstorable);
    if (result.conflicts > 0) metrics?.badRows.inc({ reason: 'conflicting_duplicate' }, result.conflicts);
    if (result.unstorable + result.conflicts > 0) {
      this.log.warn(
        { batch: batch.id, unstorable: result.unstorable, conflicts: result.conflicts },
        'samples refused by the store were dead-lettered; the rest of the batch is stored',
      );
    }
    try {
      this.options.onBatch?.(batch, result.inserted);
    } catch (error) {
      // The batch is acked; a failing observer must not turn into a redelivery or a dead worker.
      this.log.error({ err: error, batch: batch.id }, 'onBatch callback failed');
    }
    return true;
  }

  /** A batch whose write, hierarchy round or ack failed: dead-letter a poison batch, else give it back. */
  private async failed(queue: Queue, item: ClaimedItem, batch: Batch, error: unknown): Promise<boolean> {
    this.stats.failures += 1;
    const maxDeliveries = this.options.maxDeliveries ?? 5;
    if (!isRetryable(error) && item.deliveries >= maxDeliveries) {
      await this.deadLetterWholeItem(queue, item, 'batch_failed', String(error), batch);
      return true;
    }
    this.log.warn({ err: error, batch: batch.id, deliveries: item.deliveries }, 'batch failed; releasing it');
    await queue.release(item).catch(() => undefined);
    return false;
  }

  private async deadLetterWholeItem(
    queue: Queue,
    item: ClaimedItem,
    reason: keyof typeof COLLECTOR_DEAD_LETTER_REASONS,
    detail: string,
    batch?: Batch,
  ): Promise<void> {
    this.log.error({ item: item.id, reason, detail }, 'dead-lettering a whole queue item');
    const raw = payloadText(item.payload, 1000);
    try {
      await this.options.store.writeBatch({
        id: deadItemId(queue.topic, item.payload),
        source: batch?.source ?? `queue:${queue.topic}`,
        samples: [],
        deadLetters: [{ source: batch?.source ?? `queue:${queue.topic}`, line: 0, raw, reason, detail }],
      });
      this.options.metrics?.badRows.inc({ reason });
      await queue.ack(item);
    } catch (error) {
      this.log.error({ err: error, item: item.id }, 'could not dead-letter the item; releasing it');
      await queue.release(item).catch(() => undefined);
    }
  }
}
