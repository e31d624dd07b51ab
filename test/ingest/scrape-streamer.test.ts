// The streamer over exposition text: a file or stdin whose first bytes are Prometheus exposition
// (dcgm-exporter's /metrics) is read with the exposition parser, so `curl :9400/metrics | start -`
// works; CSV is still read as CSV; scraped targets are batched per target like CSV sources.
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Batch } from '../../src/domain/types.js';
import { ScrapeTargetBoard } from '../../src/ingest/scrape.js';
import type { Queue } from '../../src/ports/queue.js';
import { runStreamer } from '../../src/streamer/streamer.js';
import { createLogger } from '../../src/util/logger.js';
import {
  refusedUrl,
  SAMPLE_PROM_PATH,
  startStandin,
  type Standin,
} from '../support/dcgm-exporter-standin.js';
import { readSampleRows } from '../support/sample-csv.js';
import { recordingQueue } from '../support/recording-queue.js';

const options = (queue: Queue) => ({
  queue,
  clusterId: 'c',
  batchSize: 1000,
  flushIntervalMs: 60_000,
  timestamps: 'original' as const,
  logger: createLogger('silent'),
});

const key = (hostname: string, gpuId: string, metric: string): string => `${hostname}|${gpuId}|${metric}`;
const expected = new Map(readSampleRows().map((r) => [key(r.hostname, r.gpuId, r.metric), r.value]));

function checkSample(batches: Batch[], source: string, fromMs: number): void {
  const samples = batches.flatMap((b) => b.samples);
  expect(batches.every((b) => b.source === source)).toBe(true);
  expect(batches.flatMap((b) => b.deadLetters)).toEqual([]);
  expect(samples).toHaveLength(2470);
  expect(new Set(samples.map((s) => s.hostname)).size).toBe(31);
  expect(new Set(samples.map((s) => `${s.hostname}/${s.gpuId}`)).size).toBe(247);
  const got = new Map(samples.map((s) => [key(s.hostname, s.gpuId, s.metric), s.value]));
  expect(got).toEqual(expected);
  // No timestamps in dcgm-exporter's output: every sample takes the time the source was read.
  for (const s of samples) expect(s.timestampMs).toBeGreaterThanOrEqual(fromMs);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-scrape-streamer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runStreamer format detection', () => {
  it('reads an exposition file (the dcgm-exporter fixture) with the exposition parser', async () => {
    const { queue, batches } = recordingQueue();
    const before = Date.now();
    const path = fileURLToPath(SAMPLE_PROM_PATH);
    const summary = await runStreamer({ spec: path }, options(queue));
    expect(summary).toMatchObject({ rows: 2470, badRows: 0, batches: 3 });
    checkSample(batches, path, before);
  });

  it('still reads CSV as CSV (the bundled sample keeps its timestamps)', async () => {
    const { queue, batches } = recordingQueue();
    const summary = await runStreamer(
      { spec: join('sample', 'dcgm_metrics_20250718_134233.csv') },
      options(queue),
    );
    expect(summary).toMatchObject({ rows: 2470, badRows: 0 });
    const times = new Set(batches.flatMap((b) => b.samples.map((s) => s.timestampMs)));
    expect(times).toEqual(new Set(readSampleRows().map((r) => Date.parse(r.timestamp))));
  });

  it('keeps a directory of CSV files with a broken one as before', async () => {
    const sub = join(dir, 'csvs');
    await mkdir(sub);
    await writeFile(join(sub, 'a.csv'), readFileSync('test/fixtures/broken.csv'));
    const { queue } = recordingQueue();
    const summary = await runStreamer({ spec: sub }, options(queue));
    expect(summary.badRows).toBeGreaterThan(0);
  });
});

describe('runStreamer scraping', () => {
  let good: Standin;
  beforeAll(async () => {
    good = await startStandin({ gzip: true });
  });
  afterAll(async () => {
    await good.close();
  });

  it('batches each scrape per target, named by the target URL', async () => {
    const refused = await refusedUrl();
    const board = new ScrapeTargetBoard([good.url, refused], 20, 20);
    const { queue, batches } = recordingQueue();
    const before = Date.now();
    const summary = await runStreamer(
      {
        spec: '',
        scrape: {
          targets: [good.url, refused],
          intervalMs: 20,
          timeoutMs: 2000,
          bodyLimitBytes: 1 << 25,
          board,
          rounds: 2,
        },
      },
      options(queue),
    );
    expect(summary).toMatchObject({ rows: 4940, badRows: 0 });
    const fromGood = batches.filter((b) => b.source === good.url);
    checkSample(fromGood.slice(0, 3), good.url, before);
    expect(fromGood.map((b) => b.samples.length)).toEqual([1000, 1000, 470, 1000, 1000, 470]);
    // The last batch of each scrape carries its presence: the bundled sample's 247 GPUs.
    expect(fromGood.map((b) => b.presence?.gpus.length)).toEqual([
      undefined,
      undefined,
      247,
      undefined,
      undefined,
      247,
    ]);
    const gpus = new Set(
      fromGood[0]!.samples
        .concat(fromGood[1]!.samples, fromGood[2]!.samples)
        .map((s) => `${s.hostname}/${s.gpuId}`),
    );
    expect(new Set(fromGood[2]!.presence!.gpus.map((g) => `${g.hostname}/${g.gpuId}`))).toEqual(gpus);
    // The refused target publishes one empty batch per scrape, whose presence holds no GPU.
    const fromRefused = batches.filter((b) => b.source === refused);
    expect(fromRefused.map((b) => [b.samples.length, b.presence?.gpus.length])).toEqual([
      [0, 0],
      [0, 0],
    ]);
    expect(batches).toHaveLength(8);
    expect(board.get(refused)).toMatchObject({ health: 'down', scrapes: 2 });
    expect(board.get(good.url)).toMatchObject({ health: 'up', samples: 2470, scrapes: 2 });
  });
});
