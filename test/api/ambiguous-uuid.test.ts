// One GPU UUID reported on two hosts: GET /api/v1/gpus/{uuid}/telemetry answers 409 AMBIGUOUS_UUID
// listing both hosts' routes instead of mixing their samples; each host's own route serves only its
// samples; GraphQL's gpu(id) and telemetry(gpuId) do the same (AMBIGUOUS_UUID unless clusterId and
// hostId pick one) and GPU.telemetry never mixes hosts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuRecord } from '../../src/domain/types.js';
import { CLUSTER, fleetApp, gpuSamples, hostName, NOW, T0, uuidOf, type Fleet } from './fleet.js';

const SHARED = uuidOf(0, 0); // host-000 GPU 0 in the fleet; also reported by "twin" GPU 3
const TWIN = 'twin-host';

let fleet: Fleet;
beforeAll(async () => {
  const twin: GpuRecord = {
    clusterId: CLUSTER,
    hostname: TWIN,
    gpuId: '3',
    uuid: SHARED,
    device: 'nvidia3',
    modelName: 'NVIDIA H100 80GB HBM3',
    metrics: {},
    lastSampleMs: T0,
    lastSeenMs: NOW,
  };
  fleet = await fleetApp({
    hosts: 2,
    gpusPerHost: 1,
    samplesPerGpu: 3,
    extraGpus: [twin],
    samples: gpuSamples(0, 0, 4, { hostname: TWIN, gpuId: '3', device: 'nvidia3', value: 1000 }),
  });
});
afterAll(async () => fleet?.close());

describe('REST', () => {
  it('GET /api/v1/gpus/{uuid}/telemetry is 409 AMBIGUOUS_UUID naming both hosts', async () => {
    const res = await fleet.app.inject({ method: 'GET', url: `/api/v1/gpus/${SHARED}/telemetry` });
    expect(res.statusCode).toBe(409);
    const { error } = JSON.parse(res.body) as { error: { code: string; message: string; parameter: string } };
    expect(error.code).toBe('AMBIGUOUS_UUID');
    expect(error.parameter).toBe('id');
    expect(error.message).toContain(
      `/api/v1/clusters/${CLUSTER}/hosts/${hostName(0)}/gpus/${SHARED}/telemetry`,
    );
    expect(error.message).toContain(`/api/v1/clusters/${CLUSTER}/hosts/${TWIN}/gpus/${SHARED}/telemetry`);
  });

  it("each host's route serves only that host's samples", async () => {
    for (const [host, count, values] of [
      [hostName(0), 3, [0, 1, 2]],
      [TWIN, 4, [1000, 1000, 1000, 1000]],
    ] as const) {
      const res = await fleet.app.inject({
        method: 'GET',
        url: `/api/v1/clusters/${CLUSTER}/hosts/${host}/gpus/${SHARED}/telemetry?order=asc`,
      });
      expect(res.statusCode).toBe(200);
      const items = JSON.parse(res.body) as { hostname: string; value: number }[];
      expect(items).toHaveLength(count);
      expect(new Set(items.map((i) => i.hostname))).toEqual(new Set([host]));
      expect(items.map((i) => i.value)).toEqual(values);
    }
  });

  it('a UUID on one host is served as before; GET /api/v1/gpus lists the shared UUID once per host', async () => {
    const res = await fleet.app.inject({ method: 'GET', url: `/api/v1/gpus/${uuidOf(1, 0)}/telemetry` });
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toHaveLength(3);
    const list = JSON.parse((await fleet.app.inject({ method: 'GET', url: '/api/v1/gpus' })).body) as {
      uuid: string;
      hostname: string;
    }[];
    expect(
      list
        .filter((g) => g.uuid === SHARED)
        .map((g) => g.hostname)
        .sort(),
    ).toEqual([hostName(0), TWIN]);
  });
});

describe('GraphQL', () => {
  const gql = async (query: string) =>
    (await fleet.app.inject({ method: 'POST', url: '/graphql', payload: { query } })).json() as {
      data: Record<string, unknown> | null;
      errors?: { message: string; extensions: { code: string } }[];
    };

  it('gpu(id) and telemetry(gpuId) by a shared UUID are AMBIGUOUS_UUID; clusterId + hostId pick one', async () => {
    const gpu = await gql(`{ gpu(id: "${SHARED}") { hostId } }`);
    expect(gpu.errors?.[0]?.extensions.code).toBe('AMBIGUOUS_UUID');
    expect(gpu.errors?.[0]?.message).toContain(TWIN);
    const picked = await gql(
      `{ gpu(id: "${SHARED}", clusterId: "${CLUSTER}", hostId: "${TWIN}") { hostId index } }`,
    );
    expect(picked.data).toEqual({ gpu: { hostId: TWIN, index: '3' } });

    const telemetry = await gql(`{ telemetry(gpuId: "${SHARED}") { samples { hostId } } }`);
    expect(telemetry.errors?.[0]?.extensions.code).toBe('AMBIGUOUS_UUID');
    const one = await gql(
      `{ telemetry(gpuId: "${SHARED}", clusterId: "${CLUSTER}", hostId: "${TWIN}") { samples { hostId value } } }`,
    );
    const samples = (one.data!.telemetry as { samples: { hostId: string; value: number }[] }).samples;
    expect(samples.map((s) => s.hostId)).toEqual([TWIN, TWIN, TWIN, TWIN]);
  });

  it("GPU.telemetry of each host's GPU reads only that host", async () => {
    const data = await gql(
      `{ cluster(id: "${CLUSTER}") { hosts { id gpus { telemetry { samples { hostId } } } } } }`,
    );
    const hosts = (
      data.data!.cluster as {
        hosts: { id: string; gpus: { telemetry: { samples: { hostId: string }[] } }[] }[];
      }
    ).hosts;
    for (const h of hosts)
      for (const g of h.gpus) for (const s of g.telemetry.samples) expect(s.hostId).toBe(h.id);
    const twin = hosts.find((h) => h.id === TWIN)!;
    expect(twin.gpus[0]!.telemetry.samples).toHaveLength(4);
  });
});
