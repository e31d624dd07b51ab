/**
 * Series reads (`selectSeries`) on PGlite and PostgreSQL through their statements: a few series by id
 * through `nexus_series_read` (migration 12, a plan kept per connection, the chunks' samples decoded
 * by `parseSeriesRead`), many series through the statement planned for each read (SQL unnests the
 * chunks), and one GPU's series with the ids looked up in the same statement (through
 * `nexus_gpu_series_read`, or in the statement for other fields). Function and statement must
 * answer the same samples for every window, over chunks and rows alike, with and without a bound.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import type { Sample } from '../../src/domain/types.js';
import { type SeriesFilter, countSelectedSamples } from '../../src/ports/sample-store.js';
import {
  PLANNED_READ_MAX_SERIES,
  type SeriesReadRow,
  buildGpuSeriesSamples,
  buildSeriesSamples,
  parseSeriesRead,
  parseSeriesSamples,
} from '../../src/storage/queries.js';
import type { SqlSampleStore } from '../../src/storage/sql-sample-store.js';
import { type PostgresHarness, startPostgres } from '../harness/postgres.js';
import { batch, sample } from '../support/samples.js';

const HOUR = 3_600_000;
const DAY0 = Date.parse('2026-03-01T00:00:00Z');
const METRICS = ['DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_GPU_TEMP', 'DCGM_FI_DEV_POWER_USAGE'];

/** Deterministic pseudo-random numbers in [0, 1). */
function prng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (Math.imul(x ^ (x >>> 15), 2_246_822_519) + 0x9e3779b9) >>> 0;
    return x / 2 ** 32;
  };
}

let server: PostgresHarness | undefined;
afterAll(async () => {
  await server?.stop();
});

/** A migrated store of each SQL backend. */
const backends: [string, () => Promise<SqlSampleStore>][] = [
  ['PGlite', async () => (await createPgliteSampleStore({ memory: true })) as SqlSampleStore],
  [
    'PostgreSQL',
    async () => {
      server ??= await startPostgres();
      const url = await server.createDatabase(`nexus_${randomUUID().replaceAll('-', '').slice(0, 16)}`);
      return (await createPostgresSampleStore({ connectionString: url, poolSize: 2 })) as SqlSampleStore;
    },
  ],
];

