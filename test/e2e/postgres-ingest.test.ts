/**
 * Ingest volume on a real PostgreSQL 15: 1M generated DCGM rows (generator -> CSV text -> parser
 * -> 5,000-sample batches -> store.writeBatch) ingested twice, the second time under new batch
 * ids so every row goes through the natural-key conflict path: exactly 1M samples are stored and
 * the rollups count each once. Also measures what keeping the rollups costs, interleaving the
 * same batches into a store with rollups and one without (the machine's speed drifts, so the
 * two are compared within one run). Figures are printed, never asserted.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import type { Batch, Sample } from '../../src/domain/types.js';
import { generateDcgmCsv, type GeneratorOptions } from '../../src/generate/generator.js';
import { DcgmParser } from '../../src/ingest/dcgm-reader.js';
import { ALL_MINUTE_BUCKETS } from '../../src/storage/minute-chunks.js';
import { type PostgresHarness, startPostgres } from '../harness/postgres.js';

const ROWS = 1_000_000;
const BATCH = 5_000;
/** 31 hosts x 8 GPUs x 10 metrics = 2,480 rows per 10 s scrape: 1M rows are ~67 minutes of a fleet. */
const FLEET: GeneratorOptions = { hosts: 31, gpusPerHost: 8, intervalMs: 10_000, seed: 7 };

let server: PostgresHarness;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

async function freshDatabase(): Promise<string> {
  return server.createDatabase(`nexus_${randomUUID().replaceAll('-', '').slice(0, 16)}`);
}

/** Batches of `BATCH` parsed samples of the first `rows` generated rows, ids `${prefix}-n`. */
function* batches(rows: number, prefix: string): Generator<Batch> {
  const parser = new DcgmParser({ source: 'generated.csv', clusterId: 'ingest' });
  let pending: Sample[] = [];
  let n = 0;
  const take = (results: ReturnType<DcgmParser['push']>): Batch[] => {
    const out: Batch[] = [];
    for (const r of results) {
      if (!r.ok) throw new Error(`generated row refused: ${r.deadLetter.reason}`);
      pending.push(r.sample);
      if (pending.length === BATCH) {
        out.push({ id: `${prefix}-${n++}`, source: 'generated.csv', samples: pending, deadLetters: [] });
        pending = [];
      }
    }
    return out;
  };
  for (const chunk of generateDcgmCsv({ ...FLEET, rows, chunkRows: 2_500 })) yield* take(parser.push(chunk));
  yield* take(parser.end());
  if (pending.length > 0)
    yield { id: `${prefix}-${n}`, source: 'generated.csv', samples: pending, deadLetters: [] };
}

