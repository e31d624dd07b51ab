/**
 * What only the SQLite store has to show beyond the conformance suite: retention deletes raw
 * samples by whole hours and folds their 1m/1h buckets first (answers unchanged, later samples
 * merged into folded buckets), data survives close and reopen, and a file that is no database is
 * refused with a clear error.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteSampleStore, type SqliteSampleStore } from '../../src/adapters/sqlite/sample-store.js';
import type { Batch, Sample } from '../../src/domain/types.js';
import type { SampleStore, StoredSeries } from '../../src/ports/sample-store.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = Date.parse('2026-01-10T00:00:00.000Z');

const key = {
  clusterId: 'c1',
  hostname: 'h1',
  gpuId: '0',
  uuid: 'GPU-sqlite',
  device: 'nvidia0',
  modelName: 'NVIDIA H100 80GB HBM3',
  metric: 'DCGM_FI_DEV_GPU_UTIL',
  container: '',
  pod: '',
  namespace: '',
  labels: {},
};

let n = 0;
function batch(samples: Sample[]): Batch {
  n += 1;
  return { id: `b-${n}`, source: 'sqlite-test', samples, deadLetters: [] };
}

/** One sample every 45 s for `hours` hours from `start`, values going up and down. */
function samples(start: number, hours: number): Sample[] {
  return Array.from({ length: (hours * HOUR) / 45_000 }, (_, i) => ({
    ...key,
    timestampMs: start + i * 45_000 + (i % 7),
    value: (i * 37) % 101,
  }));
}

describe('SQLite sample store: retention', () => {
  let dir: string;
  let store: SqliteSampleStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nexus-sqlite-'));
    store = createSqliteSampleStore({ file: join(dir, 'samples.db') });
    await store.migrate();
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const gpu = { uuid: key.uuid };
  const rollups = async () => ({
    minutes: await store.querySamples({ gpu, resolution: '1m', order: 'asc', limit: 100_000 }),
    hours: await store.querySamples({ gpu, resolution: '1h', order: 'asc', limit: 100_000 }),
  });

  it('deletes raw samples before the 6-hour window bound and keeps their rollups, exactly', async () => {
    const written = samples(T0, 48);
    for (let i = 0; i < written.length; i += 1000) await store.writeBatch(batch(written.slice(i, i + 1000)));
    const before = await rollups();
    expect(before.hours).toHaveLength(48);
    expect(before.hours.reduce((s, h) => s + h.aggregate!.count, 0)).toBe(written.length);

    // Now is T0 + 48 h 30 min, the data ends on T0 + 48 h (the end of its newest day, which retention
    // measures from); a raw bound of 30 h keeps raw samples from T0 + 18 h (a window start).
    const nowMs = T0 + 48 * HOUR + 30 * 60_000;
    const result = await store.applyRetention({ rawMs: 30 * HOUR, rollupMs: 0, nowMs });
    const kept = written.filter((s) => s.timestampMs >= T0 + 18 * HOUR);
    expect(result).toEqual({ dropped: [], deletedRows: written.length - kept.length });
    expect(await store.countSamples()).toBe(kept.length);
    const raw = await store.querySamples({ gpu, order: 'asc', limit: 100_000 });
    expect(raw[0]!.timestampMs).toBe(kept[0]!.timestampMs);
    expect(raw).toHaveLength(kept.length);
    // Every 1m and 1h bucket answers as before, the deleted ones from the folded table.
    expect(await rollups()).toEqual(before);

    // Limits apply to the merge of folded and computed buckets, from either end.
    expect(await store.querySamples({ gpu, resolution: '1h', order: 'asc', limit: 20 })).toEqual(
      before.hours.slice(0, 20),
    );
    expect(await store.querySamples({ gpu, resolution: '1h', limit: 31 })).toEqual(
      before.hours.slice(-31).reverse(),
    );

    // A late sample in a folded hour merges into its bucket (count, min, and `last` by time).
    const late = { ...key, timestampMs: T0 + 5 * HOUR + 59 * 60_000 + 59_000, value: -5 };
    expect((await store.writeBatch(batch([late]))).inserted).toBe(1);
    const hour5 = (await rollups()).hours[5]!;
    expect(hour5.aggregate).toMatchObject({
      count: before.hours[5]!.aggregate!.count + 1,
      min: -5,
      last: -5,
    });
    // Folding it again on the next pass keeps the merged figures.
    await store.applyRetention({ rawMs: 30 * HOUR, rollupMs: 0, nowMs });
    expect((await rollups()).hours[5]).toEqual(hour5);

    // The rollup bound (T0 + 8 h, rounded down to its window: T0 + 6 h) deletes folded buckets before it.
    await store.applyRetention({ rawMs: 30 * HOUR, rollupMs: 40 * HOUR, nowMs });
    const after = await rollups();
    expect(after.hours[0]!.timestampMs).toBe(T0 + 6 * HOUR);
    expect(after.hours).toEqual(before.hours.slice(6));
  });

  it('measures from the newest day holding raw samples when that is earlier than now, as PostgreSQL does', async () => {
    const old = samples(T0, 2);
    await store.writeBatch(batch(old));
    // 400 days later, a 7-day bound: the data is a backfill, not expired.
    const nowMs = T0 + 400 * DAY;
    expect(await store.applyRetention({ rawMs: 7 * DAY, rollupMs: 7 * DAY, nowMs })).toEqual({
      dropped: [],
      deletedRows: 0,
    });
    expect(await store.countSamples()).toBe(old.length);
    // One more day of data, 3 days on: the bound of 1 day (from the end of that day) takes the first.
    const later = samples(T0 + 3 * DAY, 1);
    await store.writeBatch(batch(later));
    expect(await store.applyRetention({ rawMs: DAY, rollupMs: 0, nowMs })).toEqual({
      dropped: [],
      deletedRows: old.length,
    });
    expect(await store.countSamples()).toBe(later.length);
  });

  it('keeps everything with zero bounds', async () => {
    await store.writeBatch(batch(samples(T0, 2)));
    expect(await store.applyRetention({ rawMs: 0, rollupMs: 0, nowMs: T0 + 30 * DAY })).toEqual({
      dropped: [],
      deletedRows: 0,
    });
    expect(await store.countSamples()).toBe(160);
  });
});

