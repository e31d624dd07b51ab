// REST API end to end through fastify inject(), on the real embedded coordination store and an
// in-memory PGlite sample store: shapes, values, ordering, ranges, filters, activity, errors,
// OpenAPI, readiness and metrics.
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { buildApp, type ApiDeps } from '../../src/api/app.js';
import type { ClusterRecord, DeadLetter, GpuRecord, HostRecord, Sample } from '../../src/domain/types.js';
import { NexusError } from '../../src/errors.js';
import { clusterKey, gpuKey, hostKey } from '../../src/hierarchy/paths.js';
import { createPipelineMetrics } from '../../src/metrics/registry.js';
import type { Coordination } from '../../src/ports/coordination.js';
import type { SampleStore } from '../../src/ports/sample-store.js';

const NOW = Date.parse('2025-07-18T21:00:00Z');
const STALE = 60_000;
const T0 = Date.parse('2025-07-18T20:42:34Z');
const iso = (ms: number) => new Date(ms).toISOString();
const at = (second: number) => T0 + second * 1000;

const MODEL = 'NVIDIA H100 80GB HBM3';
const UUID_A0 = 'GPU-5fd4f087-86f3-7a43-b711-4771313afc50';
const UUID_A1 = 'GPU-bc7a12ab-4998-fdc5-0785-2678a929a142';
const UUID_B0 = 'GPU-6c8915d7-f04d-beb9-3e8a-e06f97ca4480';
const UUID_STORE_ONLY = 'GPU-9ba418e1-59be-2f2e-6031-e3f6b7c64ad7';
const HOST_A = 'mtv5-dgx1-hgpu-031';
const HOST_B = 'mtv5-dgx1-hgpu-032';

// Exact values from the sample CSV (DCGM_FI_DEV_POWER_USAGE column) and utilisations.
const POWER = [156.596, 117.77, 71.483, 126.961, 300.794];
const UTIL = [0, 100, 37, 12, 88];

interface GpuFixture {
  clusterId: string;
  hostname: string;
  gpuId: string;
  uuid: string;
}
const GPU_A0: GpuFixture = { clusterId: 'dgx-a', hostname: HOST_A, gpuId: '0', uuid: UUID_A0 };
const GPU_A1: GpuFixture = { clusterId: 'dgx-a', hostname: HOST_A, gpuId: '1', uuid: UUID_A1 };
const GPU_B0: GpuFixture = { clusterId: 'dgx-a', hostname: HOST_B, gpuId: '0', uuid: UUID_B0 };
const GPU_STORE_ONLY: GpuFixture = {
  clusterId: 'dgx-z',
  hostname: 'old-host',
  gpuId: '3',
  uuid: UUID_STORE_ONLY,
};

function sample(
  gpu: GpuFixture,
  metric: string,
  timestampMs: number,
  value: number,
  extra: Partial<Sample> = {},
) {
  const s: Sample = {
    ...gpu,
    device: `nvidia${gpu.gpuId}`,
    modelName: MODEL,
    metric,
    container: '',
    pod: '',
    namespace: '',
    labels: { Hostname: gpu.hostname, UUID: gpu.uuid, gpu: gpu.gpuId, __name__: metric },
    timestampMs,
    value,
    ...extra,
  };
  return s;
}

function gpuRecord(gpu: GpuFixture, lastSeenMs: number, metrics: GpuRecord['metrics']): GpuRecord {
  return { ...gpu, device: `nvidia${gpu.gpuId}`, modelName: MODEL, metrics, lastSampleMs: at(4), lastSeenMs };
}