describe.each(backends)(
  'series reads: the planned function, the statement and one GPU in one statement (%s)',
  (_name, open) => {
    let store: SqlSampleStore;
    let ids: number[];
    const rand = prng(11);
    const written: Sample[] = [];

    beforeAll(async () => {
      store = await open();
      await store.migrate();
      // Two GPUs x 3 metrics over 14 hours, every 30 s with sub-millisecond jitter; the first 12
      // hours are compacted into chunks, the last 2 stay rows.
      const samples = written;
      for (const gpuId of ['0', '1'])
        for (const metric of METRICS)
          for (let t = 0; t < 14 * HOUR; t += 30_000)
            samples.push(
              sample({
                clusterId: 'reads',
                gpuId,
                uuid: `GPU-reads-${gpuId}`,
                metric,
                timestampMs: DAY0 + t + Math.floor(rand() * 900_000) / 1000,
                value: Math.round(rand() * 1e6) / 1e3,
              }),
            );
      // GPU 1 also has a MIG instance's series and a pod's: the label and field filters pick them.
      for (const extra of [
        { metric: METRICS[0]!, labels: { gpu: '0', GPU_I_ID: '3' } },
        { metric: METRICS[1]!, pod: 'trainer-0', namespace: 'ml' },
      ])
        for (let t = 0; t < 14 * HOUR; t += 30_000)
          samples.push(
            sample({
              clusterId: 'reads',
              gpuId: '1',
              uuid: 'GPU-reads-1',
              ...extra,
              timestampMs: DAY0 + t + Math.floor(rand() * 900_000) / 1000,
              value: Math.round(rand() * 1e6) / 1e3,
            }),
          );
      for (let i = 0; i < samples.length; i += 2000)
        await store.writeBatch(batch(samples.slice(i, i + 2000)));
      const compacted = await store.compact({ hotMs: 2 * HOUR, nowMs: DAY0 + 16 * HOUR });
      expect(compacted.windows).toBeGreaterThan(0);
      ids = await store.withSql('test', async (db) =>
        (
          await db.query<{ id: number }>("SELECT id FROM series WHERE cluster_id = 'reads' ORDER BY id")
        ).rows.map((r) => r.id),
      );
      expect(ids).toHaveLength(8);
    }, 120_000);

    afterAll(async () => {
      await store?.close();
    });

    /** `buildSeriesSamples`' answer for `seriesIds` as the store's executor returns it. */
    const answer = (seriesIds: number[], startMs: number, endMs: number, limit?: number) =>
      store.withSql('test', async (db) => {
        const { text, params } = buildSeriesSamples(seriesIds, startMs, endMs, limit);
        return (await db.query<SeriesReadRow>(text, params)).rows[0];
      });

    const windows: [number, number][] = [
      ...Array.from({ length: 25 }, (): [number, number] => {
        const a = DAY0 - HOUR + Math.floor(rand() * 16 * HOUR);
        return [a, a + Math.floor(rand() * (rand() < 0.5 ? 40 * 60_000 : 10 * HOUR))];
      }),
      [DAY0 + 0.5, DAY0 + 13 * HOUR + 0.25], // bounds between milliseconds
      [DAY0 - 1, DAY0 + 20 * HOUR], // everything, chunks and rows
      [DAY0 + 11 * HOUR, DAY0 + 13 * HOUR], // across the last chunk window and the rows
    ];
    /** Windows that start or end exactly on a stored sample, in chunks and in rows. */
    const onSamples = (): [number, number][] =>
      [0.1, 0.5, 0.8, 0.95].flatMap((at): [number, number][] => {
        const t = written[Math.floor(at * 1680)]!.timestampMs;
        return [
          [Math.floor(t) - 600_000, t],
          [t, Math.floor(t) + 600_000],
        ];
      });

    it('few ids read through the function; the function answers what the statement answers', async () => {
      // Ids that name no series push a read past the function's bound without changing its answer.
      const padded = [...ids, ...Array.from({ length: PLANNED_READ_MAX_SERIES }, (_, i) => -1 - i)];
      expect(buildSeriesSamples(ids, DAY0, DAY0 + HOUR).text).toContain('nexus_series_read');
      expect(buildSeriesSamples(padded, DAY0, DAY0 + HOUR).text).not.toContain('nexus_series_read');
      // TimescaleDB's reads keep a statement planned for their values.
      expect(buildSeriesSamples(ids, DAY0, DAY0 + HOUR, undefined, false).text).not.toContain(
        'nexus_series_read',
      );
      let nonEmpty = 0;
      let sliced = 0;
      for (const [startMs, endMs] of [...windows, ...onSamples()]) {
        // The function leaves the chunks' samples to parseSeriesRead; the statement unnests them.
        const planned = await answer(ids, startMs, endMs);
        const decoded = parseSeriesRead(planned);
        expect(decoded).toEqual(parseSeriesRead(await answer(padded, startMs, endMs)));
        if (decoded.length > 0) nonEmpty += 1;
        if (planned?.chunks) sliced += 1;
        // The bound: exactly at the window's count it answers, one under it says "over"; far above
        // it the slices come back as unbounded.
        const count = decoded.reduce((n, s) => n + s.timestamps.length, 0);
        for (const limit of [
          count + 1000,
          count + 1,
          Math.max(1, count),
          Math.max(1, Math.floor(count / 2)),
        ]) {
          const a = await answer(ids, startMs, endMs, limit);
          const b = await answer(padded, startMs, endMs, limit);
          expect(Boolean(a?.over)).toBe(Boolean(b?.over));
          expect(Boolean(a?.over)).toBe(count >= limit);
          expect(parseSeriesRead(a)).toEqual(parseSeriesRead(b));
          if (limit === count + 1000 && a?.chunks) sliced += 1;
        }
      }
      expect(nonEmpty).toBeGreaterThan(20);
      expect(sliced).toBeGreaterThan(20);
    });

    it("refuses a chunk whose count is not its arrays' length (reads bound windows by it)", async () => {
      const insert = (n: number) =>
        store.withSql('test', (db) =>
          db.query(
            `INSERT INTO sample_chunks (series_id, start_ts, first_ts, last_ts, n, step_us, max_jitter_us, jitter_us, vals)
             VALUES ($1, '2020-01-01', '2020-01-01', '2020-01-01 00:01', $2, 30000000, 0, '{0,0,0}', '{1,2,3}')`,
            [ids[0], n],
          ),
        );
      await expect(insert(1)).rejects.toThrow(/sample_chunks_n_is_length/);
      await expect(insert(3)).resolves.toBeDefined();
      await store.withSql('test', (db) =>
        db.query(`DELETE FROM sample_chunks WHERE start_ts = '2020-01-01'`),
      );
    });

    it('one GPU in one statement answers what the ids first answer', async () => {
      for (const [startMs, endMs] of [...windows, ...onSamples()]) {
        for (const maxSamples of [undefined, 100_000]) {
          // `accept` keeps the read on the ids-first path; the pinned filter takes the one statement.
          const viaIds = await store.selectSeries({
            filter: { clusterId: 'reads', uuid: 'GPU-reads-1' },
            accept: () => true,
            startMs,
            endMs,
            maxSamples,
          });
          const pinned = await store.selectSeries({
            filter: { clusterId: 'reads', hostname: 'host-a', gpuId: '1' },
            startMs,
            endMs,
            maxSamples,
          });
          expect(pinned).toEqual(viaIds);
          expect(pinned.every((s) => s.series.gpuId === '1')).toBe(true);
        }
      }
      // The same filters read ids first (`accept`) and in one statement: through
      // nexus_gpu_series_read (UUID or cluster, host and index; metrics; labels), or with the
      // lookup in the statement when another field is set (pod).
      const filters: SeriesFilter[] = [
        { uuid: 'GPU-reads-1' },
        { clusterId: 'reads', uuid: 'GPU-reads-1', labels: { GPU_I_ID: '' } },
        { clusterId: 'reads', hostname: 'host-a', gpuId: '1', labels: { GPU_I_ID: '3' } },
        { clusterId: 'reads', hostname: 'host-a', gpuId: '1', labels: { GPU_I_ID: '', gpu: '0' } },
        { clusterId: 'reads', hostname: 'host-a', gpuId: '1', labels: { constructor: '' } },
        { clusterId: 'reads', hostname: 'host-a', gpuId: '1', metrics: [METRICS[0]!, METRICS[2]!] },
        { clusterId: 'reads', hostname: 'host-a', gpuId: '1', metrics: [] },
        { clusterId: 'other', uuid: 'GPU-reads-1' },
        { clusterId: 'reads', hostname: 'host-a', gpuId: '1', pod: 'trainer-0' },
        { uuid: 'GPU-reads-1', labels: { GPU_I_ID: '' }, namespace: '' },
      ];
      const viaFunction = filters.map((filter) =>
        buildGpuSeriesSamples(filter, DAY0, DAY0 + HOUR).text.includes('nexus_gpu_series_read'),
      );
      expect(viaFunction).toEqual([true, true, true, true, true, true, true, true, false, false]);
      const seen: number[] = [];
      for (const filter of filters) {
        for (const maxSamples of [undefined, 100_000]) {
          const window = { startMs: DAY0 + 11 * HOUR, endMs: DAY0 + 13 * HOUR, maxSamples };
          const viaIds = await store.selectSeries({ filter, accept: () => true, ...window });
          expect(await store.selectSeries({ filter, ...window })).toEqual(viaIds);
          seen.push(viaIds.length);
        }
        // A budget the window's samples exceed is refused by both paths, one they fit is not.
        const total = countSelectedSamples(
          await store.selectSeries({ filter, startMs: DAY0 + 11 * HOUR, endMs: DAY0 + 13 * HOUR }),
        );
        for (const maxSamples of [Math.max(0, total - 1), total]) {
          const window = { startMs: DAY0 + 11 * HOUR, endMs: DAY0 + 13 * HOUR, maxSamples };
          const outcome = (read: Promise<unknown>) =>
            read.then(
              (series) => ({ series }),
              (error: { code?: string }) => ({ code: error.code }),
            );
          const viaIds = await outcome(store.selectSeries({ filter, accept: () => true, ...window }));
          expect(await outcome(store.selectSeries({ filter, ...window }))).toEqual(viaIds);
          if (total > 0)
            expect(viaIds).toEqual(maxSamples < total ? { code: 'READ_BUDGET_EXCEEDED' } : expect.anything());
        }
      }
      expect(seen).toEqual([5, 5, 4, 4, 1, 1, 4, 4, 5, 5, 3, 3, 0, 0, 0, 0, 1, 1, 3, 3]);
      const all = await store.selectSeries({
        filter: { clusterId: 'reads', uuid: 'GPU-reads-0' },
        startMs: DAY0 - 1,
        endMs: DAY0 + 20 * HOUR,
      });
      expect(all.map((s) => s.series.metric).sort()).toEqual([...METRICS].sort());
      expect(all.map((s) => s.timestamps.length)).toEqual([1680, 1680, 1680]);
      await expect(
        store.selectSeries({
          filter: { clusterId: 'reads', uuid: 'GPU-reads-0' },
          startMs: DAY0 - 1,
          endMs: DAY0 + 20 * HOUR,
          maxSamples: 5039,
        }),
      ).rejects.toMatchObject({ code: 'READ_BUDGET_EXCEEDED' });
    });
  },
);

