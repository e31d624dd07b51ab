/**
 * Collector: WORKERS concurrent loops per queue, each claiming one batch at a time, writing it to the
 * sample store (idempotent: batch ledger + natural key), updating the live hierarchy, and only then
 * acking. A crash anywhere before the ack means redelivery, and the redelivered batch adds nothing.
 *
 * Failures: a retryable store error releases the batch and backs off with jitter; a payload that cannot
 * be decoded, or a batch that failed `maxDeliveries` times, is recorded as a dead letter and acked so a
 * poison batch cannot stall the queue.
 */
import { decodeBatch } from '../domain/batch-codec.js';
import type { Batch } from '../domain/types.js';
import { isRetryable } from '../errors.js';
import type { HierarchyWriter } from '../hierarchy/writer.js';
import type { PipelineMetrics } from '../metrics/registry.js';
import type { ClaimedItem, Queue } from '../ports/queue.js';
import type { SampleStore } from '../ports/sample-store.js';
import type { Logger } from '../util/logger.js';
import { backoffDelay, sleep } from '../util/backoff.js';

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
}

export class Collector {
  readonly stats: CollectorStats = {
    batches: 0,
    duplicates: 0,
    samplesWritten: 0,
    failures: 0,
    redeliveries: 0,
  };
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly log: Logger;

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
    while (this.running) {
      let items: ClaimedItem[];
      try {
        items = await queue.claim(this.options.consumerId, { max: 1, waitMs: this.options.pollIntervalMs });
      } catch (error) {
        if (!this.running) return;
        failuresInARow += 1;
        this.log.warn({ err: error, worker, topic: queue.topic }, 'claim failed; backing off');
        await sleep(backoffDelay(failuresInARow));
        continue;
      }
      for (const item of items) {
        const ok = await this.handle(queue, item);
        failuresInARow = ok ? 0 : failuresInARow + 1;
        if (!ok) await sleep(backoffDelay(failuresInARow));
      }
    }
  }

  /** Process one claimed item; false when it failed and was given back. */
  private async handle(queue: Queue, item: ClaimedItem): Promise<boolean> {
    const { store, hierarchy, metrics } = this.options;
    const maxDeliveries = this.options.maxDeliveries ?? 5;
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

    try {
      const started = performance.now();
      const result = await store.writeBatch(batch);
      metrics?.writeLatency.observe((performance.now() - started) / 1000);
      await hierarchy?.apply(batch);
      const acked = await queue.ack(item);
      if (!acked)
        this.log.warn({ batch: batch.id }, 'claim expired before ack; the batch will be redelivered');
      this.stats.batches += 1;
      this.stats.samplesWritten += result.inserted;
      if (result.duplicate) {
        this.stats.duplicates += 1;
        metrics?.batchesDuplicate.inc();
      }
      metrics?.batchesAcked.inc();
      metrics?.samplesWritten.inc(result.inserted);
      this.options.onBatch?.(batch, result.inserted);
      return true;
    } catch (error) {
      this.stats.failures += 1;
      if (!isRetryable(error) && item.deliveries >= maxDeliveries) {
        await this.deadLetterWholeItem(queue, item, 'batch_failed', String(error), batch);
        return true;
      }
      this.log.warn(
        { err: error, batch: batch.id, deliveries: item.deliveries },
        'batch failed; releasing it',
      );
      await queue.release(item).catch(() => undefined);
      return false;
    }
  }

  private async deadLetterWholeItem(
    queue: Queue,
    item: ClaimedItem,
    reason: string,
    detail: string,
    batch?: Batch,
  ): Promise<void> {
    this.log.error({ item: item.id, reason, detail }, 'dead-lettering a whole queue item');
    const raw = Buffer.from(item.payload).toString('utf8', 0, Math.min(item.payload.length, 1000));
    try {
      await this.options.store.writeBatch({
        id: `dead-item:${queue.topic}:${item.id}`,
        source: batch?.source ?? `queue:${queue.topic}`,
        samples: [],
        deadLetters: [{ source: batch?.source ?? `queue:${queue.topic}`, line: 0, raw, reason, detail }],
      });
      await queue.ack(item);
    } catch (error) {
      this.log.error({ err: error, item: item.id }, 'could not dead-letter the item; releasing it');
      await queue.release(item).catch(() => undefined);
    }
  }
}