async function fillHierarchy(c: Coordination): Promise<void> {
  const clusters: ClusterRecord[] = [
    { clusterId: 'dgx-a', name: 'DGX A', region: 'us-west-1', lastSeenMs: NOW },
    // Shares dgx-a's key prefix; must never leak into it.
    { clusterId: 'dgx-ab', name: 'DGX AB', region: 'eu-north-1', lastSeenMs: NOW },
  ];
  for (const r of clusters) await c.put(clusterKey(r.clusterId), JSON.stringify(r));
  const hosts: HostRecord[] = [
    { clusterId: 'dgx-a', hostname: HOST_A, lastSeenMs: NOW - 1000 },
    { clusterId: 'dgx-a', hostname: HOST_B, lastSeenMs: NOW - 5 * STALE },
    { clusterId: 'dgx-ab', hostname: 'node-1', lastSeenMs: NOW },
  ];
  for (const r of hosts) await c.put(hostKey(r.clusterId, r.hostname), JSON.stringify(r));
  const gpus: GpuRecord[] = [
    gpuRecord(GPU_A0, NOW - 1000, {
      DCGM_FI_DEV_POWER_USAGE: { value: 300.794, timestampMs: at(4) },
      DCGM_FI_DEV_GPU_UTIL: { value: 88, timestampMs: at(4) },
    }),
    gpuRecord(GPU_A1, NOW - STALE, { DCGM_FI_DEV_GPU_UTIL: { value: 100, timestampMs: at(4) } }),
    gpuRecord(GPU_B0, NOW - 5 * STALE, { DCGM_FI_DEV_GPU_UTIL: { value: 7, timestampMs: at(4) } }),
    gpuRecord({ clusterId: 'dgx-ab', hostname: 'node-1', gpuId: '0', uuid: 'GPU-ab' }, NOW, {}),
  ];
  for (const r of gpus) await c.put(gpuKey(r.clusterId, r.hostname, r.gpuId), JSON.stringify(r));
}

function samples(): Sample[] {
  const out: Sample[] = [];
  for (let i = 0; i < 5; i++) {
    const attribution = i === 2 ? { container: 'trainer', pod: 'llm-7b-0', namespace: 'research' } : {};
    out.push(sample(GPU_A0, 'DCGM_FI_DEV_POWER_USAGE', at(i), POWER[i]!, attribution));
    out.push(sample(GPU_A0, 'DCGM_FI_DEV_GPU_UTIL', at(i), UTIL[i]!));
    out.push(sample(GPU_B0, 'DCGM_FI_DEV_GPU_UTIL', at(i), 1000 + i)); // same index, other host
  }
  out.push(sample(GPU_A1, 'DCGM_FI_DEV_GPU_UTIL', at(0), 100));
  out.push(sample(GPU_STORE_ONLY, 'DCGM_FI_DEV_GPU_TEMP', at(0), 63));
  return out;
}

const DEAD_LETTERS: DeadLetter[] = [
  { source: 'a.csv', line: 7, raw: '"x","y"', reason: 'column_count', detail: 'expected 12 columns, got 2' },
  { source: 'b.csv', line: 3, raw: '"NaN"', reason: 'non_finite_value', detail: 'value NaN' },
];

const silent = pino({ level: 'silent' });

function deps(coordination: Coordination, store: SampleStore, overrides: Partial<ApiDeps> = {}): ApiDeps {
  return {
    coordination,
    store,
    logger: silent,
    metrics: createPipelineMetrics(),
    staleAfterMs: STALE,
    readiness: {},
    now: () => NOW,
    ...overrides,
  };
}

let coordination: Coordination;
let store: SampleStore;
let app: FastifyInstance;

beforeAll(async () => {
  coordination = createEmbeddedCoordination();
  await fillHierarchy(coordination);
  store = await createPgliteSampleStore({ memory: true });
  await store.migrate();
  await store.writeBatch({ id: 'batch-1', source: 'a.csv', samples: samples(), deadLetters: DEAD_LETTERS });
  app = await buildApp(deps(coordination, store));
});

afterAll(async () => {
  await app?.close();
  await store?.close();
  await coordination?.close();
});

async function get(url: string, on: FastifyInstance = app) {
  const response = await on.inject({ method: 'GET', url });
  const type = String(response.headers['content-type'] ?? '');
  return {
    status: response.statusCode,
    headers: response.headers,
    text: response.body,
    body: type.includes('json') ? (response.json() as unknown) : undefined,
  };
}

/** Assert the one error shape, and return it. */
async function expectError(url: string, status: number, code: string, parameter?: string) {
  const r = await get(url);
  expect(r.status, `${url}: ${r.text}`).toBe(status);
  const error = (r.body as { error: Record<string, unknown> }).error;
  expect(Object.keys(r.body as object)).toEqual(['error']);
  expect(error.code).toBe(code);
  expect(typeof error.message).toBe('string');
  expect(error.parameter).toBe(parameter);
  expect(r.text).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack frames
  return error as { code: string; message: string; parameter?: string };
}

type TelemetryItem = Record<string, unknown>;
const A0 = `/api/v1/clusters/dgx-a/hosts/${HOST_A}/gpus/0`;

