/**
 * Remote write on the streamer (traditional mode): a real Prometheus (Debian `prometheus`) scrapes a
 * dcgm-exporter stand-in and remote-writes to a `streamer --remote-write-port` CLI process, which
 * only receives (no source of its own) and publishes to Redis; a collector stores into PostgreSQL.
 * Once Prometheus has sent everything, the store holds exactly the DCGM points Prometheus holds, once
 * each. The receiver refuses a bad payload with 400, and SIGTERM stops it with exit 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import { startCollectorProcess, type CollectorProcess } from '../../src/runtime/roles.js';
import { createLogger } from '../../src/util/logger.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import { metricTotal, startPrometheus, type PrometheusHandle } from '../harness/prometheus.js';
import { startRedis, type RedisHandle } from '../harness/redis.js';
import { killAll, spawnCli, type CliProcess } from '../support/cli-process.js';
import { startStandin, type Standin } from '../support/dcgm-exporter-standin.js';
import { until as waitUntil } from '../support/until.js';

const SCRAPES = 3;
const SERIES = 2470;

let redis: RedisHandle;
let postgres: PostgresHarness;
let standin: Standin | undefined;
let prometheus: PrometheusHandle | undefined;
let streamer: CliProcess;
let collector: CollectorProcess | undefined;
let receiver: string;
let config: Config;

/** Wait for `check`, with Prometheus' last log lines on a timeout. */
const until = (what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> =>
  waitUntil(what, timeoutMs, check, () => prometheus?.output() ?? '');

async function receiverCounter(name: string): Promise<number> {
  const text = await (await fetch(`${receiver}/metrics`)).text();
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match === null ? 0 : Number(match[1]);
}

beforeAll(async () => {
  [redis, postgres, standin] = await Promise.all([startRedis(), startPostgres(), startStandin()]);
  config = loadConfig(
    {},
    {
      CLUSTER_ID: 'rw-lab',
      REDIS_URL: redis.url,
      REDIS_TOPICS: 'rw-telemetry',
      DATABASE_URL: await postgres.createDatabase('streamer_remote_write'),
      ENABLE_NEXUS: false,
      LOG_LEVEL: 'silent',
      POLL_INTERVAL: '100ms',
    },
  );
  collector = await startCollectorProcess(config, createLogger('silent'));
  streamer = spawnCli(['streamer', '--remote-write-port', '0'], {
    CLUSTER_ID: 'rw-lab',
    REDIS_URL: redis.url,
    REDIS_TOPICS: 'rw-telemetry',
    ENABLE_NEXUS: 'false',
    ETCD_ENDPOINTS: '',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
  });
  const line = await streamer.waitFor(/"address":"http:\/\/127\.0\.0\.1:\d+\/api\/v1\/write"/, 60_000);
  receiver = /http:\/\/127\.0\.0\.1:\d+/.exec(line)![0];
  const instance = new URL(standin.url).host;
  prometheus = await startPrometheus({
    config: [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: dcgm',
      '    static_configs:',
      `      - targets: ['${instance}']`,
      'remote_write:',
      `  - url: ${receiver}/api/v1/write`,
      '    queue_config:',
      '      batch_send_deadline: 1s',
      '      min_backoff: 100ms',
      '      max_backoff: 1s',
      '',
    ].join('\n'),
  });
  const stand = standin;
  await until(`${SCRAPES} scrapes of the stand-in`, 30_000, async () => stand.requests.length >= SCRAPES);
  await stand.close();
  standin = undefined;
  // As in prometheus-remote-write.test.ts: wait for the staleness markers (one per series, after
  // its samples), nothing pending, and the DCGM samples received standing still.
  let last = -1;
  let stableSince = Date.now();
  await until('Prometheus to finish sending', 30_000, async () => {
    const m = await prometheus!.selfMetrics();
    const pending = metricTotal(m, 'prometheus_remote_storage_samples_pending');
    const received = await receiverCounter('nexus_remote_write_samples_total');
    const stale = await receiverCounter('nexus_remote_write_stale_markers_total');
    if (received !== last) {
      last = received;
      stableSince = Date.now();
    }
    return stale >= SERIES && pending === 0 && Date.now() - stableSince >= 1500;
  });
}, 120_000);

afterAll(async () => {
  killAll();
  await prometheus?.stop();
  await standin?.close();
  await collector?.close();
  await Promise.all([redis?.stop(), postgres?.stop()]);
});

describe('streamer --remote-write-port (traditional mode: Redis + PostgreSQL)', () => {
  it('stores exactly the DCGM samples Prometheus holds, once each', async () => {
    const matrix = await prometheus!.api<{
      result: { metric: Record<string, string>; values: [number, string][] }[];
    }>(`/api/v1/query?query=${encodeURIComponent('{__name__=~"DCGM_.+"}[1h]')}&time=${Date.now() / 1000}`);
    expect(matrix.result).toHaveLength(SERIES);
    const theirs = new Set<string>();
    for (const s of matrix.result)
      for (const [t, v] of s.values)
        theirs.add(
          `${s.metric.Hostname}|${s.metric.gpu}|${s.metric.__name__}|${Math.round(t * 1000)}|${Number(v)}`,
        );
    expect(theirs.size).toBeGreaterThanOrEqual(SERIES * (SCRAPES - 1));
    await until(
      'the collector to store every point',
      60_000,
      async () => (await collector!.store.countSamples()) >= theirs.size,
    );
    expect(await collector!.store.countSamples()).toBe(theirs.size);
    const mine = new Set<string>();
    const gpus = new Set(matrix.result.map((s) => `${s.metric.Hostname}|${s.metric.gpu}`));
    for (const g of gpus) {
      const [hostname, gpuId] = g.split('|') as [string, string];
      for (const r of await collector!.store.querySamples({
        gpu: { clusterId: 'rw-lab', hostname, gpuId },
        limit: 1_000_000,
      }))
        mine.add(`${r.hostname}|${r.gpuId}|${r.metric}|${r.timestampMs}|${r.value}`);
    }
    expect(mine).toEqual(theirs);
    expect(await collector!.store.listDeadLetters({ source: 'remote-write' })).toEqual([]);
  });

  it('answers a bad payload 400 with a reason, serves /health, and stops with exit 0 on SIGTERM', async () => {
    const bad = await fetch(`${receiver}/api/v1/write`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' },
      body: Buffer.from('not snappy at all'),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
    expect(await (await fetch(`${receiver}/health`)).json()).toMatchObject({
      status: 'ok',
      role: 'streamer',
    });
    streamer.kill('SIGTERM');
    expect(await streamer.exited).toBe(0);
    expect(streamer.output()).toMatch(/published 0 rows/);
  });
});
