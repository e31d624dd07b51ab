/**
 * The rollup queue (migration 8, src/storage/rollups.ts) under concurrency, on a real PostgreSQL 15:
 * writers queue the samples they insert in `rollup_pending`, `nexus_flush_rollups()` folds the
 * queue into the three rollup levels. Every queued sample must be folded exactly once whatever
 * runs beside it, and a reader must never see rollups behind the raw samples committed before it.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import { ALL_MINUTE_BUCKETS } from '../../src/storage/minute-chunks.js';
import { type PostgresHarness, startPostgres } from '../harness/postgres.js';
import { batch, sample } from '../support/samples.js';

const T0 = Date.parse('2026-11-20T00:00:00Z');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let server: PostgresHarness;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

const newDatabase = (): Promise<string> =>
  server.createDatabase(`nexus_${randomUUID().replaceAll('-', '').slice(0, 16)}`);

/** Per level: rows, sum(count), sum(sum), min(min), max(max); raw count; queue rows. */
async function levels(c: pg.Client): Promise<Record<string, unknown>> {
  const level = async (table: string) =>
    (
      await c.query(
        `SELECT count(*)::int AS rows, sum(count)::int AS n, sum(sum)::float8 AS total, min(min)::float8 AS lo, max(max)::float8 AS hi FROM ${table}`,
      )
    ).rows[0];
  return {
    raw: (await c.query('SELECT count(*)::int AS n, sum(value)::float8 AS total FROM samples')).rows[0],
    m: await level(`${ALL_MINUTE_BUCKETS} AS b`),
    h: await level('samples_1h'),
    d: await level('samples_1d'),
    queued: (await c.query('SELECT count(*)::int AS n FROM rollup_pending')).rows[0].n,
  };
}