/** Write every batch with up to `inFlight` writes at once; resolves to [samples inserted, seconds]. */
async function ingest(
  write: (b: Batch) => Promise<{ inserted: number }>,
  source: Iterable<Batch>,
  inFlight = 2,
): Promise<[number, number]> {
  const started = performance.now();
  let inserted = 0;
  const running = new Set<Promise<void>>();
  for (const b of source) {
    const p: Promise<void> = write(b).then((r) => {
      inserted += r.inserted;
      running.delete(p);
    });
    running.add(p);
    if (running.size >= inFlight) await Promise.race(running);
  }
  await Promise.all(running);
  return [inserted, (performance.now() - started) / 1000];
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

describe('PostgreSQL ingest volume', () => {
  it('stores exactly 1M samples after ingesting 1M generated rows twice', { timeout: 240_000 }, async () => {
    const url = await freshDatabase();
    const store = await createPostgresSampleStore({ connectionString: url, poolSize: 4 });
    try {
      await store.migrate();
      const [first, s1] = await ingest((b) => store.writeBatch(b), batches(ROWS, 'first'));
      const [second, s2] = await ingest((b) => store.writeBatch(b), batches(ROWS, 'again'));
      // The same batch ids a third time: the ledger skips them without touching samples.
      const [third, s3] = await ingest((b) => store.writeBatch(b), batches(200_000, 'first'));
      console.log(
        `1M rows into PostgreSQL (generate + parse + writeBatch, ${BATCH}-sample batches, 2 in flight): ` +
          `first pass ${s1.toFixed(1)} s (${fmt(ROWS / s1)} rows/s); replay under new batch ids ` +
          `${s2.toFixed(1)} s (${fmt(ROWS / s2)} rows/s); 200k under known batch ids ${s3.toFixed(1)} s`,
      );
      expect(first).toBe(ROWS);
      expect(second).toBe(0);
      expect(third).toBe(0);
      expect(await store.countSamples()).toBe(ROWS);

      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { rows } = await client.query<{
          m: number;
          h: number;
          series: number;
          ledger: number;
          defaults: number;
        }>(
          `SELECT (SELECT sum(count) FROM ${ALL_MINUTE_BUCKETS} b)::float8 AS m, (SELECT sum(count) FROM samples_1h)::float8 AS h,
                  (SELECT count(*) FROM series)::float8 AS series, (SELECT count(*) FROM batch_ledger)::float8 AS ledger,
                  (SELECT count(*) FROM samples_default)::float8 AS defaults`,
        );
        expect(rows[0]).toEqual({ m: ROWS, h: ROWS, series: 31 * 8 * 10, ledger: 400, defaults: 0 });
      } finally {
        await client.end();
      }
    } finally {
      await store.close();
    }
  });

  it('measures the write cost of the rollups (same batches, interleaved)', { timeout: 120_000 }, async () => {
    const [withUrl, withoutUrl] = [await freshDatabase(), await freshDatabase()];
    const withRollups = await createPostgresSampleStore({ connectionString: withUrl, poolSize: 2 });
    const without = await createPostgresSampleStore({
      connectionString: withoutUrl,
      poolSize: 2,
      rollups: false,
    });
    try {
      await withRollups.migrate();
      await without.migrate();
      const rows = 150_000;
      let [tWith, tWithout, n] = [0, 0, 0];
      // Warm-up batch each (series creation, partitions), not timed.
      const source = batches(rows + BATCH, 'cost');
      const warm = source.next().value as Batch;
      await withRollups.writeBatch(warm);
      await without.writeBatch(warm);
      let k = 0;
      for (const b of source) {
        // Alternate which store goes first, so neither always benefits from a warm cache.
        const order = k++ % 2 === 0 ? [withRollups, without] : [without, withRollups];
        for (const s of order) {
          const t = performance.now();
          n += (await s.writeBatch(b)).inserted;
          const dt = performance.now() - t;
          if (s === withRollups) tWith += dt;
          else tWithout += dt;
        }
      }
      expect(n).toBe(2 * rows);
      const rateWith = rows / (tWith / 1000);
      const rateWithout = rows / (tWithout / 1000);
      console.log(
        `rollup write cost (${fmt(rows)} rows, ${BATCH}-sample batches, one at a time): with rollups ` +
          `${fmt(rateWith)} rows/s (${(tWith / (rows / BATCH)).toFixed(1)} ms/batch), without ${fmt(rateWithout)} rows/s ` +
          `(${(tWithout / (rows / BATCH)).toFixed(1)} ms/batch): +${((tWith / tWithout - 1) * 100).toFixed(0)}% time`,
      );
      // Without rollups the rollup tables stay empty; with them they count every sample once.
      const count = async (u: string): Promise<number> => {
        const c = new pg.Client({ connectionString: u });
        await c.connect();
        try {
          await c.query('SELECT nexus_flush_rollups()');
          const { rows: r } = await c.query<{ n: number | null }>(
            `SELECT sum(count)::float8 AS n FROM samples_1h`,
          );
          return r[0]?.n ?? 0;
        } finally {
          await c.end();
        }
      };
      expect(await count(withUrl)).toBe(rows + BATCH);
      expect(await count(withoutUrl)).toBe(0);
    } finally {
      await withRollups.close();
      await without.close();
    }
  });
});