describe('clusters and hosts', () => {
  it('GET /api/v1/clusters/{id} has exactly the guide shape', async () => {
    const r = await get('/api/v1/clusters/dgx-a');
    expect(r.status).toBe(200);
    expect(r.text).toBe(
      JSON.stringify({
        cluster_id: 'dgx-a',
        cluster_name: 'DGX A',
        region: 'us-west-1',
        metadata: { total_hosts: 2, total_gpus: 3, active_hosts: 1, active_gpus: 2 },
      }),
    );
  });

  it('lists every cluster in the same shape', async () => {
    const r = await get('/api/v1/clusters');
    expect(r.body).toEqual([
      {
        cluster_id: 'dgx-a',
        cluster_name: 'DGX A',
        region: 'us-west-1',
        metadata: { total_hosts: 2, total_gpus: 3, active_hosts: 1, active_gpus: 2 },
      },
      {
        cluster_id: 'dgx-ab',
        cluster_name: 'DGX AB',
        region: 'eu-north-1',
        metadata: { total_hosts: 1, total_gpus: 1, active_hosts: 1, active_gpus: 1 },
      },
    ]);
  });

  it('lists hosts with GPU counts, activity and last_seen', async () => {
    const r = await get('/api/v1/clusters/dgx-a/hosts');
    expect(r.body).toEqual([
      {
        host_id: HOST_A,
        hostname: HOST_A,
        cluster_id: 'dgx-a',
        gpu_count: 2,
        active_gpu_count: 2,
        active: true,
        last_seen: iso(NOW - 1000),
      },
      {
        host_id: HOST_B,
        hostname: HOST_B,
        cluster_id: 'dgx-a',
        gpu_count: 1,
        active_gpu_count: 0,
        active: false,
        last_seen: iso(NOW - 5 * STALE),
      },
    ]);
    expect((await get(`/api/v1/clusters/dgx-a/hosts/${HOST_B}`)).body).toMatchObject({ host_id: HOST_B });
  });

  it('404s unknown clusters and hosts in the error shape', async () => {
    await expectError('/api/v1/clusters/nope', 404, 'NOT_FOUND');
    await expectError('/api/v1/clusters/dgx', 404, 'NOT_FOUND');
    await expectError('/api/v1/clusters/nope/hosts', 404, 'NOT_FOUND');
    const unknownHost = await expectError('/api/v1/clusters/dgx-a/hosts/nope', 404, 'NOT_FOUND');
    expect(unknownHost.message).toContain("Host 'nope'");
    const unknownCluster = await expectError('/api/v1/clusters/nope/hosts/x/gpus', 404, 'NOT_FOUND');
    expect(unknownCluster.message).toContain("Cluster 'nope'");
    await expectError('/api/v1/clusters/dgx-a/hosts/mtv5-dgx1-hgpu-03/gpus', 404, 'NOT_FOUND');
    await expectError('/no/such/route', 404, 'NOT_FOUND');
  });
});

describe('request errors share the error shape', () => {
  it('names an over-long path parameter', async () => {
    await expectError(`/api/v1/clusters/${'x'.repeat(300)}`, 400, 'BAD_REQUEST', 'clusterId');
    await expectError(`/api/v1/clusters/dgx-a/hosts/${'h'.repeat(300)}/gpus`, 400, 'BAD_REQUEST', 'hostId');
  });

  it('refuses broken URL encoding and unknown query parameters', async () => {
    await expectError('/api/v1/clusters/%E0%A4%A', 400, 'BAD_REQUEST');
    const unknown = await expectError('/api/v1/clusters?verbose=1', 400, 'BAD_REQUEST', 'verbose');
    expect(unknown.message).toBe("Unknown query parameter 'verbose'");
  });
});

describe('activity follows staleAfterMs and the injected clock', () => {
  it('marks hosts and GPUs inactive once now - lastSeen exceeds staleAfterMs', async () => {
    let now = NOW;
    const clocked = await buildApp(deps(coordination, store, { now: () => now }), { docs: false });
    try {
      const totals = async () =>
        ((await get('/api/v1/clusters/dgx-a', clocked)).body as { metadata: Record<string, number> })
          .metadata;
      expect(await totals()).toEqual({ total_hosts: 2, total_gpus: 3, active_hosts: 1, active_gpus: 2 });
      now = NOW + 1; // GPU 1 was last seen exactly STALE ago: now 1 ms past the window
      expect(await totals()).toMatchObject({ active_hosts: 1, active_gpus: 1 });
      now = NOW + STALE - 1000 + 1; // host A and GPU 0 fall out too
      expect(await totals()).toMatchObject({ active_hosts: 0, active_gpus: 0 });
      const gpus = (await get(`/api/v1/clusters/dgx-a/hosts/${HOST_A}/gpus`, clocked)).body as Array<{
        active: boolean;
      }>;
      expect(gpus.map((g) => g.active)).toEqual([false, false]);
      now = NOW - 10 * STALE; // clock behind every record: everything active
      expect(await totals()).toMatchObject({ active_hosts: 2, active_gpus: 3 });
    } finally {
      await clocked.close();
    }
  });
});

