/**
 * File source (an adapter of the source port, src/ports/source.ts): a CSV file, a directory of CSV
 * files (name order) or stdin (`-`), read through src/ingest/sources.ts (`follow`, `loop`). An input
 * whose first bytes look like Prometheus exposition text (dcgm-exporter's /metrics, e.g.
 * `curl :9400/metrics | nexus-telemetry start -`) is read with the exposition parser, the rest with
 * the CSV one; exposition samples without a timestamp take the time the input was opened. A file of a
 * directory that cannot be read, or whose header is not DCGM, becomes one dead letter and the
 * directory goes on; a single file or stdin fails with INPUT_UNREADABLE.
 *
 * Checkpoints count the records (rows and dead letters) of each input and pass; a resumed read parses
 * the input again from its start and skips that many records, so it resumes exactly where a read of
 * the same (or a grown) input stopped.
 */
import type { RowSource, SourceChunk, SourceReadOptions } from '../ports/source.js';
import { skipRecords } from '../ports/source.js';
import { readDcgm } from './dcgm-reader.js';
import { looksLikeExposition, readExposition } from './exposition.js';
import { openSources } from './sources.js';

/** Options of {@link fileSource}. */
export interface FileSourceOptions {
  /** File, directory of *.csv files, or `-` for stdin. */
  spec: string;
  /** Cluster the samples belong to (CLUSTER_ID). */
  clusterId: string;
  /** CSV timestamps kept (`original`) or shifted to the processing time (`now`). */
  timestamps: 'original' | 'now';
  /** Keep reading what is appended (tail -F), until aborted. */
  follow?: boolean;
  /** Replay the input from the start each time it ends, until aborted (files only). */
  loop?: boolean;
  /** Stream used for `-`. Default `process.stdin`. */
  stdin?: AsyncIterable<Buffer | string>;
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

/** A {@link RowSource} over files or stdin. */
export function fileSource(options: FileSourceOptions): RowSource {
  return {
    description: options.spec === '-' ? 'stdin' : options.spec,
    read: (read) => readFiles(options, read ?? {}),
  };
}

async function* readFiles(options: FileSourceOptions, read: SourceReadOptions): AsyncGenerator<SourceChunk> {
  const { signal } = read;
  const resume = new Map<string, number>();
  for (const c of read.resume ?? []) resume.set(`${c.pass}\u0000${c.source}`, c.records);
  for await (const { source, chunks: raw, fromDirectory, pass } of openSources(options.spec, {
    follow: options.follow,
    loop: options.loop,
    signal,
    stdin: options.stdin,
  })) {
    const openedMs = Date.now();
    const { exposition, chunks } = await sniff(raw);
    const reader = exposition
      ? readExposition(chunks, { source, clusterId: options.clusterId, scrapeStartMs: openedMs, signal })
      : readDcgm(chunks, {
          source,
          clusterId: options.clusterId,
          timestamps: options.timestamps,
          signal,
          skipUnreadable: fromDirectory,
        });
    let skip = resume.get(`${pass}\u0000${source}`) ?? 0;
    let records = 0;
    for await (const rows of reader) {
      records += rows.length;
      const kept = skipRecords(rows, skip);
      skip = kept.left;
      if (kept.rows.length > 0) yield { source, rows: kept.rows, checkpoint: { source, pass, records } };
    }
    // Stopped: the input did not end, so no `end` (nothing to close; the streamer flushes on stop).
    if (signal?.aborted === true) return;
    yield { source, rows: [], checkpoint: { source, pass, records }, end: {} };
  }
}