describe('parseSeriesRead', () => {
  it('chunk slices: every sample within the bounds at first + (lo - 1 + k) * step + jitter, exact 1700 to 2300', () => {
    const rand = prng(9);
    const pgEpochUs = 946_684_800_000_000n;
    const hex64 = (v: bigint): string => {
      const b = Buffer.alloc(8);
      b.writeBigInt64BE(v);
      return b.toString('hex');
    };
    const float8Array = (values: number[]): string => {
      const b = Buffer.alloc(values.length === 0 ? 12 : 20 + values.length * 12);
      b.writeInt32BE(values.length === 0 ? 0 : 1, 0);
      b.writeInt32BE(0, 4);
      b.writeInt32BE(701, 8);
      if (values.length > 0) {
        b.writeInt32BE(values.length, 12);
        b.writeInt32BE(1, 16);
        values.forEach((v, k) => {
          b.writeInt32BE(8, 20 + k * 12);
          b.writeDoubleBE(v, 24 + k * 12);
        });
      }
      return b.toString('hex');
    };
    const decimalMs = (u: bigint): number => {
      const x = u + pgEpochUs;
      const a = x < 0n ? -x : x;
      return Number(`${x < 0n ? '-' : ''}${a / 1000n}.${String(a % 1000n).padStart(3, '0')}`);
    };
    let kept = 0;
    let dropped = 0;
    for (let round = 0; round < 200; round++) {
      const years = -300 + rand() * 600; // around 2000
      const first = BigInt(Math.round(years * 365.25 * 86_400 * 1e6));
      const r = rand();
      // Steps under the jitter's spread put some slices out of time order (never written so).
      const step = BigInt(Math.floor(rand() * (r < 0.2 ? 1e12 : r < 0.3 ? 1e6 : 60e6)));
      const lo = BigInt(1 + Math.floor(rand() * 500));
      const n = Math.floor(rand() * 40);
      const jitter = Array.from({ length: n }, () => BigInt(Math.floor((rand() - 0.5) * 2e6)));
      const values = Array.from({ length: n }, () => (rand() - 0.5) * 1e6);
      const times = jitter.map((j, k) => first + (lo - 1n + BigInt(k)) * step + j);
      const sorted = [...times].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const from = n === 0 ? first : sorted[Math.floor(rand() * n)]! - BigInt(Math.floor(rand() * 3));
      const to = n === 0 ? first : sorted[Math.floor(rand() * n)]! + BigInt(Math.floor(rand() * 3));
      const row: SeriesReadRow = {
        samples: null,
        chunks: n === 0 ? null : `7 ${lo} ${hex64(first)} ${step} ${jitter.join(',')} ${float8Array(values)}`,
        bounds: hex64(from) + hex64(to),
      };
      const want = times
        .map((t, k) => ({ t, v: values[k]! }))
        .filter(({ t }) => t >= from && t <= to)
        .sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
      const got = parseSeriesRead(row);
      if (want.length === 0) {
        expect(got).toEqual([]);
      } else {
        expect(got).toEqual([
          { seriesId: 7, timestamps: want.map((w) => decimalMs(w.t)), values: want.map((w) => w.v) },
        ]);
      }
      kept += want.length;
      dropped += n - want.length;
    }
    expect(kept).toBeGreaterThan(500);
    expect(dropped).toBeGreaterThan(500);
  });
});

