/**
 * The least-privilege roles of docs/storage.md, run verbatim on a real PostgreSQL 15: the owner
 * migrates; the collector role writes, creates partitions and applies retention through the
 * SECURITY DEFINER functions but cannot run DDL or DELETE; the API role reads and can do nothing
 * else; both call migrate() at start-up without rights to create anything.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPostgresSampleStore,
  type PostgresSampleStore,
} from '../../src/adapters/postgres/sample-store.js';
import type { Batch } from '../../src/domain/types.js';
import { type PostgresHarness, startPostgres } from '../harness/postgres.js';

const DAY = 86_400_000;
let server: PostgresHarness;

/** The ```sql block of docs/storage.md whose first line starts with `-- step N`. */
function docsSql(step: number): string {
  const doc = readFileSync(new URL('../../docs/storage.md', import.meta.url), 'utf8');
  const blocks = [...doc.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const block = blocks.find((b) => b.startsWith(`-- step ${step}:`));
  if (!block) throw new Error(`docs/storage.md has no sql block for step ${step}`);
  return block;
}

function urlFor(user: string, password: string): string {
  return `postgres://${user}:${password}@${server.host}:${server.port}/nexus`;
}

/** Run a script statement by statement, as psql would (CREATE DATABASE refuses a transaction). */
async function run(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const statements = sql
      .split('\n')
      .filter((line) => !line.trimStart().startsWith('--'))
      .join('\n')
      .split(/;\s*(?:\n|$)/)
      .map((st) => st.trim())
      .filter(Boolean);
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

function batch(id: string, ts: number): Batch {
  return {
    id,
    source: 'roles',
    deadLetters: [{ source: 'roles.csv', line: 2, raw: `x of ${id}`, reason: 'column_count', detail: 'd' }],
    samples: [0, 1, 2].map((i) => ({
      clusterId: 'c',
      hostname: 'h',
      gpuId: '0',
      uuid: 'GPU-roles',
      device: 'nvidia0',
      modelName: 'H100',
      metric: 'DCGM_FI_DEV_GPU_UTIL',
      container: '',
      pod: '',
      namespace: '',
      labels: {},
      timestampMs: ts + i * 1000,
      value: i,
    })),
  };
}

beforeAll(async () => {
  server = await startPostgres();
  await run(server.connectionString, docsSql(1));
  // Step 2 before the first migration: default privileges cover every object created later.
  await run(urlFor('nexus_owner', 'owner-change-me'), docsSql(2));
  const owner = await createPostgresSampleStore({
    connectionString: urlFor('nexus_owner', 'owner-change-me'),
  });
  try {
    await owner.migrate();
  } finally {
    await owner.close();
  }
});
afterAll(async () => {
  await server?.stop();
});

describe('least-privilege roles from docs/storage.md', () => {
  let collector: PostgresSampleStore;
  let api: PostgresSampleStore;

  beforeAll(async () => {
    collector = await createPostgresSampleStore({
      connectionString: urlFor('nexus_collector', 'collector-change-me'),
    });
    api = await createPostgresSampleStore({ connectionString: urlFor('nexus_api', 'api-change-me') });
  });
  afterAll(async () => {
    await collector?.close();
    await api?.close();
  });

  it('lets the collector migrate (nothing to do), write new days, and apply retention', async () => {
    await collector.migrate();
    const old = Date.parse('2024-01-10T10:00:00.000Z');
    expect(await collector.writeBatch(batch('r-1', old))).toEqual({
      duplicate: false,
      inserted: 3,
      deadLetters: 1,
      unstorable: 0,
      conflicts: 0,
    });
    expect(await collector.writeBatch(batch('r-1', old))).toMatchObject({ duplicate: true });
    expect((await collector.writeBatch(batch('r-2', old))).inserted).toBe(0); // natural key
    await collector.writeBatch(batch('r-3', old + 20 * DAY));
    const r = await collector.applyRetention!({ rawMs: 7 * DAY, rollupMs: 7 * DAY, nowMs: old + 20 * DAY });
    expect(r.dropped).toEqual(
      expect.arrayContaining(['samples_p20240110', 'samples_1m_p20240110', 'samples_1h_p20240110']),
    );
    expect(await collector.countSamples()).toBe(3);
  });

  it('gives the collector no DDL and no DELETE', async () => {
    const client = new pg.Client({ connectionString: urlFor('nexus_collector', 'collector-change-me') });
    await client.connect();
    try {
      for (const sql of [
        'DROP TABLE samples_p20240130',
        'DELETE FROM samples',
        'TRUNCATE batch_ledger',
        'CREATE TABLE x (i int)',
        'ALTER TABLE samples DETACH PARTITION samples_default',
      ]) {
        await expect(client.query(sql), sql).rejects.toMatchObject({
          code: expect.stringMatching(/^42501|^42P01/),
        });
      }
      // The drop function refuses anything but a day partition of the sample tables.
      await expect(client.query("SELECT nexus_drop_partition('series', 'series')")).rejects.toThrow(
        /not a partitioned sample table/,
      );
      await expect(client.query("SELECT nexus_drop_partition('samples', 'samples_default')")).rejects.toThrow(
        /never dropped/,
      );
      const { rows } = await client.query("SELECT nexus_drop_partition('samples', 'series') AS dropped");
      expect(rows[0].dropped).toBe(false);
    } finally {
      await client.end();
    }
  });

  it('lets the API read, and nothing else', async () => {
    await api.migrate();
    const got = await api.querySamples({ gpu: { uuid: 'GPU-roles' }, resolution: 'raw' });
    expect(got).toHaveLength(3);
    expect(await api.querySamples({ gpu: { uuid: 'GPU-roles' }, resolution: '1h' })).toHaveLength(1);
    expect(await api.listGpus()).toHaveLength(1);
    expect(await api.listDeadLetters()).toHaveLength(3); // r-1, r-2 and r-3 each carried one
    await expect(
      api.writeBatch(batch('r-api', Date.parse('2024-01-30T00:00:00.000Z'))),
    ).rejects.toMatchObject({
      code: 'INTERNAL',
    });
    await expect(api.applyRetention!({ rawMs: DAY, rollupMs: DAY })).rejects.toThrow(/permission denied/);
    expect(await api.countSamples()).toBe(3);
  });
  it('a backfill the collector marks is built by an API read (the flush is SECURITY DEFINER); the API role cannot mark', async () => {
    const t = Date.parse('2024-02-05T05:00:00.000Z');
    const b: Batch = { ...batch('r-mark', t), deadLetters: [] };
    b.samples = Array.from({ length: 16 }, (_, i) => ({
      ...batch('x', t).samples[0]!,
      timestampMs: t + i * 1000,
      value: i,
    }));
    const c = new pg.Client({ connectionString: urlFor('nexus_collector', 'collector-change-me') });
    const a = new pg.Client({ connectionString: urlFor('nexus_api', 'api-change-me') });
    await c.connect();
    await a.connect();
    try {
      expect((await collector.writeBatch(b)).inserted).toBe(16);
      expect((await c.query('SELECT count(*)::int AS n FROM rollup_marks')).rows[0].n).toBe(1);
      expect((await c.query('SELECT count(*)::int AS n FROM rollup_pending')).rows[0].n).toBe(0);
      const got = await api.querySamples({
        gpu: { uuid: 'GPU-roles' },
        resolution: '1h',
        startMs: t,
        endMs: t + 3_600_000,
      });
      expect(got.map((s) => s.aggregate?.count)).toEqual([16]);
      expect((await c.query('SELECT count(*)::int AS n FROM rollup_marks')).rows[0].n).toBe(0);
      await expect(a.query("SELECT * FROM nexus_mark_hours('{1}'::int4[], '{0}'::float8[])")).rejects.toThrow(
        /permission denied/,
      );
      // The collector may insert marks (harmless: a rebuild is a function of stored rows) but not build them itself.
      expect((await c.query("SELECT * FROM nexus_mark_hours('{1}'::int4[], '{0}'::float8[])")).rows).toEqual(
        [],
      );
      await expect(c.query('SELECT * FROM nexus_build_marks(NULL, NULL, false)')).rejects.toThrow(
        /permission denied/,
      );
      await api.flushRollups();
      expect((await c.query('SELECT count(*)::int AS n FROM rollup_marks')).rows[0].n).toBe(0);
    } finally {
      await c.end();
      await a.end();
    }
  });
});