describe('GPUs of a host', () => {
  it('lists GPUs with identity, activity and latest metrics by DCGM field', async () => {
    const r = await get(`/api/v1/clusters/dgx-a/hosts/${HOST_A}/gpus`);
    expect(r.status).toBe(200);
    const gpus = r.body as Array<Record<string, unknown>>;
    expect(gpus[0]).toEqual({
      gpu_id: '0',
      uuid: UUID_A0,
      device: 'nvidia0',
      model_name: MODEL,
      hostname: HOST_A,
      cluster_id: 'dgx-a',
      active: true,
      last_seen: iso(NOW - 1000),
      last_sample: iso(at(4)),
      metrics: {
        DCGM_FI_DEV_GPU_UTIL: { value: 88, timestamp: iso(at(4)) },
        DCGM_FI_DEV_POWER_USAGE: { value: 300.794, timestamp: iso(at(4)) },
      },
      // Written a second ago but sampled long before the reader's clock: stale by sample time.
      health: {
        state: 'warning',
        since: iso(at(4) + STALE),
        reasons: [
          {
            code: 'STALE',
            severity: 'warning',
            message: expect.stringMatching(/^no sample for \d+ s/),
            since: iso(at(4) + STALE),
          },
        ],
      },
    });
    expect(gpus.map((g) => [g.gpu_id, g.uuid, g.active])).toEqual([
      ['0', UUID_A0, true],
      ['1', UUID_A1, true],
    ]);
  });

  it('gets one GPU by index or by UUID (any case)', async () => {
    const byIndex = await get(A0);
    const byUuid = await get(`/api/v1/clusters/dgx-a/hosts/${HOST_A}/gpus/${UUID_A0}`);
    const byLower = await get(`/api/v1/clusters/dgx-a/hosts/${HOST_A}/gpus/${UUID_A0.toLowerCase()}`);
    expect(byIndex.status).toBe(200);
    expect(byUuid.body).toEqual(byIndex.body);
    expect(byLower.body).toEqual(byIndex.body);
    expect((await get(`/api/v1/clusters/dgx-a/hosts/${HOST_B}/gpus/0`)).body).toMatchObject({
      uuid: UUID_B0,
      active: false,
    });
  });

  it('404s unknown GPUs, and a UUID from another host', async () => {
    await expectError(`/api/v1/clusters/dgx-a/hosts/${HOST_A}/gpus/7`, 404, 'NOT_FOUND');
    await expectError(`/api/v1/clusters/dgx-a/hosts/${HOST_A}/gpus/${UUID_B0}`, 404, 'NOT_FOUND');
    await expectError(`/api/v1/clusters/dgx-a/hosts/${HOST_A}/gpus/7/telemetry`, 404, 'NOT_FOUND');
    await expectError(`/api/v1/clusters/dgx-a/hosts/nope/gpus/0/telemetry`, 404, 'NOT_FOUND');
  });
});

