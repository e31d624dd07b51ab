/**
 * Live DCGM ingest, end to end in one process: an embedded runtime scrapes a dcgm-exporter stand-in
 * (the fixture in dcgm-exporter's exact format, gzip-encoded) and the API answers with 31 hosts,
 * 247 GPUs and every value of the bundled CSV. Three more targets misbehave: one refuses the
 * connection, one answers after the timeout, one serves garbage. /api/v1/targets and /metrics show
 * them down with their reasons, the good target's data is complete, and the garbage target's lines
 * are dead letters naming it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, spawnCli } from '../support/cli-process.js';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { refusedUrl, startStandin, type Standin } from '../support/dcgm-exporter-standin.js';
import { readSampleRows } from '../support/sample-csv.js';

interface Target {
  scrapeUrl: string;
  health: string;
  lastError: string;
  lastScrape: string;
  lastScrapeDuration: number;
  samples: number;
}

const GARBAGE = '<!doctype html>\n<html><body><h1>It works!</h1></body></html>\n';

let runtime: EmbeddedRuntime;
let good: Standin;
let slow: Standin;
let garbage: Standin;
let refused: string;
let scrapeStartedMs: number;

async function get<T>(url: string): Promise<T> {
  const response = await runtime.app.inject({ method: 'GET', url });
  expect(response.statusCode, url).toBe(200);
  return response.json() as T;
}

beforeAll(async () => {
  good = await startStandin({ gzip: true });
  slow = await startStandin({ delayMs: 60_000 });
  garbage = await startStandin({ body: GARBAGE });
  refused = await refusedUrl();
  const config = loadConfig(
    {},
    {
      MEMORY: true,
      CLUSTER_ID: 'live',
      LOG_LEVEL: 'silent',
      SCRAPE_TARGETS: [good.url, refused, slow.url, garbage.url].join(','),
      // Generous: a loaded 2-core machine must not time out the good target.
      SCRAPE_INTERVAL: '10s',
      SCRAPE_TIMEOUT: '5s',
    },
  );
  runtime = await startEmbedded({ config, logger: createLogger('silent'), listen: false });
  scrapeStartedMs = Date.now();
  const summary = await runtime.scrape({ rounds: 1 });
  expect(summary.rows, JSON.stringify(runtime.scrapeTargets?.list())).toBeGreaterThan(2470);
  expect(summary.refusedByStore).toBe(0);
});

afterAll(async () => {
  killAll();
  await runtime?.close();
  await Promise.all([good, slow, garbage].map((s) => s?.close()));
});

describe('scraping a dcgm-exporter stand-in', () => {
  it('stores every sample of the good target: 31 hosts, 247 GPUs, the CSV values', async () => {
    const cluster = await get<{ metadata: Record<string, number> }>('/api/v1/clusters/live');
    expect(cluster.metadata).toMatchObject({ total_hosts: 31, total_gpus: 247 });
    expect(await runtime.store.countSamples()).toBe(2470);

    const key = (h: string, g: string, m: string): string => `${h}|${g}|${m}`;
    const expected = new Map(readSampleRows().map((r) => [key(r.hostname, r.gpuId, r.metric), r.value]));
    const stored = await runtime.store.latestSamples('live');
    expect(stored).toHaveLength(2470);
    const got = new Map(stored.map((s) => [key(s.hostname, s.gpuId, s.metric), s.value]));
    expect(got).toEqual(expected);
    // dcgm-exporter writes no timestamps: each sample has the scrape's start time.
    const times = new Set(stored.map((s) => s.timestampMs));
    expect(times.size).toBe(1);
    expect([...times][0]).toBeGreaterThanOrEqual(scrapeStartedMs);
    // UUIDs as in the CSV.
    const uuids = new Set(readSampleRows().map((r) => `${r.hostname}/${r.gpuId}/${r.uuid}`));
    expect(new Set(stored.map((s) => `${s.hostname}/${s.gpuId}/${s.uuid}`))).toEqual(uuids);
  });

  it('shows each target health as Prometheus does at /api/v1/targets', async () => {
    const body = await get<{ status: string; data: { activeTargets: Target[]; droppedTargets: unknown[] } }>(
      '/api/v1/targets',
    );
    expect(body.status).toBe('success');
    expect(body.data.droppedTargets).toEqual([]);
    const byUrl = new Map(body.data.activeTargets.map((t) => [t.scrapeUrl, t]));
    expect([...byUrl.keys()]).toEqual([good.url, refused, slow.url, garbage.url]);
    expect(byUrl.get(good.url)).toMatchObject({ health: 'up', lastError: '', samples: 2470 });
    expect(byUrl.get(refused)).toMatchObject({ health: 'down', samples: 0 });
    expect(byUrl.get(refused)!.lastError).toMatch(/connection refused/);
    expect(byUrl.get(slow.url)).toMatchObject({
      health: 'down',
      samples: 0,
      lastError: 'scrape timed out after 5s',
    });
    expect(byUrl.get(slow.url)!.lastScrapeDuration).toBeGreaterThanOrEqual(4.9);
    expect(byUrl.get(slow.url)!.lastScrapeDuration).toBeLessThan(15);
    expect(byUrl.get(garbage.url)).toMatchObject({ health: 'down', samples: 0 });
    expect(byUrl.get(garbage.url)!.lastError).toMatch(/^no valid sample: /);
    for (const t of byUrl.values())
      expect(Date.parse(t.lastScrape)).toBeGreaterThanOrEqual(scrapeStartedMs - 1000);
  });

  it('names the garbage target on its dead letters, and only it', async () => {
    const letters = await get<{ source: string; reason: string }[]>('/api/v1/dead-letters?limit=100');
    expect(letters.length).toBeGreaterThan(0);
    expect(new Set(letters.map((l) => l.source))).toEqual(new Set([garbage.url]));
  });

  it('exports up, scrape_duration_seconds and scrape_samples_scraped per target on /metrics', async () => {
    const response = await runtime.app.inject({ method: 'GET', url: '/metrics' });
    const text = response.body;
    const value = (name: string, target: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${name}{target="${target}"}`));
      expect(line, `${name} ${target}`).toBeDefined();
      return Number(line!.split(' ').at(-1));
    };
    expect(value('up', good.url)).toBe(1);
    expect(value('up', refused)).toBe(0);
    expect(value('up', slow.url)).toBe(0);
    expect(value('up', garbage.url)).toBe(0);
    expect(value('scrape_samples_scraped', good.url)).toBe(2470);
    expect(value('scrape_duration_seconds', slow.url)).toBeGreaterThanOrEqual(4.9);
  });
});

describe('nexus-telemetry start --scrape', () => {
  it('scrapes on its interval, serves the targets, and stops on SIGTERM with what it read stored', async () => {
    const requestsBefore = good.requests.length;
    const cli = spawnCli(
      [
        'start',
        '--memory',
        '--port',
        '0',
        '--scrape',
        good.url,
        '--scrape',
        refused,
        '--scrape-interval',
        '3s',
        '--scrape-timeout',
        '3s',
      ],
      { HOST: '127.0.0.1', LOG_LEVEL: 'warn', CLUSTER_ID: 'cli' },
    );
    const line = await cli.waitFor(/API listening on (http:\/\/\S+)/);
    const address = /http:\/\/\S+/.exec(line)![0];
    await cli.waitFor(/scraping /);
    // Bounded wait: the good target is scraped at once, then every 3 seconds.
    let targets: Target[] = [];
    for (let i = 0; i < 300; i++) {
      const body = (await (await fetch(`${address}/api/v1/targets`)).json()) as {
        data: { activeTargets: Target[] };
      };
      targets = body.data.activeTargets;
      if (targets.every((t) => t.health !== 'unknown') && good.requests.length - requestsBefore >= 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(good.requests.length - requestsBefore).toBeGreaterThanOrEqual(2);
    expect(
      targets.map((t) => [t.scrapeUrl, t.health]),
      JSON.stringify(targets),
    ).toEqual([
      [good.url, 'up'],
      [refused, 'down'],
    ]);
    const cluster = (await (await fetch(`${address}/api/v1/clusters/cli`)).json()) as {
      metadata: Record<string, number>;
    };
    expect(cluster.metadata).toMatchObject({ total_hosts: 31, total_gpus: 247 });
    const started = Date.now();
    cli.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(cli.output()).toMatch(/stopped scraping: ingested [\d,]+ rows \(0 bad\)/);
  }, 120_000);

  it('refuses a scrape timeout longer than the interval', async () => {
    const cli = spawnCli(['start', '--memory', '--scrape', good.url, '--scrape-timeout', '20s'], {
      LOG_LEVEL: 'silent',
    });
    expect(await cli.exited).toBe(2);
    expect(cli.output()).toMatch(/SCRAPE_TIMEOUT/);
  });
});
