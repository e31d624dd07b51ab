/**
 * Scheduling of retention: the traditional-mode timer (runs at once, then on an interval; a failing
 * pass is logged, never thrown) and the maintenance leader's fenced duty (runs only while leader,
 * on the embedded coordination store), with a PGlite store dropping real partitions.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { Maintenance } from '../../src/collector/maintenance.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import {
  type HousekeepingResult,
  housekeepingDuty,
  retentionDuty,
  startRetentionLoop,
} from '../../src/storage/retention.js';

const DAY = 86_400_000;
const silent = pino({ level: 'silent' });
const cleanup: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('retention loop (no leader)', () => {
  it('runs at once and on its interval, survives failing passes, and stop() waits', async () => {
    let calls = 0;
    const duty = async (): Promise<HousekeepingResult> => {
      calls += 1;
      if (calls === 2) throw new Error('database down');
      await sleep(20);
      return { retention: { dropped: [], deletedRows: 0 } };
    };
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const loop = startRetentionLoop(duty, { logger, intervalMs: 30 });
    // Wait for the passes rather than a fixed time: a loaded machine may stretch a 30 ms interval.
    await vi.waitFor(() => expect(calls).toBeGreaterThanOrEqual(3), { timeout: 5_000, interval: 10 });
    await loop.stop();
    const after = calls;
    expect(after).toBeGreaterThanOrEqual(3);
    expect(warnings.some((w) => w.includes('retention pass failed'))).toBe(true);
    await sleep(80);
    expect(calls).toBe(after);
  });

  it('has no duty for a store without retention', () => {
    const store = { applyRetention: undefined } as unknown as SampleStore;
    expect(retentionDuty(store, { rawMs: 1, rollupMs: 1 })).toBeUndefined();
    expect(
      housekeepingDuty(store, { retention: { rawMs: 1, rollupMs: 1 }, compactAfterMs: 1 }),
    ).toBeUndefined();
  });

  it('housekeeping compacts what is past the hot window (logged), and COMPACT_AFTER=0 turns it off', async () => {
    const store = await createPgliteSampleStore({ memory: true });
    cleanup.push(() => store.close());
    await store.migrate();
    const key = {
      clusterId: 'c',
      hostname: 'h',
      gpuId: '0',
      uuid: 'GPU-k',
      device: 'nvidia0',
      modelName: 'H100',
      metric: 'DCGM_FI_DEV_GPU_TEMP',
      container: '',
      pod: '',
      namespace: '',
      labels: {},
    };
    const t0 = Date.parse('2024-05-01T00:00:00.000Z');
    const samples = Array.from({ length: 2880 }, (_, i) => ({
      ...key,
      timestampMs: t0 + i * 30_000,
      value: 40 + (i % 9),
    }));
    await store.writeBatch({ id: 'k-1', source: 'k', deadLetters: [], samples });
    expect(housekeepingDuty(store, { compactAfterMs: 0 })).toBeUndefined();
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const duty = housekeepingDuty(store, { compactAfterMs: 2 * 3_600_000, logger })!;
    const loop = startRetentionLoop(duty, { logger, intervalMs: 60_000 });
    await vi.waitFor(() => expect(lines.some((l) => l.includes('compacted raw samples'))).toBe(true), {
      timeout: 10_000,
    });
    await loop.stop();
    const line = JSON.parse(lines.find((l) => l.includes('compacted raw samples'))!) as Record<
      string,
      unknown
    >;
    expect(line).toMatchObject({
      samples: 2880,
      droppedPartitions: ['samples_p20240501', 'samples_1m_p20240501'],
    });
    // The day's 4 windows, and today's (empty) windows already past the hot window: retention
    // created today's partition, so from 08:00 UTC on there is at least one.
    expect(line.windows).toBeGreaterThanOrEqual(4);
    expect(line.windows).toBeLessThanOrEqual(7);
    expect(await store.countSamples()).toBe(2880);
    const back = await store.querySamples({ gpu: { uuid: 'GPU-k' }, order: 'asc', limit: 5000 });
    expect(back.map((s) => [s.timestampMs, s.value])).toEqual(samples.map((s) => [s.timestampMs, s.value]));
    // The rows live as chunks now: nothing raw is left of that day.
    const raw = await store.withSql(
      'count',
      async (db) => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM samples')).rows[0]!.n,
    );
    expect(raw).toBe(0);
  });
});

describe('maintenance leader retention duty', () => {
  it('applies retention after its fenced marker write, only while leader', async () => {
    const coordination = createEmbeddedCoordination();
    const store = await createPgliteSampleStore({ memory: true });
    cleanup.push(
      () => coordination.close(),
      () => store.close(),
    );
    await store.migrate();
    const key = {
      clusterId: 'c',
      hostname: 'h',
      gpuId: '0',
      uuid: 'GPU-m',
      device: 'nvidia0',
      modelName: 'H100',
      metric: 'DCGM_FI_DEV_GPU_UTIL',
      container: '',
      pod: '',
      namespace: '',
      labels: {},
    };
    // 1990-01-01..10: the newest data day is the anchor (now is long after), 3 days kept.
    const day0 = Date.parse('1990-01-01T12:00:00.000Z');
    await store.writeBatch({
      id: 'm-1',
      source: 'm',
      deadLetters: [],
      samples: Array.from({ length: 10 }, (_, d) => ({ ...key, timestampMs: day0 + d * DAY, value: d })),
    });
    const maintenance = new Maintenance({
      coordination,
      clusterId: 'c',
      candidateId: 'collector-1',
      logger: silent,
      intervalMs: 60_000,
      retentionIntervalMs: 0,
      ttlSeconds: 2,
      retention: retentionDuty(store, { rawMs: 3 * DAY, rollupMs: 5 * DAY }),
    });
    cleanup.push(() => maintenance.stop());

    // Not leader yet: the fenced write fails and nothing is dropped.
    expect((await maintenance.runOnce()).kind).toBe('rejected');
    expect(await store.countSamples()).toBe(10);

    maintenance.start();
    for (let i = 0; i < 100 && !maintenance.election.isLeader; i++) await sleep(20);
    expect(maintenance.election.isLeader).toBe(true);
    expect(await maintenance.runOnce()).toEqual({ kind: 'retention' }); // nothing to compact yet
    expect(await store.countSamples()).toBe(3);
    // The partitions are gone, not just emptied: a second pass finds nothing to drop.
    expect((await store.applyRetention!({ rawMs: 3 * DAY, rollupMs: 5 * DAY })).dropped).toEqual([]);
  });
});