describe('SQLite sample store: compaction', () => {
  let dir: string;
  let file: string;
  let store: SqliteSampleStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nexus-sqlite-'));
    file = join(dir, 'samples.db');
    store = createSqliteSampleStore({ file });
    await store.migrate();
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** `gpus` GPUs x 3 metrics, one sample each 30 s for `hours` from `start`. */
  function fleet(gpus: number, start: number, hours: number): Sample[] {
    const out: Sample[] = [];
    for (let i = 0; i < (hours * HOUR) / 30_000; i++) {
      for (let g = 0; g < gpus; g++) {
        for (const metric of ['M_A', 'M_B', 'M_C']) {
          out.push({
            ...key,
            uuid: `GPU-${g}`,
            gpuId: String(g),
            metric,
            timestampMs: start + i * 30_000,
            value: Math.round(((i * 7 + g * 13) % 1000) * 1.37) / 100,
          });
        }
      }
    }
    return out;
  }
  const answers = async (uuid: string) => ({
    raw: await store.querySamples({ gpu: { uuid }, order: 'asc', limit: 100_000 }),
    minutes: await store.querySamples({ gpu: { uuid }, resolution: '1m', order: 'asc', limit: 100_000 }),
    hours: await store.querySamples({ gpu: { uuid }, resolution: '1h', order: 'asc', limit: 100_000 }),
  });

  it('compacts while batches are written, loses and doubles nothing, and gives the space back', async () => {
    // 100 GPUs x 3 metrics: 300 series, two transactions of a pass (200 series each at most).
    const old = fleet(100, T0, 12);
    for (let i = 0; i < old.length; i += 6000) await store.writeBatch(batch(old.slice(i, i + 6000)));
    const before = await answers('GPU-7');
    const bytesBefore = statSync(file).size + statSync(`${file}-wal`).size;

    // The pass yields between its transactions; writes land there: new scrapes, a replay, and late
    // samples (new times in old windows) of a series done already (GPU-0) and one still to do (GPU-90).
    const pass = store.compact({ hotMs: 2 * HOUR, nowMs: T0 + 30 * HOUR });
    const fresh = fleet(100, T0 + 24 * HOUR, 0.25);
    const late = [0, 90].map((g) => ({
      ...key,
      uuid: `GPU-${g}`,
      gpuId: String(g),
      metric: 'M_A',
      timestampMs: T0 + HOUR + 15_000,
      value: -1,
    }));
    const results: { inserted: number; conflicts: number }[] = [];
    const tick = () => new Promise((resolve) => setImmediate(resolve));
    // After one turn the pass has done its first transaction (GPU-0) and not its second (GPU-90).
    await tick();
    results.push(await store.writeBatch(batch(late)));
    for (let i = 0; i < fresh.length; i += 1000) {
      await tick();
      results.push(await store.writeBatch(batch(fresh.slice(i, i + 1000))));
    }
    await tick();
    results.push(await store.writeBatch(batch(old.slice(0, 3000)))); // a replay: nothing new
    const result = await pass;
    expect(result).toMatchObject({ windows: 2, samples: old.length + 1 });
    expect(results.reduce((n, r) => n + r.inserted, 0)).toBe(fresh.length + late.length);
    expect(results.every((r) => r.conflicts === 0)).toBe(true);
    expect(await store.countSamples()).toBe(old.length + fresh.length + late.length);
    // GPU-0's late sample missed the pass: the next one rebuilds that window (720 + 1), nothing else.
    const again = await store.compact({ hotMs: 2 * HOUR, nowMs: T0 + 30 * HOUR });
    expect(again).toMatchObject({ windows: 1, samples: 721 });
    expect((await store.compact({ hotMs: 2 * HOUR, nowMs: T0 + 30 * HOUR })).windows).toBe(0);
    expect(await store.countSamples()).toBe(old.length + fresh.length + late.length);

    // GPU-7 answers as before compaction, plus its fresh samples; the late samples are there once.
    const after = await answers('GPU-7');
    const oldPart = <T extends { timestampMs: number }>(xs: T[]) =>
      xs.filter((x) => x.timestampMs < T0 + 24 * HOUR);
    expect(oldPart(after.raw)).toEqual(before.raw);
    expect(oldPart(after.minutes)).toEqual(before.minutes);
    expect(oldPart(after.hours)).toEqual(before.hours);
    expect(after.raw).toHaveLength(before.raw.length + fresh.length / 100);
    for (const g of [0, 90]) {
      const got = await store.querySamples({
        gpu: { uuid: `GPU-${g}` },
        metrics: ['M_A'],
        startMs: T0 + HOUR,
        endMs: T0 + HOUR + 30_000,
        order: 'asc',
      });
      expect(got.map((x) => x.value)).toEqual([
        old.find((x) => x.uuid === `GPU-${g}` && x.metric === 'M_A' && x.timestampMs === T0 + HOUR)!.value,
        -1,
        old.find((x) => x.uuid === `GPU-${g}` && x.metric === 'M_A' && x.timestampMs === T0 + HOUR + 30_000)!
          .value,
      ]);
    }
    // The rows' pages went back to the file system: the chunks take a fraction of them.
    await store.close();
    expect(statSync(file).size).toBeLessThan(bytesBefore / 2);
    store = createSqliteSampleStore({ file });
    await store.migrate();
    // After reopening, replays of compacted samples store nothing and a changed value is refused.
    expect(await store.writeBatch(batch(old.slice(5000, 9000)))).toMatchObject({ inserted: 0, conflicts: 0 });
    const changed = { ...old[6000]!, value: old[6000]!.value + 1 };
    expect(await store.writeBatch(batch([changed, changed]))).toMatchObject({ inserted: 0, conflicts: 2 });
    expect(await answers('GPU-7')).toEqual(after);
  });

  it('keeps the hours of windows still held as chunks when rollups expire before raw samples', async () => {
    await store.writeBatch(batch(fleet(1, T0, 72)));
    await store.compact({ hotMs: 0, nowMs: T0 + 72 * HOUR });
    const before = await answers('GPU-0');
    expect(before.hours).toHaveLength(72 * 3);
    // Raw samples kept forever, rollups a day: the chunks answer raw and 1m, the folded hours 1h.
    await store.applyRetention({ rawMs: 0, rollupMs: DAY, nowMs: T0 + 72 * HOUR });
    expect(await answers('GPU-0')).toEqual(before);
  });

  it('an operation keeps the statements it prepared when the cache is full (it starts over between operations)', async () => {
    // A cache of 3 statements: every operation prepares more than that.
    const small = createSqliteSampleStore({ memory: true, maxStatements: 3 });
    try {
      await small.migrate();
      const data = fleet(2, T0, 12);
      await small.writeBatch(batch(data));
      await small.compact({ hotMs: 0, nowMs: T0 + 12 * HOUR });
      for (let k = 0; k < 5; k++) {
        // A replay of a compacted sample (its chunk lookup prepares statements mid-batch) and a new one.
        const fresh = { ...data[0]!, timestampMs: T0 + 13 * HOUR + k * 1000 };
        expect(await small.writeBatch(batch([data[10 + k]!, fresh]))).toMatchObject({
          inserted: 1,
          conflicts: 0,
        });
        expect(
          await small.selectSeries({ filter: { uuid: 'GPU-1' }, startMs: T0, endMs: T0 + HOUR }),
        ).toHaveLength(3);
      }
      expect(await small.countSamples()).toBe(data.length + 5);
    } finally {
      await small.close();
    }
  });

  it('retention of compacted windows folds their minutes first: 1m and 1h answers unchanged', async () => {
    const data = fleet(2, T0, 48);
    await store.writeBatch(batch(data));
    await store.compact({ hotMs: 0, nowMs: T0 + 48 * HOUR });
    const before = await answers('GPU-1');
    expect(before.raw).toHaveLength(48 * 120 * 3);
    const result = await store.applyRetention({ rawMs: 24 * HOUR, rollupMs: 0, nowMs: T0 + 48 * HOUR });
    expect(result.deletedRows).toBe(data.length / 2);
    const after = await answers('GPU-1');
    expect(after.raw).toEqual(before.raw.filter((s) => s.timestampMs >= T0 + 24 * HOUR));
    expect(after.minutes).toEqual(before.minutes);
    expect(after.hours).toEqual(before.hours);
  });
});

