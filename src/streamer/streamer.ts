/**
 * Streamer: reads rows from a source (the source port, src/ports/source.ts), turns them into batches
 * per input (bad rows become dead letters in the same batch), and publishes them to the queue.
 * Publishing waits when the queue is full, so a fast source never grows the queue without bound.
 * It owns batching, the flush timer (a quiet input still publishes promptly) and shutdown: when the
 * signal aborts, what was read is published before it returns. A chunk that ends a unit of its input
 * (a file, a scrape) flushes that input's batch, the last one carrying the scrape's presence.
 * Up to {@link PUBLISH_WINDOW} batches of an input are published at once; they start in input order
 * and may land in another (collectors never relied on order: latest values only move forward).
 *
 * {@link runStreamer} picks the adapter for a {@link StreamInput} (files and stdin, or scrape
 * targets: src/ingest/open-source.ts); {@link streamSource} runs any {@link RowSource}.
 */
import type { Batch } from '../domain/types.js';
import { openRowSource, type SourceInput } from '../ingest/open-source.js';
import type { PipelineMetrics } from '../metrics/registry.js';
import type { Queue } from '../ports/queue.js';
import type { RowSource, SourceCheckpoint } from '../ports/source.js';
import type { RowResult } from '../ingest/validate.js';
import type { Logger } from '../util/logger.js';
import { BatchAssembler } from './batch-assembler.js';
import { ProgressReporter, type ProgressCounts } from './progress.js';

export type { ScrapeInput } from '../ingest/scrape-source.js';

export interface StreamerOptions {
  queue: Queue;
  clusterId: string;
  batchSize: number;
  /** Publish a partial batch when input has been quiet this long (ms). */
  flushIntervalMs: number;
  timestamps: 'original' | 'now';
  logger: Logger;
  metrics?: PipelineMetrics;
  /** Show progress (terminal bar or periodic log lines). */
  progress?: boolean;
  /** Batches of one input being published at once (default {@link PUBLISH_WINDOW}). */
  publishWindow?: number;
}

/**
 * Batches of one input published at once by default: enough to hide a queue's round trips behind
 * reading and parsing (the etcd queue's enqueue is two), few enough that a stopped streamer has
 * little in flight.
 */
export const PUBLISH_WINDOW = 4;

/** What {@link runStreamer} reads (a file spec or scrape targets), and the signal that stops it. */
export interface StreamInput extends SourceInput {
  signal?: AbortSignal;
}

/** What one streamer run read and published. */
export interface StreamSummary extends ProgressCounts {
  seconds: number;
  rowsPerSecond: number;
}

/** Read every source of `input` to its end (or until aborted) and publish its batches. */
export function runStreamer(input: StreamInput, options: StreamerOptions): Promise<StreamSummary> {
  const source = openRowSource(input, options.clusterId, options.timestamps, options.logger);
  return streamSource(source, { ...options, signal: input.signal });
}

/** Options of {@link streamSource}: the streamer's, plus the stop signal and where to resume. */
export interface StreamSourceOptions extends StreamerOptions {
  signal?: AbortSignal;
  /** Checkpoints of an earlier run of the same source. */
  resume?: readonly SourceCheckpoint[];
  /** Called with each chunk's checkpoint once the chunk's rows have been handed to a batch. */
  onCheckpoint?: (checkpoint: SourceCheckpoint) => void;
}

/** Read `source` to its end (or until `options.signal` aborts) and publish its batches. */
export async function streamSource(source: RowSource, options: StreamSourceOptions): Promise<StreamSummary> {
  const counts: ProgressCounts = { rows: 0, badRows: 0, batches: 0 };
  const log = options.logger.child({ component: 'streamer' });
  const progress = new ProgressReporter(() => counts, log);
  if (options.progress) progress.start();

  const publish = async (_batch: Batch, payload: Uint8Array): Promise<void> => {
    await options.queue.enqueue(payload);
    counts.batches += 1;
    options.metrics?.batchesQueued.inc();
  };

  const count = (rows: RowResult[]): void => {
    let bad = 0;
    for (const row of rows) {
      if (!row.ok) {
        bad += 1;
        options.metrics?.badRows.inc({ reason: row.deadLetter.reason });
      }
    }
    counts.rows += rows.length;
    counts.badRows += bad;
    options.metrics?.rowsRead.inc(rows.length);
  };

  const assemblers = new Map<string, BatchAssembler>();
  const flushTimer = setInterval(
    () => {
      for (const assembler of assemblers.values())
        assembler
          .flushIfOlderThan(options.flushIntervalMs)
          .catch((error: unknown) => log.error({ err: error }, 'publishing a batch failed'));
    },
    Math.max(50, Math.floor(options.flushIntervalMs / 4)),
  );
  let summary: StreamSummary | undefined;
  let flushFailure: { reason: unknown } | undefined;
  try {
    log.debug({ source: source.description }, 'reading');
    for await (const chunk of source.read({ signal: options.signal, resume: options.resume })) {
      let assembler = assemblers.get(chunk.source);
      if (assembler === undefined) {
        assembler = new BatchAssembler(
          chunk.source,
          options.batchSize,
          publish,
          options.publishWindow ?? PUBLISH_WINDOW,
        );
        assemblers.set(chunk.source, assembler);
      }
      count(chunk.rows);
      await assembler.add(chunk.rows);
      if (chunk.end !== undefined) {
        await assembler.flush(chunk.end.presence);
        assemblers.delete(chunk.source);
        log.debug({ source: chunk.source }, 'input done');
      }
      if (chunk.checkpoint !== undefined) options.onCheckpoint?.(chunk.checkpoint);
    }
  } finally {
    clearInterval(flushTimer);
    // Stopped or failed: what was read is still published (a failed publish rejects here).
    try {
      // Every input's publishes settle before the caller may close the queue; then the first failure.
      const flushed = await Promise.allSettled([...assemblers.values()].map((a) => a.flush()));
      const failed = flushed.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed !== undefined) flushFailure = { reason: failed.reason };
    } finally {
      summary = progress.stop();
      if (options.progress) log.info(summary, 'ingest finished');
    }
  }
  if (flushFailure !== undefined) throw flushFailure.reason;
  return summary;
}
