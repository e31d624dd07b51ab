/**
 * The guide's GraphQL documents, sent verbatim to the embedded runtime listening on 127.0.0.1 with
 * the bundled sample: the cluster query over HTTP and over graphql-ws returns the CSV's values; the
 * subscription delivers every GPU update of a replay, in order; the guide's troubleshooting curl
 * commands (sent with fetch) work as written.
 */
import type { Client, FormattedExecutionResult } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

type ExecutionResult<T> = FormattedExecutionResult<T, unknown>;
import { readSampleRows } from '../support/sample-csv.js';
import {
  GUIDE_QUERY,
  GUIDE_SUBSCRIPTION,
  recordHierarchy,
  startSampleServer,
  waitUntil,
  type SampleServer,
  graphqlClient,
} from '../ws/harness.js';

interface GuideGpu {
  id: string;
  deviceName: string;
  status: { utilizationPercent: number | null; temperatureCelsius: number | null; healthy: boolean };
}
interface GuideCluster {
  id: string;
  name: string;
  region: string;
  totalHosts: number;
  totalGPUs: number;
  hosts: { id: string; hostname: string; gpus: GuideGpu[] }[];
}

let server: SampleServer;
let client: Client;

beforeAll(async () => {
  server = await startSampleServer();
  client = graphqlClient(server);
});

afterAll(async () => {
  await client?.dispose();
  await server?.close();
});