describe('SQLite sample store: filters and order', () => {
  let store: SqliteSampleStore;
  beforeEach(async () => {
    store = createSqliteSampleStore({ memory: true });
    await store.migrate();
  });
  afterEach(() => store.close());

  it('refuses a NUL character in filters and batch ids (the binding would cut the text there)', async () => {
    await store.writeBatch(batch(samples(T0, 1)));
    const refusals = [
      store.querySamples({ gpu: { uuid: `${key.uuid}\0x` } }),
      store.listGpus('c1\0x'),
      store.latestSamples('c1\0x'),
      store.selectSeries({ filter: { hostname: 'h1\0x' }, startMs: 0, endMs: T0 * 2 }),
      store.selectSeries({ filter: { metrics: [`${key.metric}\0x`] }, startMs: 0, endMs: T0 * 2 }),
      store.listDeadLetters({ source: 'sqlite-test\0x' }),
      store.writeBatch({ id: 'a\0b', source: 's', samples: [], deadLetters: [] }),
    ];
    for (const refused of refusals) await expect(refused).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    expect(await store.listGpus('c1')).toHaveLength(1);
  });

  it('answers a list of 40,000 metric names (bound as one value, not 40,000 parameters)', async () => {
    await store.writeBatch(batch(samples(T0, 1)));
    const metrics = [...Array.from({ length: 40_000 }, (_, i) => `M_${i}`), key.metric];
    const got = await store.selectSeries({ filter: { metrics }, startMs: T0, endMs: T0 + HOUR });
    expect(got.map((s) => s.series.metric)).toEqual([key.metric]);
    expect(got[0]!.timestamps).toHaveLength(80);
  });

  it('orders ties on time by metric in code point order, and reads MIG instances apart', async () => {
    const metrics = ['M_\u{1F600}', 'M_\uFF5E', 'M_a'];
    const own = metrics.map((metric, i) => ({ ...key, metric, timestampMs: T0, value: i }));
    const mig = { ...key, labels: { GPU_I_ID: '' }, metric: 'M_mig', timestampMs: T0, value: 9 };
    const mig1 = { ...key, labels: { GPU_I_ID: '1' }, metric: 'M_mig', timestampMs: T0, value: 10 };
    await store.writeBatch(batch([...own, mig, mig1]));
    const asc = await store.querySamples({ gpu: { uuid: key.uuid }, order: 'asc' });
    // UTF-8 byte order: U+FF5E sorts before U+1F600 (UTF-16 units would put the emoji first).
    expect(asc.map((s) => s.metric)).toEqual(['M_a', 'M_mig', 'M_\uFF5E', 'M_\u{1F600}']);
    const latest = (await store.latestSamples()).map((s) => s.metric);
    expect(latest.filter((m) => m !== 'M_mig')).toEqual(['M_a', 'M_\uFF5E', 'M_\u{1F600}']);
    // An explicit '' instance is the series labelled so; none asked: the GPU's own series.
    expect(
      (await store.querySamples({ gpu: { uuid: key.uuid }, migInstance: '' })).map((s) => s.value),
    ).toEqual([9]);
    expect(
      (await store.querySamples({ gpu: { uuid: key.uuid }, migInstance: '1' })).map((s) => s.value),
    ).toEqual([10]);
  });
});

