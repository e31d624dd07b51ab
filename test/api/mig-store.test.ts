/**
 * The sample store's MIG filter (SampleQuery.migInstance) on PGlite and on a real PostgreSQL: a
 * GPU's query returns only its own series (never those labelled GPU_I_ID, an empty GPU_I_ID counts
 * as none), and a query with `migInstance` only that instance's, by index or UUID, raw or rollups.
 * Also traditional mode's hierarchy derived from the store, which shows the instances under the GPU.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import { loadConfig } from '../../src/config/config.js';
import type { Sample } from '../../src/domain/types.js';
import { HierarchyReader } from '../../src/hierarchy/reader.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import { startStoreHierarchyMirror } from '../../src/runtime/store-hierarchy.js';
import { createLogger } from '../../src/util/logger.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import { batch, sample } from '../support/samples.js';

const T0 = Date.parse('2026-02-01T10:00:00Z');

/** One sample of GPU 0 of host h (of MIG instance `instance` when given). */
function s(value: number, t: number, instance?: string): Sample {
  const labels: Record<string, string> = { gpu: '0', Hostname: 'h' };
  if (instance !== undefined) {
    labels.GPU_I_ID = instance;
    labels.GPU_I_PROFILE = instance === '' ? '' : `${instance}g.10gb`;
  }
  return sample({
    hostname: 'h',
    gpuId: '0',
    uuid: 'GPU-mig',
    metric: 'DCGM_FI_DEV_FB_USED',
    value,
    timestampMs: t,
    labels,
  });
}

let postgres: PostgresHarness;

beforeAll(async () => {
  postgres = await startPostgres();
}, 120_000);

afterAll(async () => {
  await postgres?.stop();
});

describe.each([
  { name: 'PGlite', open: () => createPgliteSampleStore({ memory: true }) },
  {
    name: 'PostgreSQL',
    open: async () =>
      createPostgresSampleStore({
        connectionString: await postgres.createDatabase(
          `nexus_${randomUUID().replaceAll('-', '').slice(0, 16)}`,
        ),
        poolSize: 2,
      }),
  },
])('MIG filter on $name', ({ open }) => {
  let store: SampleStore;

  beforeAll(async () => {
    store = await open();
    await store.migrate();
    await store.writeBatch(
      batch([
        s(100, T0),
        s(101, T0 + 1000),
        s(7, T0 + 500, ''),
        s(1, T0, '1'),
        s(2, T0 + 1000, '1'),
        s(20, T0, '2'),
      ]),
    );
  }, 60_000);

  afterAll(async () => {
    await store?.close();
  });

  const values = async (query: Parameters<SampleStore['querySamples']>[0]): Promise<number[]> =>
    (await store.querySamples({ order: 'asc', ...query })).map((x) => x.value);
  const byIndex = { clusterId: 'c1', hostname: 'h', gpuId: '0' };

  it('reads only the GPU own series without migInstance, by index or UUID', async () => {
    expect(await values({ gpu: byIndex })).toEqual([100, 7, 101]);
    expect(await values({ gpu: { uuid: 'GPU-mig' } })).toEqual([100, 7, 101]);
  });

  it('reads only one instance series with migInstance', async () => {
    expect(await values({ gpu: byIndex, migInstance: '1' })).toEqual([1, 2]);
    expect(await values({ gpu: { uuid: 'GPU-mig' }, migInstance: '2' })).toEqual([20]);
    expect(await values({ gpu: byIndex, migInstance: '3' })).toEqual([]);
    const rows = await store.querySamples({ gpu: byIndex, migInstance: '1', limit: 1 });
    expect(rows.map((r) => [r.labels.GPU_I_ID, r.labels.GPU_I_PROFILE, r.value])).toEqual([
      ['1', '1g.10gb', 2],
    ]);
  });

  it('keeps instances apart at rollup resolution too', async () => {
    const minute = async (migInstance?: string) =>
      (
        await store.querySamples({
          gpu: byIndex,
          resolution: '1m',
          startMs: T0 - 60_000,
          endMs: T0 + 60_000,
          ...(migInstance !== undefined ? { migInstance } : {}),
        })
      ).map((r) => [r.aggregate?.count, r.aggregate?.max]);
    // The GPU's own series: the unlabelled one (2 samples) and the empty-GPU_I_ID one (1 sample).
    expect((await minute()).sort()).toEqual([
      [1, 7],
      [2, 101],
    ]);
    expect(await minute('1')).toEqual([[2, 2]]);
  });
});

describe("traditional mode's store-derived hierarchy", () => {
  it('shows MIG instances under their GPU with their own latest values', async () => {
    const store = await createPgliteSampleStore({ memory: true });
    await store.migrate();
    await store.writeBatch(
      batch([s(100, T0), s(101, T0 + 1000), s(1, T0, '1'), s(2, T0 + 1000, '1'), s(20, T0, '2')]),
    );
    const config = loadConfig({}, { MEMORY: true, CLUSTER_ID: 'c1', LOG_LEVEL: 'silent' });
    const mirror = await startStoreHierarchyMirror({ store, config, logger: createLogger('silent') });
    try {
      const reader = new HierarchyReader(mirror.coordination, 3_600_000, () => T0 + 2000);
      const gpu = (await reader.getGpu('c1', 'h', '0'))!;
      expect(gpu.metrics.DCGM_FI_DEV_FB_USED?.value).toBe(101);
      expect(
        gpu.migInstances.map((m) => [m.instance, m.profile, m.metrics.DCGM_FI_DEV_FB_USED?.value]),
      ).toEqual([
        ['1', '1g.10gb', 2],
        ['2', '2g.10gb', 20],
      ]);
      expect((await reader.getHost('c1', 'h'))!.gpuCount).toBe(1);
    } finally {
      await mirror.close();
      await store.close();
    }
  });
});
