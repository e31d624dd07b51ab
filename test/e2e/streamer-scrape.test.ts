/**
 * `streamer --scrape` in traditional mode: a streamer CLI process scrapes a dcgm-exporter stand-in
 * and publishes each scrape to Redis, a collector stores it in PostgreSQL. The store holds the
 * stand-in's 2,470 samples per scrape (31 hosts, 247 GPUs) with the CSV's values; SIGTERM stops the
 * streamer with exit 0 after publishing what it read. Also: `--targets-file` on the streamer.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import { createLogger } from '../../src/util/logger.js';
import { startCollectorProcess, type CollectorProcess } from '../../src/runtime/roles.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import { startRedis, type RedisHandle } from '../harness/redis.js';
import { killAll, spawnCli } from '../support/cli-process.js';
import { refusedUrl, startStandin, type Standin } from '../support/dcgm-exporter-standin.js';
import { readSampleRows } from '../support/sample-csv.js';

const logger = createLogger('silent');
let redis: RedisHandle;
let postgres: PostgresHarness;
let standin: Standin;
const dirs: string[] = [];

beforeAll(async () => {
  [redis, postgres, standin] = await Promise.all([startRedis(), startPostgres(), startStandin()]);
}, 60_000);

afterEach(() => {
  killAll();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

afterAll(async () => {
  await Promise.all([redis?.stop(), postgres?.stop(), standin?.close()]);
});

/** Configuration of a traditional-mode process on its own database and Redis topic. */
async function configFor(database: string, topic: string): Promise<Config> {
  return loadConfig(
    {},
    {
      CLUSTER_ID: 'dgx-lab',
      REDIS_URL: redis.url,
      REDIS_TOPICS: topic,
      DATABASE_URL: await postgres.createDatabase(database),
      ENABLE_NEXUS: false,
      LOG_LEVEL: 'silent',
      POLL_INTERVAL: '100ms',
    },
  );
}

