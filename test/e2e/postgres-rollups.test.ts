/**
 * Long-range queries on a real PostgreSQL 15: 32 days of samples of two GPUs; a 30-day query at
 * `auto` resolution is served from the 1-hour rollups (EXPLAIN of the generated SQL scans no raw
 * `samples` partition, and only the rollup partitions of the range), and its buckets equal an
 * aggregate computed from the raw samples. The REST telemetry routes take `resolution` and say in
 * `x-resolution` which one served them.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import {
  createPostgresSampleStore,
  type PostgresSampleStore,
} from '../../src/adapters/postgres/sample-store.js';
import { buildApp } from '../../src/api/app.js';
import type { Sample } from '../../src/domain/types.js';
import { createPipelineMetrics } from '../../src/metrics/registry.js';
import type { Coordination } from '../../src/ports/coordination.js';
import { ALL_MINUTE_BUCKETS } from '../../src/storage/minute-chunks.js';
import { buildSampleQuery } from '../../src/storage/queries.js';
import { type PostgresHarness, startPostgres } from '../harness/postgres.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const STEP = 5 * 60_000;
const START = Date.parse('2025-05-01T00:00:00.000Z');
const DAYS = 32;
const METRICS = [
  'DCGM_FI_DEV_GPU_UTIL',
  'DCGM_FI_DEV_GPU_TEMP',
  'DCGM_FI_DEV_POWER_USAGE',
  'DCGM_FI_DEV_SM_CLOCK',
  'DCGM_FI_DEV_FB_USED',
];
const GPUS = [
  { hostname: 'roll-host-1', gpuId: '0', uuid: 'GPU-roll-0000' },
  { hostname: 'roll-host-1', gpuId: '1', uuid: 'GPU-roll-0001' },
];

let server: PostgresHarness;
let url: string;
let store: PostgresSampleStore;
let client: pg.Client;
let coordination: Coordination;
let app: FastifyInstance;

/** A deterministic, bumpy value for sample i of series k. */
function valueOf(k: number, i: number): number {
  return Math.round((50 + 30 * Math.sin(i / 17 + k) + ((i * 7919 + k * 104729) % 13)) * 100) / 100;
}

function samplesOfDay(day: number): Sample[] {
  const out: Sample[] = [];
  const perDay = DAY / STEP;
  GPUS.forEach((g, gi) =>
    METRICS.forEach((metric, mi) => {
      const k = gi * METRICS.length + mi;
      for (let j = 0; j < perDay; j++) {
        const i = day * perDay + j;
        out.push({
          clusterId: 'roll',
          ...g,
          device: `nvidia${g.gpuId}`,
          modelName: 'NVIDIA H100 80GB HBM3',
          metric,
          container: '',
          pod: '',
          namespace: '',
          labels: {},
          timestampMs: START + i * STEP,
          value: valueOf(k, i),
        });
      }
    }),
  );
  return out;
}

beforeAll(async () => {
  server = await startPostgres();
  url = await server.createDatabase(`nexus_${randomUUID().replaceAll('-', '').slice(0, 16)}`);
  store = await createPostgresSampleStore({ connectionString: url, poolSize: 4 });
  await store.migrate();
  for (let day = 0; day < DAYS; day++) {
    await store.writeBatch({
      id: `roll-${day}`,
      source: 'rollups',
      samples: samplesOfDay(day),
      deadLetters: [],
    });
  }
  // A replay of three days under new batch ids adds nothing, to samples or rollups.
  for (const day of [3, 10, 20]) {
    const r = await store.writeBatch({
      id: `roll-replay-${day}`,
      source: 'rollups',
      samples: samplesOfDay(day),
      deadLetters: [],
    });
    expect(r.inserted).toBe(0);
  }
  client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('ANALYZE');
  coordination = createEmbeddedCoordination();
  app = await buildApp({
    coordination,
    store,
    logger: pino({ level: 'silent' }),
    metrics: createPipelineMetrics(),
    staleAfterMs: 300_000,
    readiness: {},
  });
}, 120_000);

afterAll(async () => {
  await app?.close();
  await coordination?.close();
  await client?.end();
  await store?.close();
  await server?.stop();
});

const RANGE = { startMs: START + DAY, endMs: START + 31 * DAY - 1 }; // 30 days
const gpu = { uuid: GPUS[0]!.uuid };

/** Every relation an EXPLAIN (FORMAT JSON) plan reads. */
function relationsOf(plan: unknown): string[] {
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'Relation Name' && typeof v === 'string') out.push(v);
        else walk(v);
      }
    }
  };
  walk(plan);
  return out;
}

