/**
 * Time partitioning on a real PostgreSQL 15 (test/harness/postgres.ts): the v1 -> v2 migration
 * moves existing samples into day partitions and backfills the rollups; concurrent writers create
 * each partition once; rows that land in the DEFAULT partition (a partition dropped behind a
 * store's cache) move into their day partition when it comes back, and retention trims them;
 * retention measures back from the newest data, so an old replay survives.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import type { Batch, Sample } from '../../src/domain/types.js';
import { MIGRATIONS } from '../../src/storage/migrations.js';
import { type PostgresHarness, startPostgres } from '../harness/postgres.js';

let server: PostgresHarness;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

const DAY = 86_400_000;
const HOUR = 3_600_000;

async function freshDatabase(): Promise<string> {
  return server.createDatabase(`nexus_${randomUUID().replaceAll('-', '').slice(0, 16)}`);
}

async function withClient<T>(connectionString: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function sample(ts: number, value: number, metric = 'DCGM_FI_DEV_GPU_UTIL'): Sample {
  return {
    clusterId: 'c',
    hostname: 'h',
    gpuId: '0',
    uuid: 'GPU-part',
    device: 'nvidia0',
    modelName: 'H100',
    metric,
    container: '',
    pod: '',
    namespace: '',
    labels: {},
    timestampMs: ts,
    value,
  };
}

let seq = 0;
function batch(samples: Sample[]): Batch {
  seq += 1;
  return { id: `part-${process.pid}-${seq}`, source: 'partitions', samples, deadLetters: [] };
}

async function partitionsOf(client: pg.Client, parent: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = $1::regclass ORDER BY 1`,
    [parent],
  );
  return rows.map((r) => r.name);
}

describe('PostgreSQL time partitions', () => {
  it('migrates a v1 database: rows move into day partitions, rollups are backfilled', async () => {
    const url = await freshDatabase();
    const t0 = Date.parse('2025-07-18T23:59:00.000Z');
    await withClient(url, async (c) => {
      await c.query(MIGRATIONS[0]!.sql);
      await c.query(`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())`);
      await c.query(`INSERT INTO schema_migrations (version, name) VALUES (1, 'v1')`);
      await c.query(`INSERT INTO series (series_key, cluster_id, hostname, gpu_id, uuid, device, model_name, metric)
        VALUES ('k', 'c', 'h', '0', 'GPU-part', 'nvidia0', 'H100', 'DCGM_FI_DEV_GPU_UTIL')`);
      // 4 samples 30 s apart across midnight: two days, three minutes, two hours.
      await c.query(
        `INSERT INTO samples (series_id, ts, value)
         SELECT 1, to_timestamp(($1::float8 + i * 30000) / 1000), i FROM generate_series(0, 3) AS i`,
        [t0],
      );
    });
    const store = await createPostgresSampleStore({ connectionString: url, poolSize: 2 });
    try {
      await store.migrate();
      expect(await store.partitioning()).toBe('native');
      expect(await store.countSamples()).toBe(4);
      const gpu = { uuid: 'GPU-part' };
      const minutes = await store.querySamples({ gpu, resolution: '1m', order: 'asc' });
      expect(minutes.map((m) => [new Date(m.timestampMs).toISOString(), m.aggregate!.count])).toEqual([
        ['2025-07-18T23:59:00.000Z', 2],
        ['2025-07-19T00:00:00.000Z', 2],
      ]);
      const hours = await store.querySamples({ gpu, resolution: '1h', order: 'asc' });
      expect(hours.map((h) => [h.aggregate!.min, h.aggregate!.max, h.aggregate!.last])).toEqual([
        [0, 1, 1],
        [2, 3, 3],
      ]);
      await withClient(url, async (c) => {
        expect(await partitionsOf(c, 'samples')).toEqual(
          expect.arrayContaining(['samples_default', 'samples_p20250718', 'samples_p20250719']),
        );
        const { rows } = await c.query(`SELECT to_regclass('samples_v1') AS old,
          (SELECT count(*)::int FROM samples_default) AS in_default,
          (SELECT count(*)::int FROM pg_partitioned_table WHERE partrelid = 'samples'::regclass) AS partitioned,
          (SELECT count(*)::int FROM pg_indexes WHERE tablename = 'samples' AND indexdef LIKE '%USING brin%') AS brin`);
        expect(rows[0]).toEqual({ old: null, in_default: 0, partitioned: 1, brin: 1 });
        // Partitions for today and the next three days exist ahead of time.
        const today = new Date().toISOString().slice(0, 10).replaceAll('-', '');
        expect(await partitionsOf(c, 'samples_1m')).toContain(`samples_1m_p${today}`);
      });
      // New data after the migration goes through the normal write path.
      expect((await store.writeBatch(batch([sample(t0 + 120_000, 9)]))).inserted).toBe(1);
      expect(await store.countSamples()).toBe(5);
    } finally {
      await store.close();
    }
  });

  it('creates each partition once when several stores write new days at the same time', async () => {
    const url = await freshDatabase();
    const stores = await Promise.all(
      Array.from({ length: 5 }, () => createPostgresSampleStore({ connectionString: url, poolSize: 3 })),
    );
    try {
      await Promise.all(stores.map((s) => s.migrate()));
      const start = Date.parse('2024-02-01T06:00:00.000Z');
      // Every store writes 3 batches; every batch spans the same 6 new days.
      const writes = stores.flatMap((s, k) =>
        Array.from({ length: 3 }, (_, b) =>
          s.writeBatch(
            batch(
              Array.from({ length: 6 }, (_, d) => sample(start + d * DAY + (k * 3 + b) * 1000, k * 10 + b)),
            ),
          ),
        ),
      );
      const results = await Promise.all(writes);
      expect(results.reduce((n, r) => n + r.inserted, 0)).toBe(90);
      expect(await stores[0]!.countSamples()).toBe(90);
      await withClient(url, async (c) => {
        const names = await partitionsOf(c, 'samples');
        for (let d = 0; d < 6; d++)
          expect(names).toContain(`samples_p202402${String(d + 1).padStart(2, '0')}`);
        const { rows } = await c.query(`SELECT count(*)::int AS n FROM samples_default`);
        expect(rows[0].n).toBe(0);
      });
      const hours = await stores[1]!.querySamples({
        gpu: { uuid: 'GPU-part' },
        resolution: '1h',
        limit: 100,
      });
      expect(hours.reduce((n, h) => n + h.aggregate!.count, 0)).toBe(90);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('moves rows from the default partition into their day partition, and trims old ones', async () => {
    const url = await freshDatabase();
    const a = await createPostgresSampleStore({ connectionString: url, poolSize: 2 });
    const b = await createPostgresSampleStore({ connectionString: url, poolSize: 2 });
    try {
      await a.migrate();
      await b.migrate();
      const day = Date.parse('2023-03-10T00:00:00.000Z');
      await a.writeBatch(batch([sample(day + HOUR, 1)]));
      // B drops that day (retention far later); A still believes the partition exists.
      const later = day + 30 * DAY;
      await b.writeBatch(batch([sample(later, 100)]));
      const r = await b.applyRetention!({ rawMs: 7 * DAY, rollupMs: 7 * DAY, nowMs: later + HOUR });
      expect(r.dropped).toEqual(
        expect.arrayContaining(['samples_p20230310', 'samples_1m_p20230310', 'samples_1h_p20230310']),
      );
      expect((await a.writeBatch(batch([sample(day + 2 * HOUR, 2)]))).inserted).toBe(1);
      const inDefault = () =>
        withClient(url, async (c) => {
          await c.query('SELECT nexus_flush_rollups()');
          const { rows } = await c.query(`SELECT (SELECT count(*) FROM samples_default)::int AS raw,
            (SELECT count(*) FROM samples_1m_default)::int AS m, (SELECT count(*) FROM samples_1h_default)::int AS h`);
          return rows[0] as { raw: number; m: number; h: number };
        });
      // The minute is computed from the raw row (no 1-minute row is written for it).
      expect(await inDefault()).toEqual({ raw: 1, m: 0, h: 1 });
      // The row is stored and queryable at every resolution while in the default partition.
      const gpu = { uuid: 'GPU-part' };
      const range = { startMs: day, endMs: day + DAY };
      expect((await a.querySamples({ gpu, ...range })).map((s) => s.value)).toEqual([2]);

      // B writes that day again: its partition comes back and takes the default rows along.
      expect((await b.writeBatch(batch([sample(day + 3 * HOUR, 3)]))).inserted).toBe(1);
      expect(await inDefault()).toEqual({ raw: 0, m: 0, h: 0 });
      expect((await b.querySamples({ gpu, ...range, order: 'asc' })).map((s) => s.value)).toEqual([2, 3]);
      const hours = await b.querySamples({ gpu, ...range, resolution: '1h', order: 'asc' });
      expect(hours.map((h) => h.aggregate!.count)).toEqual([1, 1]);

      // Rows stuck in the default partition are trimmed by retention too.
      await b.applyRetention!({ rawMs: 7 * DAY, rollupMs: 7 * DAY, nowMs: later + HOUR });
      await a.writeBatch(batch([sample(day + 5 * HOUR, 5)])); // dropped under A's cache again: default
      expect((await inDefault()).raw).toBe(1);
      const trimmed = await b.applyRetention!({ rawMs: 7 * DAY, rollupMs: 7 * DAY, nowMs: later + HOUR });
      expect(trimmed.deletedRows).toBe(3); // raw + 1m + 1h rows of that sample
      expect(await inDefault()).toEqual({ raw: 0, m: 0, h: 0 });
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('measures retention back from the newest data, so an old replay is not deleted', async () => {
    const url = await freshDatabase();
    const store = await createPostgresSampleStore({ connectionString: url, poolSize: 2 });
    try {
      await store.migrate();
      const first = Date.parse('2025-07-01T12:00:00.000Z');
      await store.writeBatch(batch(Array.from({ length: 20 }, (_, d) => sample(first + d * DAY, d))));
      // Wall clock is long past 2025, but the newest data is 2025-07-20: keep 2025-07-13 onwards.
      const r = await store.applyRetention!({ rawMs: 7 * DAY, rollupMs: 90 * DAY });
      expect(r.dropped.filter((n) => n.startsWith('samples_p')).sort()).toEqual(
        Array.from({ length: 13 }, (_, d) => `samples_p202507${String(d + 1).padStart(2, '0')}`),
      );
      expect(r.dropped.filter((n) => !n.startsWith('samples_p'))).toEqual([]);
      expect(await store.countSamples()).toBe(7);
    } finally {
      await store.close();
    }
  });
});
