/**
 * Streamer: reads DCGM CSV sources, turns rows into batches (bad rows become dead letters in the
 * same batch), and publishes them to the queue. Publishing waits when the queue is full, so a fast
 * source never grows the queue without bound.
 *
 * A file of a directory that cannot be read, or whose header is not DCGM, becomes one dead letter
 * (`unreadable_source` / `bad_header`) in that file's batch and the directory goes on; a single file
 * or stdin fails fast with INPUT_UNREADABLE. On abort (SIGTERM, Ctrl-C) the record being read when
 * the source stopped is dropped, not dead-lettered: it was cut by the stop, not by the input.
 *
 * A file or stdin whose first bytes look like Prometheus exposition text (dcgm-exporter's /metrics,
 * e.g. `curl :9400/metrics | nexus-telemetry start -`) is read with the exposition parser instead of
 * the CSV one; its samples without a timestamp take the time the source was opened. With
 * `input.scrape` the streamer scrapes HTTP targets instead of reading `spec` (src/ingest/scrape.ts):
 * each target is one source with its own batches, and each scrape is published as soon as it is read,
 * its last batch carrying the scrape's presence (which GPUs it exposed; none when it failed).
 */
import type { Batch } from '../domain/types.js';
import { readDcgm, type RowResult } from '../ingest/dcgm-reader.js';
import { looksLikeExposition, readExposition } from '../ingest/exposition.js';
import { scrapeTargets, type ScrapeTargetBoard, type ScrapeOutcome } from '../ingest/scrape.js';
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
  /** Scrape these HTTP targets (until `signal` aborts) instead of reading `spec`. */
  scrape?: ScrapeInput;
}

/** What to scrape, and how (see src/ingest/scrape.ts). */
export interface ScrapeInput {
  targets: readonly string[];
  intervalMs: number;
  timeoutMs: number;
  bodyLimitBytes: number;
  /** Where each target's health is recorded. */
  board?: ScrapeTargetBoard;
  /** Scrape each target this many times, then end (default: until aborted). */
  rounds?: number;
}

/** Bytes looked at before deciding between CSV and exposition text (or the first line, if shorter). */
const SNIFF_BYTES = 512;

/**
 * Read the first bytes of `chunks` (at least one line or {@link SNIFF_BYTES}) and tell whether they
 * look like exposition text. `chunks` is the whole stream again, first bytes included; a read
 * failure while sniffing is thrown from it at the same point, so the CSV reader handles it as before.
 */
async function sniff(
  chunks: AsyncIterable<Buffer>,
): Promise<{ exposition: boolean; chunks: AsyncIterable<Buffer> }> {
  const iterator = chunks[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let bytes = 0;
  let ended = false;
  let failure: { error: unknown } | undefined;
  while (bytes < SNIFF_BYTES) {
    let next: IteratorResult<Buffer>;
    try {
      next = await iterator.next();
    } catch (error) {
      failure = { error };
      break;
    }
    if (next.done) {
      ended = true;
      break;
    }
    head.push(next.value);
    bytes += next.value.length;
    if (next.value.includes(0x0a)) break;
  }
  const first = Buffer.concat(head);
  const exposition = failure === undefined && first.length > 0 && looksLikeExposition(first);
  async function* replay(): AsyncGenerator<Buffer> {
    let finished = ended || failure !== undefined;
    try {
      for (const chunk of head) yield chunk;
      if (failure !== undefined) throw failure.error;
      for (;;) {
        if (finished) return;
        const next = await iterator.next();
        if (next.done) {
          finished = true;
          return;
        }
        yield next.value;
      }
    } finally {
      if (!finished) await iterator.return?.();
    }
  }
  return { exposition, chunks: replay() };
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

  let summary: StreamSummary | undefined;
  try {
    if (input.scrape !== undefined)
      await streamScrapes(input.scrape, input.signal, options, publish, count, log);
    else await streamSources(input, options, publish, count, log);
  } finally {
    summary = progress.stop();
    if (options.progress) log.info(summary, 'ingest finished');
  }
  return summary;
}

/** Read every source of `input.spec` in turn (CSV, or exposition text when its first bytes say so). */
async function streamSources(
  input: StreamInput,
  options: StreamerOptions,
  publish: (batch: Batch, payload: Uint8Array) => Promise<void>,
  count: (rows: RowResult[]) => void,
  log: Logger,
): Promise<void> {
  for await (const { source, chunks: raw, fromDirectory } of openSources(input.spec, {
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
      const openedMs = Date.now();
      const { exposition, chunks } = await sniff(raw);
      const reader = exposition
        ? readExposition(chunks, {
            source,
            clusterId: options.clusterId,
            scrapeStartMs: openedMs,
            signal: input.signal,
          })
        : readDcgm(chunks, {
            source,
            clusterId: options.clusterId,
            timestamps: options.timestamps,
            signal: input.signal,
            skipUnreadable: fromDirectory,
          });
      if (exposition) log.debug({ source }, 'reading exposition text');
      for await (const rows of reader) {
        count(rows);
        await assembler.add(rows);
      }
      await assembler.flush();
    } finally {
      clearInterval(flushTimer);
    }
    log.debug({ source }, 'source done');
  }
}

/**
 * Scrape the targets until the signal aborts (or the rounds are done): one batch assembler per
 * target, flushed after every scrape, so each scrape is published as soon as it has been read.
 */
async function streamScrapes(
  scrape: ScrapeInput,
  signal: AbortSignal | undefined,
  options: StreamerOptions,
  publish: (batch: Batch, payload: Uint8Array) => Promise<void>,
  count: (rows: RowResult[]) => void,
  log: Logger,
): Promise<void> {
  const assemblers = new Map<string, BatchAssembler>();
  const onScrape = (outcome: ScrapeOutcome): void => {
    const fields = {
      target: outcome.url,
      health: outcome.health,
      samples: outcome.samples,
      seconds: Number(outcome.durationSeconds.toFixed(3)),
    };
    if (outcome.health === 'down') log.warn({ ...fields, reason: outcome.error }, 'scrape failed');
    else log.debug(fields, 'scraped');
  };
  try {
    for await (const { source, rows, presence } of scrapeTargets({
      targets: scrape.targets,
      intervalMs: scrape.intervalMs,
      timeoutMs: scrape.timeoutMs,
      bodyLimitBytes: scrape.bodyLimitBytes,
      board: scrape.board,
      rounds: scrape.rounds,
      clusterId: options.clusterId,
      signal,
      onScrape,
    })) {
      let assembler = assemblers.get(source);
      if (assembler === undefined) {
        assembler = new BatchAssembler(source, options.batchSize, publish);
        assemblers.set(source, assembler);
      }
      count(rows);
      await assembler.add(rows);
      await assembler.flush(presence);
    }
  } finally {
    await Promise.all([...assemblers.values()].map((a) => a.flush()));
  }
}