describe('GPU telemetry (hierarchical route)', () => {
  const telemetry = async (query = '', base = A0) => {
    const r = await get(`${base}/telemetry${query}`);
    expect(r.status, r.text).toBe(200);
    return r.body as TelemetryItem[];
  };
  const hasMore = async (query: string) => (await get(`${A0}/telemetry${query}`)).headers['x-has-more'];

  it('returns every sample newest first by default, with full attribution', async () => {
    const body = await telemetry();
    expect(body).toHaveLength(10);
    expect(await hasMore('')).toBe('false');
    const times = body.map((t) => Date.parse(t.timestamp as string));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(times[0]).toBe(at(4));
    expect(new Set(body.map((t) => t.uuid))).toEqual(new Set([UUID_A0]));
    const attributed = body.find((t) => t.metric_name === 'DCGM_FI_DEV_POWER_USAGE' && t.pod);
    expect(attributed).toEqual({
      timestamp: iso(at(2)),
      metric_name: 'DCGM_FI_DEV_POWER_USAGE',
      value: 71.483,
      gpu_id: '0',
      uuid: UUID_A0,
      hostname: HOST_A,
      cluster_id: 'dgx-a',
      device: 'nvidia0',
      model_name: MODEL,
      container: 'trainer',
      pod: 'llm-7b-0',
      namespace: 'research',
      labels: { Hostname: HOST_A, UUID: UUID_A0, gpu: '0', __name__: 'DCGM_FI_DEV_POWER_USAGE' },
    });
  });

  it('filters by metric with the CSV values exactly, in both orders', async () => {
    const desc = await telemetry('?metric=DCGM_FI_DEV_POWER_USAGE');
    expect(desc.map((t) => t.value)).toEqual([...POWER].reverse());
    expect(desc.map((t) => t.timestamp)).toEqual([4, 3, 2, 1, 0].map((s) => iso(at(s))));
    const asc = await telemetry('?metric=DCGM_FI_DEV_POWER_USAGE&order=asc');
    expect(asc.map((t) => t.value)).toEqual(POWER);
    // The raw JSON carries the CSV's digits.
    const raw = (await get(`${A0}/telemetry?metric=DCGM_FI_DEV_POWER_USAGE`)).text;
    for (const v of ['156.596', '117.77', '71.483', '126.961', '300.794'])
      expect(raw).toContain(`"value":${v}`);
  });

  it('accepts several metrics, comma-separated or repeated', async () => {
    const comma = await telemetry('?metric=DCGM_FI_DEV_POWER_USAGE,DCGM_FI_DEV_GPU_UTIL');
    const repeated = await telemetry('?metric=DCGM_FI_DEV_POWER_USAGE&metric=DCGM_FI_DEV_GPU_UTIL');
    expect(comma).toHaveLength(10);
    expect(repeated).toEqual(comma);
    const util = await telemetry('?metric=DCGM_FI_DEV_GPU_UTIL&order=asc');
    expect(util.map((t) => t.value)).toEqual(UTIL);
    expect(await telemetry('?metric=DCGM_FI_DEV_XID_ERRORS')).toEqual([]);
  });

  it('limits and reports has_more', async () => {
    const page = await telemetry('?limit=3');
    expect(page.map((t) => t.timestamp)).toEqual([iso(at(4)), iso(at(4)), iso(at(3))]);
    expect(await hasMore('?limit=3')).toBe('true');
    expect(await telemetry('?limit=10')).toHaveLength(10);
    expect(await hasMore('?limit=10')).toBe('false');
    const oldest = await telemetry('?limit=1&order=asc&metric=DCGM_FI_DEV_POWER_USAGE');
    expect(oldest.map((t) => t.value)).toEqual([156.596]);
  });

  it('includes both ends of a time range', async () => {
    const range = await telemetry(
      `?metric=DCGM_FI_DEV_POWER_USAGE&start_time=${iso(at(1))}&end_time=${iso(at(3))}&order=asc`,
    );
    expect(range.map((t) => t.value)).toEqual([117.77, 71.483, 126.961]);
    const point = await telemetry(`?start_time=2025-07-18T20:42:36Z&end_time=2025-07-18T20:42:36Z`);
    expect(point.map((t) => t.timestamp)).toEqual([iso(at(2)), iso(at(2))]);
    const offset = await telemetry(`?metric=DCGM_FI_DEV_POWER_USAGE&start_time=2025-07-18T22:42:37%2B02:00`);
    expect(offset.map((t) => t.value)).toEqual([300.794, 126.961]);
    const open = await telemetry(`?metric=DCGM_FI_DEV_POWER_USAGE&end_time=${iso(at(0))}`);
    expect(open.map((t) => t.value)).toEqual([156.596]);
  });

  it('resolves the GPU by UUID in the path and never mixes hosts', async () => {
    const byUuid = await telemetry('', `/api/v1/clusters/dgx-a/hosts/${HOST_A}/gpus/${UUID_A0}`);
    expect(byUuid).toEqual(await telemetry());
    const otherHost = await telemetry('?order=asc', `/api/v1/clusters/dgx-a/hosts/${HOST_B}/gpus/0`);
    expect(otherHost.map((t) => t.value)).toEqual([1000, 1001, 1002, 1003, 1004]);
    expect(new Set(otherHost.map((t) => t.hostname))).toEqual(new Set([HOST_B]));
  });

  it.each([
    ['?limit=0', 'limit'],
    ['?limit=10001', 'limit'],
    ['?limit=abc', 'limit'],
    ['?limit=2.5', 'limit'],
    ['?start_time=yesterday', 'start_time'],
    ['?start_time=2025-07-18T20:42:34', 'start_time'],
    ['?end_time=2025-02-30T00:00:00Z', 'end_time'],
    ['?start_time=2025-07-18T20:42:36Z&end_time=2025-07-18T20:42:35Z', 'start_time'],
    ['?metric=%20,%20', 'metric'],
    ['?metric=DROP%20TABLE', 'metric'],
    ['?order=sideways', 'order'],
    ['?limt=5', 'limt'],
  ])('400 naming the parameter for %s', async (query, parameter) => {
    await expectError(`${A0}/telemetry${query}`, 400, 'BAD_REQUEST', parameter);
  });

  it('reports a bad parameter before an unknown GPU', async () => {
    await expectError(`/api/v1/clusters/nope/hosts/x/gpus/0/telemetry?limit=0`, 400, 'BAD_REQUEST', 'limit');
  });
});