/** Environment of the streamer process for `config`. */
function streamerEnv(config: Config): Record<string, string> {
  return {
    CLUSTER_ID: 'dgx-lab',
    REDIS_URL: redis.url,
    REDIS_TOPICS: config.REDIS_TOPICS,
    ENABLE_NEXUS: 'false',
    ETCD_ENDPOINTS: '',
    LOG_LEVEL: 'info',
  };
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const key = (hostname: string, gpuId: number | string, metric: string): string =>
  `${hostname}/${gpuId}/${metric}`;

describe('streamer --scrape (traditional mode: Redis + PostgreSQL)', () => {
  it('publishes each scrape; the store gets the 2,470 samples with the CSV values; SIGTERM exits 0', async () => {
    const config = await configFor('streamer_scrape', 'scrape-telemetry');
    expect(config.REDIS_TOPICS).toBe('scrape-telemetry');
    let collector: CollectorProcess | undefined = await startCollectorProcess(config, logger);
    try {
      const startedMs = Date.now();
      const streamer = spawnCli(
        ['streamer', '--scrape', standin.url, '--scrape-interval', '1s', '--scrape-timeout', '1s'],
        { ...streamerEnv(config), HOST: '127.0.0.1', METRICS_PORT: '0' },
      );
      await streamer.waitFor(/scrape target up/, 60_000);
      await until(async () => (await collector!.store.countSamples()) >= 2470, 'first scrape stored');

      // METRICS_PORT: the target's health as Prometheus' own series, and on /health.
      const listening = await streamer.waitFor(/"address":"http:\/\/127\.0\.0\.1:\d+"/);
      const metricsAddress = /http:\/\/127\.0\.0\.1:\d+/.exec(listening)![0];
      const exposition = await (await fetch(`${metricsAddress}/metrics`)).text();
      const series = (name: string): number =>
        Number(
          exposition
            .split('\n')
            .find((line) => line.startsWith(`${name}{target="${standin.url}"}`))
            ?.split(' ')
            .at(-1),
        );
      expect(series('up')).toBe(1);
      expect(series('scrape_samples_scraped')).toBe(2470);
      expect(series('scrape_duration_seconds')).toBeGreaterThan(0);
      const health = (await (await fetch(`${metricsAddress}/health`)).json()) as {
        status: string;
        role: string;
        targets: { url: string; health: string }[];
      };
      expect(health).toMatchObject({ status: 'ok', role: 'streamer' });
      expect(health.targets.map((t) => [t.url, t.health])).toEqual([[standin.url, 'up']]);

      // It goes on scraping every second.
      await until(async () => (await collector!.store.countSamples()) >= 2 * 2470, 'second scrape');

      streamer.kill('SIGTERM');
      expect(await streamer.exited).toBe(0);
      const published = /published ([\d,]+) rows \((\d+) bad\)/.exec(streamer.output());
      expect(published, streamer.output().slice(-2000)).not.toBeNull();
      const rows = Number(published![1]!.replace(/,/g, ''));
      expect(Number(published![2])).toBe(0);
      expect(rows % 2470).toBe(0);
      expect(rows).toBeGreaterThanOrEqual(2 * 2470);
      // Everything published is stored.
      await until(async () => (await collector!.store.countSamples()) === rows, 'all published stored');
      expect(await collector.store.countSamples()).toBe(rows);

      // Nothing arrives any more: the latest samples are the last scrape's 2,470 (31 hosts, 247
      // GPUs), with the CSV's values, all at that scrape's time.
      const stored = await collector.store.latestSamples('dgx-lab');
      expect(stored).toHaveLength(2470);
      const expected = new Map(readSampleRows().map((r) => [key(r.hostname, r.gpuId, r.metric), r.value]));
      expect(new Map(stored.map((s) => [key(s.hostname, s.gpuId, s.metric), s.value]))).toEqual(expected);
      expect(new Set(stored.map((s) => s.hostname)).size).toBe(31);
      expect(new Set(stored.map((s) => `${s.hostname}/${s.gpuId}`)).size).toBe(247);
      const times = new Set(stored.map((s) => s.timestampMs));
      expect(times.size).toBe(1);
      expect([...times][0]).toBeGreaterThanOrEqual(startedMs - 1000);
    } finally {
      await collector?.close();
      collector = undefined;
    }
  }, 120_000);

  it('--targets-file: scrapes the file targets and logs a target that goes down', async () => {
    const config = await configFor('streamer_targets_file', 'file-telemetry');
    const dir = mkdtempSync(join(tmpdir(), 'nexus-streamer-targets-'));
    dirs.push(dir);
    const path = join(dir, 'targets.json');
    const refused = await refusedUrl();
    const refusedHost = new URL(refused).host;
    writeFileSync(
      path,
      JSON.stringify([{ targets: [new URL(standin.url).host, refusedHost], labels: { rack: 'r1' } }]),
    );
    const collector = await startCollectorProcess(config, logger);
    try {
      const streamer = spawnCli(
        ['streamer', '--targets-file', path, '--scrape-interval', '1s', '--scrape-timeout', '1s'],
        streamerEnv(config),
      );
      await streamer.waitFor(/scrape target up/, 60_000);
      const down = await streamer.waitFor(/[^\n]*scrape target down[^\n]*/);
      expect(down).toContain(refused);
      expect(down).toMatch(/connection refused/);
      await until(async () => (await collector.store.countSamples()) >= 2470, 'file target stored');
      expect(await collector.store.latestSamples('dgx-lab')).toHaveLength(2470);
      streamer.kill('SIGTERM');
      expect(await streamer.exited).toBe(0);
    } finally {
      await collector.close();
    }
  }, 120_000);

  it('refuses a targets file that cannot be read with a configuration error', async () => {
    const config = await configFor('streamer_targets_bad', 'bad-telemetry');
    const streamer = spawnCli(
      ['streamer', '--targets-file', join(tmpdir(), 'nexus-no-such-targets.json')],
      streamerEnv(config),
    );
    expect(await streamer.exited).toBe(2);
    expect(streamer.output()).toMatch(/CONFIG_INVALID: targets file .*: no such file/);
  }, 60_000);

  it('start --targets-file: /api/v1/targets follows the file', async () => {
    const second = await startStandin();
    const dir = mkdtempSync(join(tmpdir(), 'nexus-start-targets-'));
    dirs.push(dir);
    const path = join(dir, 'targets.json');
    writeFileSync(path, JSON.stringify([{ targets: [new URL(standin.url).host] }]));
    try {
      const start = spawnCli(
        ['start', '--memory', '--targets-file', path, '--scrape-interval', '1s', '--scrape-timeout', '1s'],
        {
          HOST: '127.0.0.1',
          PORT: '0',
          LOG_LEVEL: 'info',
          DATABASE_URL: '',
          DB_HOST: '',
          ETCD_ENDPOINTS: '',
        },
      );
      const address = (await start.waitFor(/listening on http:\/\/[\d.]+:\d+/)).replace(/^listening on /, '');
      const targets = async (): Promise<{ scrapeUrl: string; health: string }[]> =>
        (
          (await (await fetch(`${address}/api/v1/targets`)).json()) as {
            data: { activeTargets: { scrapeUrl: string; health: string }[] };
          }
        ).data.activeTargets;
      await until(async () => (await targets()).some((t) => t.health === 'up'), 'first target up');
      expect((await targets()).map((t) => t.scrapeUrl)).toEqual([standin.url]);

      writeFileSync(path, JSON.stringify([{ targets: [new URL(second.url).host] }]));
      await until(
        async () => (await targets()).map((t) => t.scrapeUrl).join() === second.url,
        'target set replaced',
      );
      await until(async () => (await targets())[0]?.health === 'up', 'new target up');
      await start.waitFor(/targets file reloaded/);

      start.kill('SIGTERM');
      expect(await start.exited).toBe(0);
    } finally {
      await second.close();
    }
  }, 120_000);

  it('start --targets-file with no target yet: starts, scrapes nothing, then what the file lists', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-start-empty-targets-'));
    dirs.push(dir);
    const path = join(dir, 'targets.yml');
    writeFileSync(path, '# filled in later by the inventory job\n');
    const start = spawnCli(
      ['start', '--memory', '--targets-file', path, '--scrape-interval', '1s', '--scrape-timeout', '1s'],
      { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', DATABASE_URL: '', DB_HOST: '', ETCD_ENDPOINTS: '' },
    );
    const address = (await start.waitFor(/listening on http:\/\/[\d.]+:\d+/)).replace(/^listening on /, '');
    await start.waitFor(/\(none yet\)/);
    const targets = async (): Promise<{ scrapeUrl: string; health: string }[]> =>
      (
        (await (await fetch(`${address}/api/v1/targets`)).json()) as {
          data: { activeTargets: { scrapeUrl: string; health: string }[] };
        }
      ).data.activeTargets;
    expect(await targets()).toEqual([]);
    // Nothing was ingested: not the bundled sample either.
    const cluster = (await (await fetch(`${address}/api/v1/clusters`)).json()) as unknown[];
    expect(JSON.stringify(cluster)).not.toMatch(/mtv5-dgx1/);
    writeFileSync(path, `- targets: ['${new URL(standin.url).host}']\n`);
    await until(
      async () => (await targets()).some((t) => t.health === 'up'),
      'the target listed later is up',
    );
    expect((await targets()).map((t) => t.scrapeUrl)).toEqual([standin.url]);
    start.kill('SIGTERM');
    expect(await start.exited).toBe(0);
  }, 120_000);
});
