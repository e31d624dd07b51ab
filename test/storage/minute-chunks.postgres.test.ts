/**
 * 1-minute rollups of compacted windows under concurrency, on a real PostgreSQL 15: raw retention
 * (`nexus_trim_chunks`) racing a late write into an expiring window, and two late writers of the
 * same chunk, each driven statement by statement on two connections. Every 1-minute bucket must
 * be counted once, and no writer may fail. (Both raced before the fixes found in review: a
 * double-counted window, then a unique violation on every later compaction; a failed batch.)
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import { ALL_MINUTE_BUCKETS } from '../../src/storage/minute-chunks.js';
import { type PostgresHarness, startPostgres } from '../harness/postgres.js';
import { batch, sample } from '../support/samples.js';

const HOUR = 3_600_000;
const DAY0 = Date.parse('2026-11-20T00:00:00Z');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let server: PostgresHarness;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

/** A store with two series x 6 hours at 30 s in one compacted window, and two spare connections. */
async function compactedWindow(): Promise<{
  store: SampleStore;
  a: pg.Client;
  b: pg.Client;
  utilId: number;
  totals: () => Promise<{ buckets: number; samples: number }>;
  done: () => Promise<void>;
}> {
  const cs = await server.createDatabase(`nexus_${randomUUID().replaceAll('-', '').slice(0, 16)}`);
  const store = await createPostgresSampleStore({ connectionString: cs, poolSize: 2 });
  await store.migrate();
  const s = [];
  for (let t = 0; t < 6 * HOUR; t += 30_000) {
    s.push(sample({ timestampMs: DAY0 + t, value: 1 }));
    s.push(sample({ metric: 'DCGM_FI_DEV_GPU_TEMP', timestampMs: DAY0 + t, value: 2 }));
  }
  await store.writeBatch(batch(s));
  await store.compact!({ hotMs: 2 * HOUR, nowMs: DAY0 + 48 * HOUR });
  const a = new pg.Client({ connectionString: cs });
  const b = new pg.Client({ connectionString: cs });
  await a.connect();
  await b.connect();
  const { rows } = await a.query<{ id: number }>(
    "SELECT id FROM series WHERE metric = 'DCGM_FI_DEV_GPU_UTIL'",
  );
  // The rollup queue folded first (what every reader of the store does).
  const totals = async () => {
    await a.query('SELECT nexus_flush_rollups()');
    const { rows } = await a.query<{ buckets: number; samples: number }>(
      `SELECT count(*)::int AS buckets, sum(count)::int AS samples FROM ${ALL_MINUTE_BUCKETS} AS x`,
    );
    return rows[0]!;
  };
  return {
    store,
    a,
    b,
    utilId: rows[0]!.id,
    totals,
    done: async () => {
      await a.end();
      await b.end();
      await store.close();
    },
  };
}

describe('1-minute rollups of compacted windows, concurrently (PostgreSQL)', () => {
  it('raw retention waits for a late write into an expiring window: every bucket once, later passes work', async () => {
    const w = await compactedWindow();
    try {
      expect(await w.totals()).toEqual({ buckets: 720, samples: 1440 });
      // A late writer has turned the chunk of one series back into rows, not committed yet.
      await w.a.query('BEGIN');
      await w.a.query('SELECT nexus_lock_windows($1::float8[])', [[DAY0]]);
      await w.a.query('SELECT nexus_expand_chunks($1::int4[], $2::float8[])', [[w.utilId], [DAY0]]);
      let trimmed = false;
      const trim = w.b
        .query<{ n: number }>('SELECT nexus_trim_chunks($1::timestamptz)::int AS n', [
          new Date(DAY0 + 24 * HOUR).toISOString(),
        ])
        .then((r) => {
          trimmed = true;
          return r.rows[0]!.n;
        });
      await sleep(500);
      expect(trimmed).toBe(false); // waits for the writer's window lock
      await w.a.query('COMMIT');
      expect(await trim).toBe(1); // the other series' chunk; the expanded one is rows now
      expect(await w.totals()).toEqual({ buckets: 720, samples: 1440 });
      // The window is dirty: the next pass compacts the rows again, without a unique violation.
      const again = await w.store.compact!({ hotMs: 2 * HOUR, nowMs: DAY0 + 48 * HOUR });
      expect(again.windows).toBe(1);
      expect(await w.totals()).toEqual({ buckets: 720, samples: 1440 });
    } finally {
      await w.done();
    }
  });

  it('two late writers expanding the same chunk: the second waits, then finds nothing to restore', async () => {
    const w = await compactedWindow();
    try {
      // The window is dirty already (a late sample of the other series): marking it dirty again
      // takes no row lock that would line the two writers up.
      const late = sample({ metric: 'DCGM_FI_DEV_GPU_TEMP', timestampMs: DAY0 + 10_000, value: 3 });
      expect((await w.store.writeBatch(batch([late]))).inserted).toBe(1);
      await w.a.query('BEGIN');
      await w.a.query('SELECT nexus_lock_windows($1::float8[])', [[DAY0]]);
      const first = await w.a.query<{ n: number }>(
        'SELECT nexus_expand_chunks($1::int4[], $2::float8[])::int AS n',
        [[w.utilId], [DAY0]],
      );
      expect(first.rows[0]!.n).toBe(720);
      await w.b.query('BEGIN');
      await w.b.query('SELECT nexus_lock_windows($1::float8[])', [[DAY0]]);
      const second = w.b.query<{ n: number }>(
        'SELECT nexus_expand_chunks($1::int4[], $2::float8[])::int AS n',
        [[w.utilId], [DAY0]],
      );
      await sleep(300);
      await w.a.query('COMMIT');
      expect((await second).rows[0]!.n).toBe(0);
      await w.b.query('COMMIT');
      expect(await w.totals()).toEqual({ buckets: 720, samples: 1441 });
      // Through the store too: a late sample merges into its restored bucket.
      expect(
        (await w.store.writeBatch(batch([sample({ timestampMs: DAY0 + 5_000, value: 9 })]))).inserted,
      ).toBe(1);
      expect(await w.totals()).toEqual({ buckets: 720, samples: 1442 });
    } finally {
      await w.done();
    }
  });
});
