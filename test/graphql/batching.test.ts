/**
 * DataLoader batching: the guide's query over the sample's 247 GPUs on 31 hosts makes a bounded
 * number of coordination and store calls, counted by wrappers around the real embedded adapters;
 * the count does not grow with the fan-out. Also: the schema documents every element, and Float
 * fields never carry NaN or Infinity.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiOptionsFromConfig, buildApp } from '../../src/api/app.js';
import { finiteOrNull, gpuStatusView } from '../../src/api/graphql/health.js';
import { dataNode, eventNode, metricValueNode } from '../../src/api/graphql/nodes.js';
import { telemetrySchema } from '../../src/api/graphql/schema.js';
import { loadConfig } from '../../src/config/config.js';
import { createPipelineMetrics } from '../../src/metrics/registry.js';
import { createLogger } from '../../src/util/logger.js';
import { CLUSTER, GUIDE_QUERY, startSampleServer, type SampleServer } from '../ws/harness.js';
import {
  isEnumType,
  isInputObjectType,
  isInterfaceType,
  isObjectType,
  isScalarType,
  type GraphQLNamedType,
} from 'graphql/index.js';

/** Wrap `target` so every method call is counted by name. */
function counting<T extends object>(target: T, counts: Map<string, number>): T {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value: unknown = Reflect.get(obj, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        counts.set(String(prop), (counts.get(String(prop)) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(obj, args);
      };
    },
  });
}

let server: SampleServer;
let app: FastifyInstance;
const coordinationCalls = new Map<string, number>();
const storeCalls = new Map<string, number>();
const total = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

beforeAll(async () => {
  server = await startSampleServer();
  const config = loadConfig({}, { CLUSTER_ID: CLUSTER, LOG_LEVEL: 'silent', ENABLE_WEBSOCKET: false });
  const options = apiOptionsFromConfig(config, 'embedded');
  // The cost model's snapshot of the fleet size (two range reads) is read once, below, and then
  // kept for the whole file, so the counts here are those of the queries alone.
  options.graphql!.cardinalityTtlMs = 3_600_000;
  app = await buildApp(
    {
      coordination: counting(server.runtime.coordination, coordinationCalls),
      store: counting(server.runtime.store, storeCalls),
      logger: createLogger('silent'),
      metrics: createPipelineMetrics(),
      staleAfterMs: config.STALE_AFTER,
      readiness: {},
    },
    options,
  );
  await app.ready();
  await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ __typename }' } });
});

afterAll(async () => {
  await app?.close();
  await server?.close();
});

async function query(q: string): Promise<Record<string, unknown>> {
  coordinationCalls.clear();
  storeCalls.clear();
  const res = await app.inject({ method: 'POST', url: '/graphql', payload: { query: q } });
  expect(res.statusCode, res.body).toBe(200);
  const body = res.json() as { data: Record<string, unknown>; errors?: unknown };
  expect(body.errors).toBeUndefined();
  return body.data;
}

describe('batched loading', () => {
  it("the guide's query over 247 GPUs is three range reads and no store call", async () => {
    const data = await query(GUIDE_QUERY);
    const cluster = data.cluster as { hosts: { gpus: unknown[] }[] };
    expect(cluster.hosts.reduce((n, h) => n + h.gpus.length, 0)).toBe(247);
    expect(Object.fromEntries(coordinationCalls)).toEqual({ range: 3 });
    expect(total(storeCalls)).toBe(0);
  });

  it('every cluster, host, GPU, metric and back-link stays within the same bound', async () => {
    await query(`{ clusters { id hosts { id cluster { id } gpus { id status { healthy healthIssues }
      metrics { field value } host { id } } } } }`);
    expect(total(coordinationCalls)).toBeLessThanOrEqual(4);
    expect(total(storeCalls)).toBe(0);
  });

  it('one host is two range reads whatever its GPU count', async () => {
    await query(
      `{ host(clusterId: "${CLUSTER}", hostId: "mtv5-dgx1-hgpu-031") { gpus { id status { temperatureCelsius } } } }`,
    );
    expect(total(coordinationCalls)).toBeLessThanOrEqual(2);
  });

  it('telemetry costs one store query per GPU asked for, and says whether more matched', async () => {
    const data = await query(`{ host(clusterId: "${CLUSTER}", hostId: "mtv5-dgx1-hgpu-031") {
      gpus { telemetry(metrics: ["gpuUtilization", "DCGM_FI_DEV_GPU_TEMP"], limit: 1, order: ASC) {
        hasMore resolution samples { metric name unit value timestamp gpuId gpuIndex hostId labels { name value } } } } } }`);
    const gpus = (data.host as { gpus: { telemetry: { hasMore: boolean; samples: { metric: string }[] } }[] })
      .gpus;
    expect(storeCalls.get('querySamples')).toBe(gpus.length);
    // Plus one read of the store's GPU list for the whole operation (UUIDs shared by hosts).
    expect(storeCalls.get('listGpus')).toBe(1);
    for (const g of gpus) {
      expect(g.telemetry.samples).toHaveLength(1);
      expect(g.telemetry.hasMore).toBe(true);
    }
  });

  it('serves rollups at resolution 1m with their aggregates', async () => {
    const data = await query(`{ telemetry(gpuId: "0", clusterId: "${CLUSTER}", hostId: "mtv5-dgx1-hgpu-031",
      metrics: ["temperature"], resolution: "1m") { resolution samples { value aggregate { min max avg count last } } } }`);
    const page = data.telemetry as {
      resolution: string;
      samples: { value: number; aggregate: { count: number; avg: number } }[];
    };
    expect(page.resolution).toBe('1m');
    expect(page.samples.length).toBeGreaterThan(0);
    for (const s of page.samples) {
      expect(s.aggregate.count).toBeGreaterThan(0);
      expect(s.value).toBe(s.aggregate.avg);
    }
  });
});