async function explain(text: string, params: unknown[]): Promise<string[]> {
  const { rows } = await client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (FORMAT JSON) ${text}`, params);
  return relationsOf(rows[0]!['QUERY PLAN']);
}

describe('30-day range at auto resolution', () => {
  it('reads only 1-hour rollup partitions of the range: EXPLAIN shows no raw partition scan', async () => {
    const statement = buildSampleQuery({ gpu, ...RANGE, resolution: 'auto', limit: 10_000 });
    expect(statement.resolution).toBe('1h');
    const relations = await explain(statement.text, statement.params);
    const rollups = relations.filter((r) => r.startsWith('samples_1h_p'));
    expect(relations.filter((r) => r === 'samples' || /^samples_(p\d|default)/.test(r))).toEqual([]);
    expect(relations.filter((r) => r.startsWith('samples_1m'))).toEqual([]);
    expect(rollups.length).toBeGreaterThanOrEqual(30);
    expect(rollups.length).toBeLessThanOrEqual(31); // pruned to the days of the range
    expect(rollups).not.toContain('samples_1h_p20250501');
    expect(rollups).not.toContain('samples_1h_default');

    // The same check sees raw partitions when there are some (the detector works).
    const raw = buildSampleQuery({ gpu, ...RANGE, resolution: 'raw', limit: 10 });
    expect((await explain(raw.text, raw.params)).some((r) => /^samples_p\d{8}$/.test(r))).toBe(true);
  });

  it('returns the buckets an aggregate over the raw samples gives', async () => {
    const got = await store.querySamples({ gpu, ...RANGE, resolution: 'auto', order: 'asc', limit: 10_000 });
    expect(got).toHaveLength(30 * 24 * METRICS.length);
    const { rows } = await client.query<{
      metric: string;
      bucket: number;
      min: number;
      max: number;
      avg: number;
      count: number;
      last: number;
    }>(
      `SELECT se.metric, (floor(extract(epoch FROM sa.ts) / 3600) * 3600000)::float8 AS bucket,
              min(sa.value) AS min, max(sa.value) AS max, avg(sa.value) AS avg, count(*)::int AS count,
              (array_agg(sa.value ORDER BY sa.ts DESC))[1] AS last
       FROM samples sa JOIN series se ON se.id = sa.series_id
       WHERE se.uuid = $1 AND sa.ts >= to_timestamp($2::float8 / 1000) AND sa.ts <= to_timestamp($3::float8 / 1000)
       GROUP BY 1, 2 ORDER BY 2, 1`,
      [gpu.uuid, RANGE.startMs, RANGE.endMs],
    );
    expect(rows).toHaveLength(got.length);
    const expected = new Map(rows.map((r) => [`${r.bucket}|${r.metric}`, r]));
    for (const s of got) {
      const e = expected.get(`${s.timestampMs}|${s.metric}`);
      expect(e, `${new Date(s.timestampMs).toISOString()} ${s.metric}`).toBeDefined();
      expect(s.aggregate).toMatchObject({ min: e!.min, max: e!.max, count: e!.count, last: e!.last });
      expect(s.aggregate!.count).toBe(12);
      expect(s.value).toBeCloseTo(e!.avg, 9);
    }
  });

  it('is what the REST telemetry routes serve, with x-resolution saying so', async () => {
    const range = `start_time=${new Date(RANGE.startMs).toISOString()}&end_time=${new Date(RANGE.endMs).toISOString()}`;
    const flat = await app.inject(
      `/api/v1/gpus/${gpu.uuid}/telemetry?${range}&resolution=auto&metric=DCGM_FI_DEV_GPU_UTIL&limit=10000&order=asc`,
    );
    expect(flat.statusCode, flat.body).toBe(200);
    expect(flat.headers['x-resolution']).toBe('1h');
    const items = flat.json() as { timestamp: string; value: number; aggregate: { count: number } }[];
    expect(items).toHaveLength(720);
    expect(items[0]).toMatchObject({ timestamp: '2025-05-02T00:00:00.000Z', aggregate: { count: 12 } });
    const direct = await store.querySamples({
      gpu,
      ...RANGE,
      resolution: '1h',
      metrics: ['DCGM_FI_DEV_GPU_UTIL'],
      order: 'asc',
      limit: 10_000,
    });
    expect(items.map((i) => i.value)).toEqual(direct.map((s) => s.value));

    const hier = await app.inject(
      `/api/v1/clusters/roll/hosts/roll-host-1/gpus/1/telemetry?${range}&resolution=1m&limit=5`,
    );
    expect(hier.statusCode, hier.body).toBe(200);
    expect(hier.headers['x-resolution']).toBe('1m');
    expect(hier.headers['x-has-more']).toBe('true');
    expect((hier.json() as { uuid: string }[]).every((i) => i.uuid === GPUS[1]!.uuid)).toBe(true);

    const raw = await app.inject(`/api/v1/gpus/${gpu.uuid}/telemetry?limit=2`);
    expect(raw.headers['x-resolution']).toBe('raw');
    expect((raw.json() as object[]).every((i) => !('aggregate' in i))).toBe(true);
    const short = await app.inject(
      `/api/v1/gpus/${gpu.uuid}/telemetry?resolution=auto&start_time=2025-05-02T00:00:00Z&end_time=2025-05-02T06:00:00Z`,
    );
    expect(short.headers['x-resolution']).toBe('raw');

    for (const bad of ['5m', 'RAW', '']) {
      const r = await app.inject(`/api/v1/gpus/${gpu.uuid}/telemetry?resolution=${bad}`);
      expect(r.statusCode, `resolution=${bad}`).toBe(400);
      expect(r.json()).toMatchObject({ error: { code: 'BAD_REQUEST', parameter: 'resolution' } });
    }
  });

  it('keeps 1-minute rollups whole across the month (counts add up to the raw samples)', async () => {
    await client.query('SELECT nexus_flush_rollups()'); // what a reader of the rollups does first
    const { rows } = await client.query<{ raw: number; m: number; h: number }>(
      `SELECT (SELECT count(*) FROM samples)::float8 AS raw, (SELECT sum(count) FROM ${ALL_MINUTE_BUCKETS} b)::float8 AS m,
              (SELECT sum(count) FROM samples_1h)::float8 AS h`,
    );
    const total = DAYS * (DAY / STEP) * METRICS.length * GPUS.length;
    expect(rows[0]).toEqual({ raw: total, m: total, h: total });
    expect(HOUR / STEP).toBe(12);
  });
});
