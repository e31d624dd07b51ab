/**
 * Streamer: reads DCGM CSV sources, turns rows into batches (bad rows become dead letters in the
 * same batch), and publishes them to the queue. Publishing waits when the queue is full, so a fast
 * source never grows the queue without bound.
 *
 * A file of a directory that cannot be read, or whose header is not DCGM, becomes one dead letter
 * (`unreadable_source` / `bad_header`) in that file's batch and the directory goes on; a single file
 * or stdin fails fast with INPUT_UNREADABLE. On abort (SIGTERM, Ctrl-C) the record being read when
 * the source stopped is dropped, not dead-lettered: it was cut by the stop, not by the input.
 */
import type { Batch } from '../domain/types.js';
import { readDcgm } from '../ingest/dcgm-reader.js';
import { openSources } from '../ingest/sources.js';
import type { PipelineMetrics } from '../metrics/registry.js';
import type { Queue } from '../ports/queue.js';
import type { Logger } from '../util/logger.js';
import { BatchAssembler } from './batch-assembler.js';
import { ProgressReporter, type ProgressCounts } from './progress.js';

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
}

export interface StreamInput {
  /** File, directory of *.csv files, or `-` for stdin. */
  spec: string;
  follow?: boolean;
  loop?: boolean;
  signal?: AbortSignal;
}

/** What one streamer run read and published. */
export interface StreamSummary extends ProgressCounts {
  seconds: number;
  rowsPerSecond: number;
}

/** Read every source of `input` to its end (or until aborted) and publish its batches. */
export async function runStreamer(input: StreamInput, options: StreamerOptions): Promise<StreamSummary> {
  const counts: ProgressCounts = { rows: 0, badRows: 0, batches: 0 };
  const log = options.logger.child({ component: 'streamer' });
  const progress = new ProgressReporter(() => counts, log);
  if (options.progress) progress.start();

  const publish = async (_batch: Batch, payload: Uint8Array): Promise<void> => {
    await options.queue.enqueue(payload);
    counts.batches += 1;
    options.metrics?.batchesQueued.inc();
  };

  let summary: StreamSummary | undefined;
  try {
    for await (const { source, chunks, fromDirectory } of openSources(input.spec, {
      follow: input.follow,
      loop: input.loop,
      signal: input.signal,
    })) {
      const assembler = new BatchAssembler(source, options.batchSize, publish);
      const flushTimer = setInterval(
        () => {
          assembler
            .flushIfOlderThan(options.flushIntervalMs)
            .catch((error: unknown) => log.error({ err: error }, 'publishing a batch failed'));
        },
        Math.max(50, Math.floor(options.flushIntervalMs / 4)),
      );
      try {
        for await (const rows of readDcgm(chunks, {
          source,
          clusterId: options.clusterId,
          timestamps: options.timestamps,
          signal: input.signal,
          skipUnreadable: fromDirectory,
        })) {
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
          await assembler.add(rows);
        }
        await assembler.flush();
      } finally {
        clearInterval(flushTimer);
      }
      log.debug({ source }, 'source done');
    }
  } finally {
    summary = progress.stop();
    if (options.progress) log.info(summary, 'ingest finished');
  }
  return summary;
}
