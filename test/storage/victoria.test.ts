/**
 * What only the remote-write sample store has to show, on a real VictoriaMetrics and PostgreSQL:
 * the labels it writes are our /federate labels (plus what makes the way back exact), samples the
 * TSDB cannot hold become dead letters, a crash between the remote write and the ledger commit
 * stores nothing twice, a TSDB that is down is a retryable error and nothing is lost across its
 * SIGKILL, and the topology picks it when REMOTE_WRITE_URL is set.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import { RemoteTsdbClient, readUrlOf } from '../../src/adapters/victoria/client.js';
import {
  CLUSTER_LABEL,
  LABELS_LABEL,
  remoteLabels,
  seriesKeyOf,
} from '../../src/adapters/victoria/labels.js';
import {
  GroupCommit,
  type VictoriaSampleStore,
  createVictoriaSampleStore,
  parseRetentionPeriod,
} from '../../src/adapters/victoria/sample-store.js';
import { loadConfig } from '../../src/config/config.js';
import type { Batch, Sample, SeriesKey } from '../../src/domain/types.js';
import { seriesLabels } from '../../src/promql/labels-view.js';
import { resolveTopology } from '../../src/runtime/topology.js';
import { type PostgresHarness, startPostgres } from '../harness/postgres.js';
import { type VictoriaHandle, startVictoriaMetrics } from '../harness/victoria-metrics.js';

const T0 = Date.parse('2025-07-18T20:42:34.000Z');
const DAY = 86_400_000;

let pg: PostgresHarness;
let vm: VictoriaHandle;
const stores: VictoriaSampleStore[] = [];

beforeAll(async () => {
  [pg, vm] = await Promise.all([startPostgres(), startVictoriaMetrics()]);
}, 60_000);
afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await Promise.all([pg?.stop(), vm?.stop()]);
});

async function openStore(target: VictoriaHandle = vm, retentionMs?: number): Promise<VictoriaSampleStore> {
  const connectionString = await pg.createDatabase(`nexus_${randomUUID().replaceAll('-', '').slice(0, 16)}`);
  const ledger = await createPostgresSampleStore({ connectionString, poolSize: 2 });
  const store = createVictoriaSampleStore(
    { writeUrl: target.writeUrl, retentionMs, timeoutMs: 2000 },
    ledger,
  );
  await store.migrate();
  stores.push(store);
  return store;
}

function key(overrides: Partial<SeriesKey> = {}): SeriesKey {
  const id = randomUUID();
  return {
    clusterId: 'vm-test',
    hostname: 'host-a',
    gpuId: '0',
    uuid: `GPU-${id}`,
    device: 'nvidia0',
    modelName: 'NVIDIA H100 80GB HBM3',
    metric: 'DCGM_FI_DEV_GPU_UTIL',
    container: '',
    pod: '',
    namespace: '',
    labels: {},
    ...overrides,
  };
}

function batch(samples: Sample[], id = randomUUID()): Batch {
  return { id, source: 'vm-test', samples, deadLetters: [] };
}

const at = (k: SeriesKey, timestampMs: number, value: number): Sample => ({ ...k, timestampMs, value });

describe('remote-write sample store on VictoriaMetrics', () => {
  it('writes the /federate label set (plus nexus_labels) and reads back the exact series', async () => {
    const store = await openStore();
    const k = key({
      container: 'trainer',
      pod: 'llm-0',
      namespace: 'research',
      labels: {
        DCGM_FI_DRIVER_VERSION: '535.129.03',
        instance: 'exporter:9400',
        quoted: 'say "hi", {x}',
        unicode: 'température ✓',
        empty: '',
        'key with spaces=and,commas': 'v',
      },
    });
    const samples = [at(k, T0, 1.5), at(k, T0 + 1000, -2.25)];
    expect(await store.writeBatch(batch(samples))).toMatchObject({ inserted: 2, deadLetters: 0 });

    const client = new RemoteTsdbClient({ writeUrl: vm.writeUrl, readUrl: vm.url });
    const [raw, ...rest] = await client.export(`{UUID="${k.uuid}"}`, T0 - 1000, T0 + 5000);
    expect(rest).toEqual([]);
    expect(raw!.metric).toEqual({
      ...seriesLabels(k),
      [LABELS_LABEL]: JSON.stringify(Object.fromEntries(Object.entries(k.labels).sort())),
    });
    expect(raw!.metric).toMatchObject({
      __name__: 'DCGM_FI_DEV_GPU_UTIL',
      gpu: '0',
      UUID: k.uuid,
      device: 'nvidia0',
      modelName: 'NVIDIA H100 80GB HBM3',
      Hostname: 'host-a',
      container: 'trainer',
      pod: 'llm-0',
      namespace: 'research',
      cluster: 'vm-test',
      DCGM_FI_DRIVER_VERSION: '535.129.03',
    });
    expect(raw!.metric.instance).toBeUndefined(); // as /federate: target labels are not shown
    expect(await store.querySamples({ gpu: { uuid: k.uuid }, order: 'asc' })).toEqual(samples);
  });

  it('keeps a cluster id that a stored `cluster` label hides, and reads foreign series without nexus labels', () => {
    const hidden = key({ labels: { cluster: 'from-exporter' } });
    const labels = remoteLabels(hidden);
    expect(labels.cluster).toBe('from-exporter');
    expect(labels[CLUSTER_LABEL]).toBe('vm-test');
    expect(seriesKeyOf(labels)).toEqual(hidden);
    expect(remoteLabels(key())[CLUSTER_LABEL]).toBeUndefined();
    // A series someone else wrote: its other labels become `labels`, absent columns are empty.
    expect(
      seriesKeyOf({
        __name__: 'DCGM_FI_DEV_GPU_TEMP',
        gpu: '1',
        UUID: 'GPU-x',
        Hostname: 'h',
        cluster: 'c',
        pci_bus_id: '00:01',
      }),
    ).toEqual({
      clusterId: 'c',
      hostname: 'h',
      gpuId: '1',
      uuid: 'GPU-x',
      device: '',
      modelName: '',
      metric: 'DCGM_FI_DEV_GPU_TEMP',
      container: '',
      pod: '',
      namespace: '',
      labels: { pci_bus_id: '00:01' },
    });
  });

  it('dead-letters samples outside what the TSDB keeps (before its retention, more than 2 days ahead)', async () => {
    const store = await openStore(vm, 30 * DAY);
    const k = key();
    const now = Date.now();
    const b = batch([at(k, now - 40 * DAY, 1), at(k, now - DAY, 2), at(k, now + 3 * DAY, 3)]);
    const r = await store.writeBatch(b);
    expect(r).toEqual({
      duplicate: false,
      inserted: 1,
      deadLetters: 2,
      unstorable: 2,
      conflicts: 0,
      refusedSamples: [0, 2],
    });
    const letters = await store.listDeadLetters({ source: 'vm-test' });
    expect(letters.map((d) => d.reason)).toEqual(['unstorable_row', 'unstorable_row']);
    expect(letters.every((d) => /is outside what the TSDB keeps/.test(d.detail))).toBe(true);
    expect((await store.querySamples({ gpu: { uuid: k.uuid } })).map((s) => s.value)).toEqual([2]);
  });

  it('reads the retention from /flags: -retentionPeriod=100y keeps 2025 samples', async () => {
    expect(parseRetentionPeriod('100y')).toBe(100 * 365 * DAY);
    expect(parseRetentionPeriod('1')).toBe(31 * DAY);
    expect(parseRetentionPeriod('2w')).toBe(14 * DAY);
    expect(parseRetentionPeriod('12h')).toBe(12 * 3_600_000);
    expect(parseRetentionPeriod('soon')).toBeUndefined();
    const store = await openStore();
    expect((await store.writeBatch(batch([at(key(), T0, 1)]))).inserted).toBe(1);
  });

  it('after a crash between the remote write and the ledger commit, the redelivery adds nothing', async () => {
    const store = await openStore();
    const k = key();
    const samples = [at(k, T0, 1), at(k, T0 + 1000, 2)];
    const b = batch(samples);
    // The first attempt's remote write landed; its process died before the ledger commit.
    const client = new RemoteTsdbClient({ writeUrl: vm.writeUrl, readUrl: vm.url });
    await client.write([{ labels: remoteLabels(k), timestamps: [T0, T0 + 1000], values: [1, 2] }]);
    await client.flush();
    expect(await store.writeBatch(b)).toEqual({
      duplicate: false,
      inserted: 0,
      deadLetters: 0,
      unstorable: 0,
      conflicts: 0,
    });
    expect(await store.writeBatch(b)).toMatchObject({ duplicate: true });
    expect(await store.querySamples({ gpu: { uuid: k.uuid }, order: 'asc' })).toEqual(samples);
  });

  it('serves a MIG instance only when asked, and the GPU alone otherwise', async () => {
    const store = await openStore();
    const gpu = key();
    const mig = { ...gpu, labels: { GPU_I_ID: '3' } };
    await store.writeBatch(batch([at(gpu, T0, 10), at(mig, T0, 30)]));
    expect((await store.querySamples({ gpu: { uuid: gpu.uuid } })).map((s) => s.value)).toEqual([10]);
    const instance = await store.querySamples({ gpu: { uuid: gpu.uuid }, migInstance: '3' });
    expect(instance.map((s) => [s.value, s.labels])).toEqual([[30, { GPU_I_ID: '3' }]]);
  });

  it('sends the bearer token on writes and reads; the read URL defaults to the write URL without /api/v1/write', async () => {
    expect(readUrlOf('http://vm:8428/api/v1/write')).toBe('http://vm:8428');
    expect(readUrlOf('http://vminsert:8480/insert/0/prometheus/api/v1/write')).toBe(
      'http://vminsert:8480/insert/0/prometheus',
    );
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      req.resume();
      req.on('end', () => {
        res.statusCode = req.url === '/api/v1/write' ? 204 : 200;
        res.end(req.url === '/api/v1/export' ? '' : undefined);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const client = new RemoteTsdbClient({
        writeUrl: `${base}/api/v1/write`,
        readUrl: base,
        bearerToken: 's3cret',
      });
      await client.write([{ labels: { __name__: 'm' }, timestamps: [T0], values: [1] }]);
      expect(await client.export('{__name__="m"}', T0, T0)).toEqual([]);
      expect(seen).toEqual(['POST /api/v1/write Bearer s3cret', 'POST /api/v1/export Bearer s3cret']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a TSDB that is down is retryable BACKEND_UNAVAILABLE; nothing acknowledged is lost across its SIGKILL', async () => {
    const own = await startVictoriaMetrics();
    try {
      const store = await openStore(own);
      const k = key();
      const first = batch(Array.from({ length: 500 }, (_, i) => at(k, T0 + i * 1000, i)));
      expect((await store.writeBatch(first)).inserted).toBe(500);
      await own.kill(); // right after the acknowledged write
      const second = batch([at(k, T0 + 600_000, 600)]);
      await expect(store.writeBatch(second)).rejects.toMatchObject({
        code: 'BACKEND_UNAVAILABLE',
        retryable: true,
      });
      await expect(store.ping()).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
      await own.restart();
      // The retry the collector would do: same batch id, written once; the first batch survived.
      expect(await store.writeBatch(second)).toMatchObject({ duplicate: false, inserted: 1 });
      expect(await store.countSamples()).toBe(501);
      expect(await store.writeBatch(first)).toMatchObject({ duplicate: true });
    } finally {
      await own.stop();
    }
  });

  it('the topology picks it for the collector and the API when REMOTE_WRITE_URL is set', () => {
    const env = {
      DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db',
      REDIS_URL: 'redis://127.0.0.1:6379',
      ENABLE_NEXUS: false,
    };
    const victoria = loadConfig({}, { ...env, REMOTE_WRITE_URL: 'http://127.0.0.1:8428/api/v1/write' });
    expect(resolveTopology(victoria, 'collector').samples).toBe('victoria');
    expect(resolveTopology(victoria, 'api').samples).toBe('victoria');
    expect(resolveTopology(loadConfig({}, env), 'collector').samples).toBe('postgres');
    expect(() =>
      resolveTopology(loadConfig({}, { REMOTE_WRITE_URL: 'http://127.0.0.1:8428/api/v1/write' }), 'api'),
    ).toThrow(/PostgreSQL/);
  });

  it('group commit: a caller waits for a run that starts after it, and waiting callers share one run', async () => {
    const started: number[] = [];
    let release: (() => void) | undefined;
    const commit = new GroupCommit(async () => {
      started.push(started.length);
      await new Promise<void>((resolve) => (release = resolve));
    });
    const first = commit.run();
    const second = commit.run(); // the first run started before this caller: it needs another
    const third = commit.run(); // shares the second run
    expect(started).toEqual([0]);
    release!();
    await first;
    await new Promise((r) => setTimeout(r, 0));
    expect(started).toEqual([0, 1]);
    release!();
    await Promise.all([second, third]);
    expect(started).toEqual([0, 1]);
  });
});