describe('flat GPU API (take-home)', () => {
  it('lists every GPU across clusters, from the hierarchy and the store', async () => {
    const r = await get('/api/v1/gpus');
    expect(r.status).toBe(200);
    const gpus = r.body as Array<Record<string, string>>;
    expect(gpus.map((g) => [g.cluster_id, g.hostname, g.gpu_id, g.uuid])).toEqual([
      ['dgx-a', HOST_A, '0', UUID_A0],
      ['dgx-a', HOST_A, '1', UUID_A1],
      ['dgx-a', HOST_B, '0', UUID_B0],
      ['dgx-ab', 'node-1', '0', 'GPU-ab'],
      ['dgx-z', 'old-host', '3', UUID_STORE_ONLY],
    ]);
    expect(gpus[0]).toEqual({
      uuid: UUID_A0,
      gpu_id: '0',
      hostname: HOST_A,
      cluster_id: 'dgx-a',
      model: MODEL,
      device: 'nvidia0',
    });
  });

  it('serves telemetry by UUID, with the same filters', async () => {
    const r = await get(`/api/v1/gpus/${UUID_A0}/telemetry?metric=DCGM_FI_DEV_POWER_USAGE&limit=2`);
    expect(r.status).toBe(200);
    const body = r.body as TelemetryItem[];
    expect(body.map((t) => t.value)).toEqual([300.794, 126.961]);
    expect(r.headers['x-has-more']).toBe('true');
    const lower = await get(
      `/api/v1/gpus/${UUID_A0.toLowerCase()}/telemetry?metric=DCGM_FI_DEV_POWER_USAGE&limit=2`,
    );
    expect(lower.body).toEqual(body);
    const storeOnly = (await get(`/api/v1/gpus/${UUID_STORE_ONLY}/telemetry`)).body as TelemetryItem[];
    expect(storeOnly.map((t) => [t.metric_name, t.value, t.cluster_id])).toEqual([
      ['DCGM_FI_DEV_GPU_TEMP', 63, 'dgx-z'],
    ]);
  });

  it('refuses a bare index as ambiguous and points to the hierarchical route', async () => {
    const error = await expectError('/api/v1/gpus/0/telemetry', 400, 'AMBIGUOUS_GPU_ID', 'id');
    expect(error.message).toContain('/api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/0/telemetry');
    expect(error.message).toMatch(/ambiguous|different GPU on every host/);
  });

  it('404s an unknown UUID and 400s bad parameters', async () => {
    await expectError('/api/v1/gpus/GPU-00000000-0000-0000-0000-000000000000/telemetry', 404, 'NOT_FOUND');
    await expectError(`/api/v1/gpus/${UUID_A0}/telemetry?end_time=noon`, 400, 'BAD_REQUEST', 'end_time');
    await expectError(`/api/v1/gpus/${UUID_A0}/telemetry?limit=-1`, 400, 'BAD_REQUEST', 'limit');
    await expectError('/api/v1/gpus?page=2', 400, 'BAD_REQUEST', 'page');
  });
});

describe('dead letters', () => {
  it('lists dead letters with line, reason and source filter', async () => {
    const all = (await get('/api/v1/dead-letters')).body as Array<Record<string, unknown>>;
    expect(all).toHaveLength(2);
    expect(all.map((d) => [d.source, d.line, d.reason]).sort()).toEqual([
      ['a.csv', 7, 'column_count'],
      ['b.csv', 3, 'non_finite_value'],
    ]);
    const one = all.find((d) => d.source === 'a.csv');
    expect(one).toMatchObject({ raw: '"x","y"', detail: 'expected 12 columns, got 2' });
    expect(Number.isNaN(Date.parse(one?.received_at as string))).toBe(false);
    const filtered = (await get('/api/v1/dead-letters?source=b.csv')).body as typeof all;
    expect(filtered.map((d) => d.line)).toEqual([3]);
    expect((await get('/api/v1/dead-letters?limit=1')).body).toHaveLength(1);
    await expectError('/api/v1/dead-letters?limit=0', 400, 'BAD_REQUEST', 'limit');
    await expectError('/api/v1/dead-letters?reason=x', 400, 'BAD_REQUEST', 'reason');
  });
});