const post = async (body: unknown, headers: Record<string, string> = {}) => {
  const res = await fetch(`${server.base}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    headers: res.headers,
    json: (await res.json()) as ExecutionResult<Record<string, unknown>>,
  };
};

/** Run a query over graphql-ws and return its single result. */
function overWebSocket(query: string): Promise<ExecutionResult<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    let result: ExecutionResult<Record<string, unknown>> | undefined;
    client.subscribe<Record<string, unknown>>(
      { query },
      {
        next: (r) => (result = r),
        error: reject,
        complete: () => (result ? resolve(result) : reject(new Error('no result'))),
      },
    );
  });
}

function checkAgainstCsv(cluster: GuideCluster): void {
  expect(cluster).toMatchObject({
    id: 'my-cluster',
    name: 'my-cluster cluster',
    region: 'local',
    totalHosts: 31,
    totalGPUs: 247,
  });
  expect(cluster.hosts).toHaveLength(31);
  const rows = readSampleRows();
  const value = new Map(rows.map((r) => [`${r.uuid} ${r.metric}`, r.value]));
  const hostOf = new Map(rows.map((r) => [r.uuid, r.hostname]));
  const seen = new Set<string>();
  for (const host of cluster.hosts) {
    expect(host.id).toBe(host.hostname);
    for (const gpu of host.gpus) {
      seen.add(gpu.id);
      expect(hostOf.get(gpu.id), gpu.id).toBe(host.hostname);
      expect(gpu.deviceName).toBe('NVIDIA H100 80GB HBM3');
      const temperature = value.get(`${gpu.id} DCGM_FI_DEV_GPU_TEMP`)!;
      expect(gpu.status).toEqual({
        utilizationPercent: value.get(`${gpu.id} DCGM_FI_DEV_GPU_UTIL`),
        temperatureCelsius: temperature,
        healthy: temperature < 85,
      });
    }
  }
  expect(seen.size).toBe(247);
}

describe("the guide's GraphQL documents, verbatim", () => {
  it('the cluster query over HTTP returns every GPU with the CSV values', async () => {
    const { status, json } = await post({ query: GUIDE_QUERY });
    expect(status).toBe(200);
    expect(json.errors).toBeUndefined();
    checkAgainstCsv(json.data!.cluster as GuideCluster);
  });

  it('the cluster query over graphql-ws returns the same data', async () => {
    const http = await post({ query: GUIDE_QUERY });
    const ws = await overWebSocket(GUIDE_QUERY);
    expect(ws.errors).toBeUndefined();
    checkAgainstCsv(ws.data!.cluster as GuideCluster);
    expect(ws.data).toEqual(http.json.data);
  });

  it('the subscription delivers every GPU update of a replay, in order, with the values', async () => {
    const received: Record<string, unknown>[] = [];
    const hub = server.realtime.hub;
    const before = hub.stats.subscribers;
    const stop = client.subscribe<Record<string, unknown>>(
      { query: GUIDE_SUBSCRIPTION },
      {
        next: (r) => received.push(r.data!.telemetryUpdates as Record<string, unknown>),
        error: () => undefined,
        complete: () => undefined,
      },
    );
    await waitUntil(() => hub.stats.subscribers > before, 'the subscription to be registered');
    const recorder = await recordHierarchy(server.runtime);
    await server.replay();
    const gpuPuts = () => recorder.events.filter((e) => e.kind === 'gpu' && e.type === 'put');
    const expected = gpuPuts().length;
    expect(expected).toBeGreaterThanOrEqual(247);
    const gpuEvents = () => received.filter((e) => e.eventType === 'GPU_UPDATE');
    await waitUntil(() => gpuEvents().length >= expected, `${expected} GPU updates`);
    await recorder.stop();
    stop();

    const events = gpuEvents();
    expect(events).toHaveLength(expected);
    // Same GPUs in the same order as the store's writes.
    expect(events.map((e) => e.gpuId)).toEqual(gpuPuts().map((e) => e.uuid));
    const rows = readSampleRows();
    const value = new Map(rows.map((r) => [`${r.uuid} ${r.metric}`, r.value]));
    const last = new Map(events.map((e) => [e.gpuId as string, e]));
    expect(last.size).toBe(247);
    for (const [uuid, e] of last) {
      expect(e.data).toEqual({
        gpuUtilization: value.get(`${uuid} DCGM_FI_DEV_GPU_UTIL`),
        temperature: value.get(`${uuid} DCGM_FI_DEV_GPU_TEMP`),
        powerDraw: value.get(`${uuid} DCGM_FI_DEV_POWER_USAGE`),
      });
      expect(typeof e.hostId).toBe('string');
      expect(Number.isNaN(Date.parse(e.timestamp as string))).toBe(false);
    }
  });

  it("the troubleshooting command `{ __schema { types { name } } }` answers with the schema's types", async () => {
    // curl -X POST http://localhost:8080/graphql -H "Content-Type: application/json" -d '{"query": "{ __schema { types { name } } }"}'
    const res = await fetch(`${server.base}/graphql`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"query": "{ __schema { types { name } } }"}',
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { __schema: { types: { name: string }[] } } };
    const names = body.data.__schema.types.map((t) => t.name);
    for (const name of [
      'Query',
      'Subscription',
      'Cluster',
      'Host',
      'GPU',
      'GPUStatus',
      'TelemetryEvent',
      'TelemetryData',
    ])
      expect(names).toContain(name);
  });

  it('the CORS preflight command on /ws answers a proper preflight', async () => {
    // curl -H "Origin: http://localhost:3000" -H "Access-Control-Request-Method: GET" -X OPTIONS http://localhost:8080/ws
    const res = await fetch(`${server.base}/ws`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://localhost:3000', 'Access-Control-Request-Method': 'GET' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    expect(res.headers.get('access-control-allow-methods')).toContain('GET');
    expect(res.headers.get('vary')).toContain('Origin');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();

    const stranger = await fetch(`${server.base}/ws`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'GET' },
    });
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('sends CORS headers on REST and GraphQL responses to allowed origins only', async () => {
    const rest = await fetch(`${server.base}/api/v1/clusters/my-cluster`, {
      headers: { Origin: 'http://localhost:8080' },
    });
    expect(rest.headers.get('access-control-allow-origin')).toBe('http://localhost:8080');
    const gql = await post({ query: '{ clusters { id } }' }, { Origin: 'http://localhost:3000' });
    expect(gql.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
    const other = await post({ query: '{ clusters { id } }' }, { Origin: 'http://evil.example' });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