describe('parseSeriesSamples', () => {
  it('times as the double nearest the exact decimal milliseconds, 1700 to 2300; values bit for bit', () => {
    const rand = prng(5);
    const pgEpochUs = 946_684_800_000_000n;
    const us: bigint[] = [0n, -1n, 1n, -pgEpochUs, 2n ** 52n - 1n, -(2n ** 52n), 2n ** 52n, 2n ** 53n];
    for (let i = 0; i < 2000; i++) {
      const years = -300 + rand() * 600; // around 2000
      us.push(BigInt(Math.round(years * 365.25 * 86_400 * 1e6)) + BigInt(Math.floor(rand() * 1000)));
    }
    const values = us.map((_, i) =>
      i % 7 === 0 ? -0 : (rand() - 0.5) * 10 ** Math.floor(rand() * 600 - 300),
    );
    const bytes = Buffer.alloc(us.length * 16);
    us.forEach((u, i) => {
      bytes.writeBigInt64BE(u, i * 16);
      bytes.writeDoubleBE(values[i]!, i * 16 + 8);
    });
    const [got] = parseSeriesSamples(`42 ${us.length} ${bytes.toString('hex')}`);
    const decimalMs = (u: bigint): number => {
      const x = u + pgEpochUs;
      const a = x < 0n ? -x : x;
      return Number(`${x < 0n ? '-' : ''}${a / 1000n}.${String(a % 1000n).padStart(3, '0')}`);
    };
    expect(got!.seriesId).toBe(42);
    expect(got!.timestamps).toEqual(us.map(decimalMs));
    expect(got!.values.map((v) => Object.is(v, -0) || v)).toEqual(values.map((v) => Object.is(v, -0) || v));
    expect(() => parseSeriesSamples('1 2 00ff')).toThrow(/2 bytes for 2 samples/);
  });
});