describe('health and readiness', () => {
  it('GET /health is ok', async () => {
    const r = await get('/health');
    expect([r.status, r.body]).toEqual([200, { status: 'ok' }]);
  });

  it('GET /ready runs every check and names the failed one', async () => {
    let storeUp = true;
    const checked = await buildApp(
      deps(coordination, store, {
        readiness: {
          coordination: async () => {
            await coordination.revision();
          },
          store: async () => {
            if (!storeUp) throw new Error('connect ECONNREFUSED 10.0.0.5:5432 user=secret');
            await store.ping();
          },
          slow: () => new Promise<void>(() => undefined),
        },
      }),
      { docs: false, readinessTimeoutMs: 50 },
    );
    try {
      let r = await get('/ready', checked);
      expect(r.status).toBe(503);
      expect(r.body).toEqual({
        status: 'unavailable',
        checks: { coordination: 'ok', slow: 'timeout', store: 'ok' },
        error: { code: 'BACKEND_UNAVAILABLE', message: 'Not ready: slow timeout' },
      });
      storeUp = false;
      r = await get('/ready', checked);
      expect(r.body).toMatchObject({ checks: { coordination: 'ok', slow: 'timeout', store: 'failed' } });
      expect(r.text).not.toContain('ECONNREFUSED');
    } finally {
      await checked.close();
    }
    const ok = await buildApp(deps(coordination, store, { readiness: { store: () => store.ping() } }), {
      docs: false,
    });
    try {
      const r = await get('/ready', ok);
      expect([r.status, r.body]).toEqual([200, { status: 'ready', checks: { store: 'ok' } }]);
    } finally {
      await ok.close();
    }
  });
});

describe('errors from the backends', () => {
  it('maps a NexusError to its status and hides unexpected errors', async () => {
    const failing = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'listDeadLetters') {
          return () => Promise.reject(new Error('relation "dead_letters" does not exist at /srv/db.ts:12'));
        }
        if (property === 'listGpus') {
          return () => Promise.reject(new NexusError('BACKEND_UNAVAILABLE', 'sample store unreachable'));
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const broken = await buildApp(deps(coordination, failing), { docs: false });
    try {
      const internal = await get('/api/v1/dead-letters', broken);
      expect([internal.status, internal.body]).toEqual([
        500,
        { error: { code: 'INTERNAL', message: 'Internal server error' } },
      ]);
      const unavailable = await get('/api/v1/gpus', broken);
      expect(unavailable.status).toBe(503);
      expect(unavailable.headers['retry-after']).toBe('1');
      expect(unavailable.body).toEqual({
        error: { code: 'BACKEND_UNAVAILABLE', message: 'sample store unreachable' },
      });
    } finally {
      await broken.close();
    }
  });

  it('answers 503 STORE_CLOSED once the store is closed', async () => {
    const closedStore = await createPgliteSampleStore({ memory: true });
    await closedStore.migrate();
    await closedStore.close();
    const closed = await buildApp(deps(coordination, closedStore), { docs: false });
    try {
      const r = await get('/api/v1/dead-letters', closed);
      expect(r.status).toBe(503);
      expect((r.body as { error: { code: string } }).error.code).toBe('STORE_CLOSED');
    } finally {
      await closed.close();
    }
  });
});