describe('schema documentation and Float safety', () => {
  it('describes every type, field, argument and enum value', () => {
    const missing: string[] = [];
    const schema = telemetrySchema();
    for (const type of Object.values(schema.getTypeMap()) as GraphQLNamedType[]) {
      if (type.name.startsWith('__') || ['String', 'Int', 'Float', 'Boolean', 'ID'].includes(type.name))
        continue;
      if (!type.description) missing.push(type.name);
      if (isObjectType(type) || isInterfaceType(type) || isInputObjectType(type)) {
        for (const field of Object.values(type.getFields())) {
          if (!field.description) missing.push(`${type.name}.${field.name}`);
          for (const arg of 'args' in field ? field.args : [])
            if (!arg.description) missing.push(`${type.name}.${field.name}(${arg.name})`);
        }
      } else if (isEnumType(type)) {
        for (const value of type.getValues())
          if (!value.description) missing.push(`${type.name}.${value.name}`);
      } else if (!isScalarType(type)) missing.push(`${type.name}?`);
    }
    expect(missing).toEqual([]);
  });

  it('turns NaN and Infinity into null on every Float path', () => {
    expect([NaN, Infinity, -Infinity, undefined, 1.5].map(finiteOrNull)).toEqual([
      null,
      null,
      null,
      null,
      1.5,
    ]);
    const metrics = {
      DCGM_FI_DEV_GPU_UTIL: { value: NaN, timestampMs: 0 },
      DCGM_FI_DEV_GPU_TEMP: { value: Infinity, timestampMs: 0 },
      DCGM_FI_DEV_POWER_USAGE: { value: 300.5, timestampMs: 0 },
    };
    const status = gpuStatusView({ active: true, metrics });
    expect(status).toMatchObject({
      utilizationPercent: null,
      temperatureCelsius: null,
      powerWatts: 300.5,
      healthy: true,
    });
    expect(metricValueNode('X', { value: -Infinity, timestampMs: 0 }).value).toBeNull();
    const data = dataNode(metrics);
    expect([data.gpuUtilization, data.temperature, data.powerDraw]).toEqual([null, null, 300.5]);
    const event = eventNode(
      { eventType: 'GPU_UPDATE', revision: 7, clusterId: 'c', timestampMs: 1, observedAtMs: 2, metrics },
      metrics,
    );
    expect(JSON.stringify(event)).not.toMatch(/NaN|Infinity/);
  });

  it('applies the health rule: inactive, overheating, XID error, row remap failure', () => {
    const m = (field: string, value: number) => ({ [field]: { value, timestampMs: 0 } });
    expect(gpuStatusView({ active: false, metrics: {} }).healthIssues).toEqual(['INACTIVE']);
    expect(gpuStatusView({ active: true, metrics: m('DCGM_FI_DEV_GPU_TEMP', 85) }).healthIssues).toEqual([
      'OVERHEATING',
    ]);
    expect(gpuStatusView({ active: true, metrics: m('DCGM_FI_DEV_GPU_TEMP', 84.9) }).healthy).toBe(true);
    expect(gpuStatusView({ active: true, metrics: m('DCGM_FI_DEV_XID_ERRORS', 79) }).healthIssues).toEqual([
      'XID_ERROR',
    ]);
    expect(
      gpuStatusView({ active: true, metrics: m('DCGM_FI_DEV_ROW_REMAP_FAILURE', 1) }).healthIssues,
    ).toEqual(['ROW_REMAP_FAILURE']);
  });
});

describe('docs/graphql.md', () => {
  it('names every type of the schema', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync(new URL('../../docs/graphql.md', import.meta.url), 'utf8');
    const names = Object.keys(telemetrySchema().getTypeMap()).filter(
      (n) => !n.startsWith('__') && !['String', 'Int', 'Float', 'Boolean', 'ID'].includes(n),
    );
    for (const name of names) expect(doc, name).toContain(`\`${name}\``);
  });
});
