/**
 * Nexus mode as separate processes: a streamer, two collectors and the API, each its own OS process,
 * on a three-member etcd and PostgreSQL. They ingest the bundled sample; the API answers exactly as
 * embedded mode does, the hierarchy is visible under /telemetry/ in etcd, and every process is
 * registered in service discovery.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';
import { startEmbedded } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import { apiSnapshot } from '../support/api-snapshot.js';
import { killAll, spawnCli, type CliProcess } from '../support/cli-process.js';
import { freePort } from '../harness/free-port.js';

let etcd: EtcdHandle;
let postgres: PostgresHarness;
let env: Record<string, string>;
let api: CliProcess;
let baseUrl: string;
/** `http://127.0.0.1:port` of each collector's METRICS_PORT server. */
const metricsBases: string[] = [];
const collectors: CliProcess[] = [];

async function getJson<T>(path: string): Promise<T> {
  const response = await fetch(`${baseUrl}${path}`);
  return (await response.json()) as T;
}

beforeAll(async () => {
  [etcd, postgres] = await Promise.all([startEtcd({ members: 3 }), startPostgres()]);
  const port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  env = {
    ETCD_ENDPOINTS: etcd.endpointList,
    DATABASE_URL: await postgres.createDatabase('nexus'),
    CLUSTER_ID: 'dgx-lab',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    POLL_INTERVAL: '200ms',
  };
  for (const id of ['collector-1', 'collector-2']) {
    // Each collector serves /health and /metrics on a port of its own (METRICS_PORT).
    const metricsPort = await freePort();
    metricsBases.push(`http://127.0.0.1:${metricsPort}`);
    const c = spawnCli(['collector'], { ...env, COLLECTOR_ID: id, METRICS_PORT: String(metricsPort) });
    collectors.push(c);
  }
  api = spawnCli(['api'], { ...env, SERVICE_ID: 'api-1' });
  await Promise.all([...collectors.map((c) => c.waitFor(/consuming/)), api.waitFor(/listening on/)]);
}, 180_000);

afterAll(async () => {
  for (const p of [...collectors, api]) p?.kill('SIGTERM');
  await Promise.race([
    Promise.all([...collectors, api].filter(Boolean).map((p) => p.exited)),
    new Promise((r) => setTimeout(r, 10_000)),
  ]);
  killAll();
  await Promise.all([etcd?.stop(), postgres?.stop()]);
});

/** Keys of items still in the etcd queue (enqueued and not acked), read with etcdctl. */
function queuedItems(): string[] {
  return execFileSync(
    'etcdctl',
    ['--endpoints', etcd.endpointList, 'get', '--prefix', '/telemetry/queue/', '--keys-only'],
    { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' },
  )
    .split('\n')
    .filter((k) => k.includes('/items/'));
}

describe('nexus mode: separate processes on three etcd members and PostgreSQL', () => {
  it('ingests the bundled sample through the etcd queue', async () => {
    const streamer = spawnCli(['streamer', bundledSamplePath()], { ...env, SERVICE_ID: 'streamer-1' });
    await streamer.waitFor(/published 2,470 rows \(0 bad\)/, 120_000);
    expect(await streamer.exited).toBe(0);

    const deadline = Date.now() + 120_000;
    for (;;) {
      const cluster = await getJson<{ metadata?: { total_gpus: number } }>('/api/v1/clusters/dgx-lab');
      const telemetry = await getJson<unknown[]>(
        '/api/v1/clusters/dgx-lab/hosts/mtv5-dgx1-hgpu-001/gpus/0/telemetry?limit=1000',
      ).catch(() => []);
      // Queue empty too: a batch is acked after its hierarchy round, so the GPU records are current.
      if (
        cluster.metadata?.total_gpus === 247 &&
        Array.isArray(telemetry) &&
        telemetry.length === 10 &&
        queuedItems().length === 0
      )
        break;
      if (Date.now() > deadline)
        throw new Error(
          `not ingested in time: ${JSON.stringify(cluster)} ${JSON.stringify(telemetry).slice(0, 300)}`,
        );
      await new Promise((r) => setTimeout(r, 250));
    }
  }, 240_000);

  it('answers the REST API exactly as embedded mode does', async () => {
    const embedded = await startEmbedded({
      config: loadConfig({}, { CLUSTER_ID: 'dgx-lab', MEMORY: true, LOG_LEVEL: 'silent' }),
      logger: createLogger('silent'),
      listen: false,
    });
    try {
      await embedded.ingest({ spec: bundledSamplePath() });
      const expected = await apiSnapshot(
        async (url) => (await embedded.app.inject(url)).json(),
        'dgx-lab',
        1,
      );
      const actual = await apiSnapshot(getJson, 'dgx-lab', 1);
      expect(actual).toEqual(expected);
    } finally {
      await embedded.close();
    }
  });

  it('keeps the hierarchy in etcd, visible with etcdctl', () => {
    const keys = execFileSync(
      'etcdctl',
      ['--endpoints', etcd.endpointList, 'get', '--prefix', '/telemetry/', '--keys-only'],
      {
        env: { ...process.env, ETCDCTL_API: '3' },
        encoding: 'utf8',
      },
    )
      .split('\n')
      .filter(Boolean);
    expect(keys).toContain('/telemetry/clusters/dgx-lab');
    expect(keys).toContain('/telemetry/clusters/dgx-lab/hosts/mtv5-dgx1-hgpu-012');
    expect(keys).toContain('/telemetry/clusters/dgx-lab/hosts/mtv5-dgx1-hgpu-012/gpus/7');
    expect(keys.filter((k) => /\/gpus\/[^/]+$/.test(k))).toHaveLength(247);
    // Every batch was acked: no item is left in the queue.
    expect(keys.filter((k) => k.startsWith('/telemetry/queue/') && k.includes('/items/'))).toEqual([]);
    expect(queuedItems()).toEqual([]);
  });

  it("serves each collector's health and Prometheus metrics on METRICS_PORT", async () => {
    let written = 0;
    for (const [i, base] of metricsBases.entries()) {
      const health = await fetch(`${base}/health`);
      expect(health.status).toBe(200);
      const report = (await health.json()) as { status: string; id: string; batches: number };
      expect(report).toMatchObject({ status: 'ok', role: 'collector', id: `collector-${i + 1}` });
      const text = await (await fetch(`${base}/metrics`)).text();
      const counter = (name: string): number => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1]);
      expect(counter('nexus_batches_acked_total')).toBe(report.batches);
      expect(text).toContain('nexus_write_latency_seconds_bucket');
      written += counter('nexus_samples_written_total');
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    }
    // No fault, so no redelivery: the two collectors' counters account for every row of the sample.
    expect(written).toBe(2_470);
  });

  it('lists every running process in service discovery', async () => {
    const services = await getJson<{ type: string; id: string; address: string }[]>('/api/v1/services');
    expect(services.map((s) => `${s.type}/${s.id}`).sort()).toEqual([
      'api/api-1',
      'collector/collector-1',
      'collector/collector-2',
    ]);
    expect(services.find((s) => s.type === 'api')?.address).toBe(baseUrl);
  });
});