describe('OpenAPI and docs', () => {
  const ROUTES = [
    '/health',
    '/ready',
    '/metrics',
    '/api/v1/clusters',
    '/api/v1/clusters/{clusterId}',
    '/api/v1/clusters/{clusterId}/hosts',
    '/api/v1/clusters/{clusterId}/hosts/{hostId}',
    '/api/v1/clusters/{clusterId}/hosts/{hostId}/gpus',
    '/api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}',
    '/api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/telemetry',
    '/api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/health',
    '/api/v1/health/gpus',
    '/api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/mig',
    '/api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/mig/{instanceId}',
    '/api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/mig/{instanceId}/telemetry',
    '/api/v1/gpus',
    '/api/v1/gpus/{id}/telemetry',
    '/api/v1/dead-letters',
    '/api/v1/services',
    '/api/v1/analytics/attribution',
    '/api/v1/analytics/idle',
    '/api/v1/analytics/outliers',
  ];

  it('GET /openapi.json is an OpenAPI 3 document listing every route', async () => {
    const r = await get('/openapi.json');
    expect(r.status).toBe(200);
    type Operation = {
      summary?: string;
      parameters?: Array<{ name: string; in: string; required?: boolean; schema?: object }>;
      responses: Record<string, { description: string; content?: Record<string, { schema: object }> }>;
    };
    const doc = r.body as {
      openapi: string;
      info: { title: string; version: string };
      paths: Record<string, Record<string, Operation>>;
    };
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info.title).toBeTruthy();
    expect(doc.info.version).toBeTruthy();
    expect(Object.keys(doc.paths).sort()).toEqual([...ROUTES].sort());

    for (const route of ROUTES) {
      const ops = doc.paths[route]!;
      expect(Object.keys(ops), route).toEqual(['get']);
      const op = ops.get!;
      expect(op.summary, route).toBeTruthy();
      expect(op.responses['200']?.description, route).toBeTruthy();
      // Every {param} in the path is declared as a required path parameter with a schema.
      const pathParams = [...route.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path');
      expect(declared.map((p) => p.name).sort(), route).toEqual(pathParams.sort());
      for (const p of declared) expect([p.required, typeof p.schema], route).toEqual([true, 'object']);
      for (const [status, response] of Object.entries(op.responses)) {
        expect(status, route).toMatch(/^[1-5]\d\d$/);
        expect(response.description, `${route} ${status}`).toBeTruthy();
      }
    }
    const telemetry = doc.paths['/api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/telemetry']!.get!;
    expect(
      telemetry
        .parameters!.filter((p) => p.in === 'query')
        .map((p) => p.name)
        .sort(),
    ).toEqual(['end_time', 'format', 'limit', 'metric', 'order', 'resolution', 'start_time']);
    const notFound = telemetry.responses['404']?.content?.['application/json']?.schema;
    expect(notFound).toMatchObject({ properties: { error: { required: ['code', 'message'] } } });
    expect(doc.paths['/metrics']!.get!.responses['200']?.content).toHaveProperty('text/plain');
  });

  it('serves Swagger UI at /docs', async () => {
    const r = await app.inject({ method: 'GET', url: '/docs' });
    expect(r.statusCode).toBeLessThan(400);
    const page =
      r.statusCode === 200 ? r : await app.inject({ method: 'GET', url: '/docs/static/index.html' });
    expect(page.body).toContain('swagger');
  });
});

describe('GET /metrics', () => {
  it('serves Prometheus text with every pipeline metric and counts HTTP requests by route', async () => {
    const metrics = createPipelineMetrics();
    const measured = await buildApp(deps(coordination, store, { metrics }), { docs: false });
    try {
      metrics.rowsRead.inc(2470);
      metrics.badRows.inc({ reason: 'column_count' });
      await get('/api/v1/clusters/dgx-a', measured);
      await get('/api/v1/clusters/nope', measured);
      await get('/no/such/route', measured);
      const r = await measured.inject({ method: 'GET', url: '/metrics' });
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toContain('text/plain');
      for (const name of [
        'nexus_rows_read_total',
        'nexus_bad_rows_total',
        'nexus_batches_queued_total',
        'nexus_batches_acked_total',
        'nexus_batches_duplicate_total',
        'nexus_samples_written_total',
        'nexus_queue_depth',
        'nexus_write_latency_seconds',
        'nexus_http_requests_total',
        'nexus_http_request_duration_seconds',
        'process_cpu_user_seconds_total',
      ]) {
        expect(r.body).toContain(`# TYPE ${name} `);
      }
      expect(r.body).toContain('nexus_rows_read_total 2470');
      expect(r.body).toContain('nexus_bad_rows_total{reason="column_count"} 1');
      expect(r.body).toContain(
        'nexus_http_requests_total{method="GET",route="/api/v1/clusters/:clusterId",status="200"} 1',
      );
      expect(r.body).toContain(
        'nexus_http_requests_total{method="GET",route="/api/v1/clusters/:clusterId",status="404"} 1',
      );
      expect(r.body).toContain('nexus_http_requests_total{method="GET",route="unmatched",status="404"} 1');
      expect(r.body).toMatch(
        /nexus_http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/clusters\/:clusterId",status="200"\} 1/,
      );
    } finally {
      await measured.close();
    }
  });
});