describe('rollup queue (PostgreSQL)', () => {
  it('three writers and two flushing connections at once: every sample folded exactly once', async () => {
    const cs = await newDatabase();
    const stores: SampleStore[] = [];
    for (let i = 0; i < 3; i++)
      stores.push(await createPostgresSampleStore({ connectionString: cs, poolSize: 2 }));
    await stores[0]!.migrate();
    const flushers = [new pg.Client({ connectionString: cs }), new pg.Client({ connectionString: cs })];
    for (const c of flushers) await c.connect();
    try {
      // Writer w: 30 batches of 4 GPUs x 5 metrics x 10 scrapes 20 s apart; its scrapes interleave
      // in time with the other writers' (same minutes, hours and days, different GPUs), and every
      // fifth batch is sent twice (a redelivery: the ledger drops it, nothing is queued twice).
      const write = async (w: number): Promise<number> => {
        let inserted = 0;
        for (let b = 0; b < 30; b++) {
          const samples = [];
          for (let g = 0; g < 4; g++)
            for (let m = 0; m < 5; m++)
              for (let k = 0; k < 10; k++)
                samples.push(
                  sample({
                    uuid: `GPU-q${w}-${g}`,
                    gpuId: String(g),
                    hostname: `host-q${w}`,
                    metric: `DCGM_FI_Q_${m}`,
                    timestampMs: T0 + (b * 10 + k) * 20_000,
                    value: (w * 7 + g * 3 + m + k + b) % 11,
                  }),
                );
          const one = batch(samples, [], `w${w}`);
          inserted += (await stores[w]!.writeBatch(one)).inserted;
          if (b % 5 === 0) expect((await stores[w]!.writeBatch(one)).inserted).toBe(0);
        }
        return inserted;
      };
      let flushing = true;
      let flushes = 0;
      const flushLoop = async (c: pg.Client): Promise<void> => {
        while (flushing) {
          await c.query('SELECT nexus_flush_rollups()');
          flushes += 1;
          await sleep(5);
        }
      };
      const loops = flushers.map(flushLoop);
      const inserted = await Promise.all([0, 1, 2].map(write));
      flushing = false;
      await Promise.all(loops);
      expect(inserted).toEqual([6000, 6000, 6000]);
      expect(flushes).toBeGreaterThan(10);
      await flushers[0]!.query('SELECT nexus_flush_rollups()');
      const got = await levels(flushers[0]!);
      const raw = got.raw as { n: number; total: number };
      expect(raw.n).toBe(18_000);
      // 3 writers x 4 GPUs x 5 metrics = 60 series over 100 minutes (6,000 s), 2 hours, 1 day.
      expect(got).toEqual({
        raw,
        m: { rows: 60 * 100, n: 18_000, total: raw.total, lo: 0, hi: 10 },
        h: { rows: 60 * 2, n: 18_000, total: raw.total, lo: 0, hi: 10 },
        d: { rows: 60, n: 18_000, total: raw.total, lo: 0, hi: 10 },
        queued: 0,
      });
    } finally {
      for (const c of flushers) await c.end();
      for (const s of stores) await s.close();
    }
  });

  it('a reader arriving during a flush waits for it and sees every sample committed before it', async () => {
    const cs = await newDatabase();
    // No background flush from the writer: the test holds the only one.
    const quiet = { rollupFlush: { samples: 1e9, ms: 1e9 } };
    const writer = await createPostgresSampleStore({ connectionString: cs, poolSize: 2, ...quiet });
    const reader = await createPostgresSampleStore({ connectionString: cs, poolSize: 2, ...quiet });
    await writer.migrate();
    const a = new pg.Client({ connectionString: cs });
    await a.connect();
    try {
      const at = (k: number) => sample({ uuid: 'GPU-reader', timestampMs: T0 + k * 10_000, value: k });
      expect((await writer.writeBatch(batch([at(0), at(1), at(2)]))).inserted).toBe(3);
      // A flush holds the queue's rows (deleted, not committed yet) ...
      await a.query('BEGIN');
      expect((await a.query<{ n: string }>('SELECT nexus_flush_rollups() AS n')).rows[0]!.n).toBe('3');
      // ... while another write queues more.
      expect((await writer.writeBatch(batch([at(3), at(4)]))).inserted).toBe(2);
      let answered = false;
      const read = reader.querySamples({ gpu: { uuid: 'GPU-reader' }, resolution: '1m' }).then((r) => {
        answered = true;
        return r;
      });
      await sleep(300);
      expect(answered).toBe(false); // waiting for the flush in progress
      await a.query('COMMIT');
      const minute = await read;
      expect(minute).toHaveLength(1);
      expect(minute[0]!.aggregate).toMatchObject({ count: 5, min: 0, max: 4, avg: 2, last: 4 });
    } finally {
      await a.end();
      await writer.close();
      await reader.close();
    }
  });

  it("dropping a compacted day's 1-minute partition waits for a flush in progress; a late sample's bucket comes from its raw row", async () => {
    const cs = await newDatabase();
    const quiet = { rollupFlush: { samples: 1e9, ms: 1e9 } };
    const store = await createPostgresSampleStore({ connectionString: cs, poolSize: 2, ...quiet });
    await store.migrate();
    const a = new pg.Client({ connectionString: cs });
    const b = new pg.Client({ connectionString: cs });
    await a.connect();
    await b.connect();
    try {
      const HOUR = 3_600_000;
      const day = Date.parse('2026-11-10T00:00:00Z');
      const util = (t: number) => sample({ uuid: 'GPU-drop', timestampMs: t, value: 1 });
      const s: ReturnType<typeof sample>[] = [];
      for (let t = 0; t < 24 * HOUR; t += 60_000) s.push(util(day + t));
      await store.writeBatch(batch(s));
      const pass = await store.compact!({ hotMs: 2 * HOUR, nowMs: day + 72 * HOUR });
      expect(pass.droppedPartitions).toContain('samples_1m_p20261110');
      // A late sample of another series (no chunk to expand) in that day: queued, not folded.
      const late = sample({
        uuid: 'GPU-drop',
        metric: 'DCGM_FI_DEV_GPU_TEMP',
        timestampMs: day + HOUR,
        value: 7,
      });
      expect((await store.writeBatch(batch([late]))).inserted).toBe(1);
      // A flush folds it (its series has no 1-minute rows in that window: no row is written, readers
      // compute the bucket from the raw row), not committed yet ...
      await a.query('BEGIN');
      expect((await a.query<{ n: string }>('SELECT nexus_flush_rollups() AS n')).rows[0]!.n).toBe('1');
      // ... while a compaction pass would drop that partition: it waits for the flush lock, then
      // drops the partition, which holds no row.
      let dropped: boolean | undefined;
      const drop = b
        .query<{ dropped: boolean }>('SELECT nexus_drop_compacted_minutes($1::timestamptz) AS dropped', [
          new Date(day).toISOString(),
        ])
        .then((r) => (dropped = r.rows[0]!.dropped));
      await sleep(300);
      expect(dropped).toBeUndefined();
      await a.query('COMMIT');
      await drop;
      expect(dropped).toBe(true);
      const { rows } = await a.query<{ n: number; stored: number }>(
        `SELECT (SELECT sum(m.count) FROM ${ALL_MINUTE_BUCKETS} m JOIN series s ON s.id = m.series_id
                 WHERE s.metric = 'DCGM_FI_DEV_GPU_TEMP')::int AS n, (SELECT count(*) FROM samples_1m)::int AS stored`,
      );
      expect(rows[0]).toEqual({ n: 1, stored: 0 });
    } finally {
      await a.end();
      await b.end();
      await store.close();
    }
  });
});