describe('SQLite sample store on disk', () => {
  it('keeps samples, series, ledger and dead letters across close and reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nexus-sqlite-'));
    try {
      const file = join(dir, 'nested', 'samples.db');
      const first = createSqliteSampleStore({ file });
      await first.migrate();
      const b: Batch = {
        id: 'reopen-1',
        source: 'f.csv',
        samples: samples(T0, 1),
        deadLetters: [{ source: 'f.csv', line: 7, raw: 'x', reason: 'column_count', detail: 'd' }],
      };
      expect(await first.writeBatch(b)).toMatchObject({ inserted: 80, deadLetters: 1 });
      await first.close();

      const second = createSqliteSampleStore({ file });
      try {
        await second.migrate();
        expect(await second.countSamples()).toBe(80);
        expect(await second.writeBatch(b)).toMatchObject({ duplicate: true, inserted: 0 });
        expect(await second.listDeadLetters()).toMatchObject([{ line: 7, raw: 'x' }]);
        // A fresh series cache resolves the stored series instead of creating another one.
        const more = { ...b, id: 'reopen-2', samples: [{ ...key, timestampMs: T0 + 2 * HOUR, value: 1 }] };
        expect(await second.writeBatch(more)).toMatchObject({ inserted: 1 });
        const selected = await second.selectSeries({ filter: {}, startMs: T0, endMs: T0 + 3 * HOUR });
        expect(selected).toHaveLength(1);
        expect(selected[0]!.timestamps).toHaveLength(81);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('after a process dies holding the database (SIGKILL), its committed batches are there on reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nexus-sqlite-'));
    try {
      const file = join(dir, 'samples.db');
      // A child process writes two batches and kills itself without closing: the write-ahead log
      // and the lock directory stay behind.
      const script = join(dir, 'crash.mts');
      await writeFile(
        script,
        `import { createSqliteSampleStore } from ${JSON.stringify(new URL('../../src/adapters/sqlite/sample-store.ts', import.meta.url).pathname)};
const store = createSqliteSampleStore({ file: ${JSON.stringify(file)} });
await store.migrate();
const key = ${JSON.stringify(key)};
for (const b of [0, 1]) {
  const samples = Array.from({ length: 500 }, (_, i) => ({ ...key, timestampMs: ${T0} + (b * 500 + i) * 1000, value: i }));
  await store.writeBatch({ id: 'crash-' + b, source: 'crash', samples, deadLetters: [] });
}
process.kill(process.pid, 'SIGKILL');
`,
      );
      const child = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8' });
      expect(child.signal, child.stderr).toBe('SIGKILL');
      expect(existsSync(`${file}-wal`)).toBe(true);
      expect(existsSync(`${file}.lock`)).toBe(true);

      // Without the DATA_DIR lock's guarantee the leftover lock refuses the open, naming it.
      expect(() => createSqliteSampleStore({ file })).toThrow(
        expect.objectContaining({
          code: 'BACKEND_UNAVAILABLE',
          message: expect.stringContaining(`${file}.lock`),
        }),
      );
      const store = createSqliteSampleStore({ file, ownsFile: true });
      try {
        await store.migrate();
        expect(await store.countSamples()).toBe(1000);
        expect(
          await store.writeBatch({ id: 'crash-1', source: 'crash', samples: [], deadLetters: [] }),
        ).toMatchObject({
          duplicate: true,
        });
      } finally {
        await store.close();
      }
      // A clean close leaves the database file alone: the log checkpointed, the lock released.
      expect(existsSync(`${file}-wal`)).toBe(false);
      expect(existsSync(`${file}.lock`)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a file that is no SQLite database, naming it, and leaves it as it was', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nexus-sqlite-'));
    try {
      const file = join(dir, 'samples.db');
      const text = 'not a database, just some text that is long enough to have a header'.repeat(20);
      await writeFile(file, text);
      expect(() => createSqliteSampleStore({ file })).toThrow(
        expect.objectContaining({ code: 'BACKEND_UNAVAILABLE', message: expect.stringContaining(file) }),
      );
      expect(await readFile(file, 'utf8')).toBe(text);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('SQLite sample store: summaries and spacing answer as PGlite does', () => {
  it('summarizeSeries (raw, 1m, 1h, more windows) and sampleSpacing, before and after compaction', async () => {
    const { createPgliteSampleStore } = await import('../../src/adapters/pglite/sample-store.js');
    const lite = createSqliteSampleStore({ memory: true });
    const pg = await createPgliteSampleStore({ memory: true });
    try {
      await lite.migrate();
      await pg.migrate();
      const data: Sample[] = [];
      for (let i = 0; i < 3 * 288; i++) {
        for (let g = 0; g < 4; g++) {
          for (const metric of ['M_A', 'M_B']) {
            // GPU 3 has two MIG instances; GPU 2 skips some scrapes; times jitter by a few ms.
            const labels: Record<string, string> = g === 3 ? { GPU_I_ID: String(i % 2) } : {};
            if (g === 2 && i % 7 === 3) continue;
            data.push({
              ...key,
              uuid: `GPU-${g}`,
              gpuId: String(g),
              metric,
              labels,
              timestampMs: T0 + i * 300_000 + ((i * 31 + g) % 9),
              value: Math.round(((i * 13 + g * 7) % 97) * 10.1) / 10,
            });
          }
        }
      }
      // One more GPU with gaps of 10, 20, 30 and 40 ms: the median of an even count is 25.
      for (const [i, dt] of [0, 10, 30, 60, 100].entries()) {
        data.push({
          ...key,
          uuid: 'GPU-9',
          gpuId: '9',
          metric: 'M_A',
          timestampMs: T0 + 2 * HOUR + dt,
          value: i,
        });
      }
      for (const store of [lite, pg]) await store.writeBatch(batch(data));
      const filter = { clusterId: 'c1' };
      const summary = async (store: SampleStore) =>
        (
          await store.summarizeSeries!({
            filter,
            startMs: T0 + 7 * HOUR + 5 * 60_000, // buckets starting in the window: from 08:00
            endMs: T0 + 30 * HOUR,
            resolution: '1h',
            more: [
              { startMs: T0 + 30 * HOUR, endMs: T0 + 31 * HOUR + 17 * 60_000, resolution: '1m' },
              { startMs: T0 + 31 * HOUR + 17 * 60_000 + 1234, endMs: T0 + 40 * HOUR + 5, resolution: 'raw' },
            ],
          })
        )
          .map((r) => ({ ...r, series: keyOfSeries(r.series), sum: Number(r.sum.toPrecision(12)) }))
          .sort((a, b) => (JSON.stringify(a.series) < JSON.stringify(b.series) ? -1 : 1));
      const spacing = (store: SampleStore) =>
        store.sampleSpacing!({
          filter,
          startMs: T0 + HOUR,
          endMs: T0 + 50 * HOUR,
          instanceLabel: 'GPU_I_ID',
          exclude: [{ clusterId: 'c1', hostname: 'h1', gpuId: '1', instance: '' }],
        });
      const want = { summary: await summary(pg), spacing: await spacing(pg) };
      expect(want.summary).toHaveLength(10); // GPU 3's two instances are series of their own; GPU 9 is before the windows
      expect(want.spacing.find((g) => g.gpuId === '9')).toMatchObject({ timestamps: 5, medianMs: 25 });
      expect({ summary: await summary(lite), spacing: await spacing(lite) }).toEqual(want);
      await lite.compact({ hotMs: 0, nowMs: T0 + 3 * DAY });
      expect({ summary: await summary(lite), spacing: await spacing(lite) }).toEqual(want);

      // Raw rows and chunks expired, their buckets folded into `rollups`: the series hold nothing
      // else in the windows, and the bucket windows still give the same totals (an idle-series
      // probe that missed folded buckets would drop them). One later sample of another cluster
      // moves retention's bound past every window.
      const bucketWindows = async (store: SampleStore) =>
        (
          await store.summarizeSeries!({
            filter,
            startMs: T0 + 7 * HOUR + 5 * 60_000,
            endMs: T0 + 30 * HOUR,
            resolution: '1h',
            more: [{ startMs: T0 + 30 * HOUR, endMs: T0 + 31 * HOUR + 17 * 60_000, resolution: '1m' }],
          })
        )
          .map((r) => ({ series: keyOfSeries(r.series), count: r.count }))
          .sort((a, b) => (JSON.stringify(a.series) < JSON.stringify(b.series) ? -1 : 1));
      const beforeExpiry = await bucketWindows(lite);
      expect(beforeExpiry).toHaveLength(10); // as above: GPU 9 has nothing in these windows
      expect(beforeExpiry).toEqual(await bucketWindows(pg));
      await lite.writeBatch(batch([{ ...key, clusterId: 'c2', timestampMs: T0 + 10 * DAY, value: 1 }]));
      await lite.applyRetention({ rawMs: DAY, rollupMs: 0, nowMs: T0 + 10 * DAY });
      expect(await lite.countSamples()).toBe(1);
      expect(await bucketWindows(lite)).toEqual(beforeExpiry);
      expect(await spacing(lite)).toEqual([]);
    } finally {
      await lite.close();
      await pg.close();
    }
  });
});

function keyOfSeries(s: StoredSeries): Omit<StoredSeries, 'id'> {
  const { id: _id, ...rest } = s;
  return rest;
}
