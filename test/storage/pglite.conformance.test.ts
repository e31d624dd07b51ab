/**
 * PGlite sample store: the shared conformance suite in memory and on disk, plus what only an
 * embedded on-disk store has to show (data survives close and reopen of the same directory, and a
 * data directory of schema v1 upgrades to day partitions and rollups in place).
 *
 * A store opening a new directory runs initdb in a child process (3-9 s); opening a copy of an
 * initdb'd directory takes under a second. So this file has the store initdb one template directory
 * (then closes it, unmigrated), and the on-disk stores that do not test directory creation (the
 * conformance suite's, the WAL, reopen and v1 upgrade cases) open a fresh copy of it. The cases
 * about creating or refusing a directory still run initdb of their own.
 */
import { statSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, describe, expect, it } from 'vitest';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import type { Sample } from '../../src/domain/types.js';
import { MIGRATIONS } from '../../src/storage/migrations.js';
import { type SampleStoreCapabilities, sampleStoreConformance } from '../conformance/sample-store.js';

/** PGlite runs PostgreSQL in process: native day partitions, rollups and retention, one writer. */
const capabilities: SampleStoreCapabilities = {
  retention: true,
  compaction: true,
  rollups: true,
  partitions: true,
  timescaledb: 'PGlite has no TimescaleDB extension; it uses native day partitions',
  concurrentWriters: 'one PGlite instance owns its database; no second store (process) can open it',
  fullTimeRange: true,
  indexRowLimit: true,
};

let template: Promise<string> | undefined;
/**
 * A new data directory as initdb leaves it (no schema): a copy of one template directory, which
 * the first call creates with a store (initdb) and closes.
 */
async function initdbCopy(prefix = 'nexus-pglite-'): Promise<string> {
  template ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nexus-pglite-template-'));
    await (await createPgliteSampleStore({ dataDir: dir })).close();
    return dir;
  })();
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await cp(await template, dir, { recursive: true });
  return dir;
}
afterAll(async () => {
  if (template) await rm(await template, { recursive: true, force: true });
});

sampleStoreConformance(
  'PGlite in memory',
  async () => {
    const store = await createPgliteSampleStore({ memory: true });
    return { store, teardown: () => store.close() };
  },
  capabilities,
);

sampleStoreConformance(
  'PGlite on disk',
  async () => {
    const dir = await initdbCopy();
    const store = await createPgliteSampleStore({ dataDir: dir });
    return {
      store,
      teardown: async () => {
        await store.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  capabilities,
);

describe('PGlite sample store on disk', () => {
  it('bounds its write-ahead log: 32 MB max_wal_size, a checkpoint on close leaves one segment on disk', async () => {
    const dir = await initdbCopy('nexus-pglite-wal-');
    try {
      const store = await createPgliteSampleStore({ dataDir: dir });
      await store.migrate();
      const settings = await store.withSql('test', async (db) => {
        const { rows } = await db.query<{ max: string; min: string; recycle: string }>(
          `SELECT current_setting('max_wal_size') AS max, current_setting('min_wal_size') AS min,
                  current_setting('wal_recycle') AS recycle`,
        );
        return rows[0];
      });
      expect(settings).toEqual({ max: '32MB', min: '32MB', recycle: 'off' });
      // About 100 MB of WAL: more than one bound's worth, so the segments must be recycled on close.
      await store.withSql('test', (db) =>
        db.exec(
          "CREATE TABLE wal_filler AS SELECT g, repeat('x', 400) AS pad FROM generate_series(1, 200000) g",
        ),
      );
      await store.close();
      const wal = (await readdir(join(dir, 'pg_wal'), { withFileTypes: true }))
        .filter((e) => e.isFile())
        .map((e) => statSync(join(dir, 'pg_wal', e.name)).size)
        .reduce((a, b) => a + b, 0);
      // Recycled segments are deleted, not kept for reuse: one 16 MB segment is left.
      expect(wal).toBe(16 * 2 ** 20);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps samples, series, ledger and dead letters across close and reopen', async () => {
    const dir = await initdbCopy();
    try {
      const key = {
        clusterId: 'c1',
        hostname: 'h1',
        gpuId: '3',
        uuid: 'GPU-reopen',
        device: 'nvidia3',
        modelName: 'NVIDIA H100 80GB HBM3',
        metric: 'DCGM_FI_DEV_GPU_TEMP',
        container: 'c',
        pod: 'p',
        namespace: 'n',
        labels: { a: 'b' },
      };
      const samples: Sample[] = [0, 1, 2].map((i) => ({
        ...key,
        timestampMs: 1_752_871_354_000 + i,
        value: 40 + i,
      }));
      const dl = { source: 'f.csv', line: 7, raw: 'x', reason: 'column_count', detail: 'd' };
      const batch = { id: 'reopen-1', source: 'f.csv', samples, deadLetters: [dl] };

      const first = await createPgliteSampleStore({ dataDir: dir });
      await first.migrate();
      expect(await first.writeBatch(batch)).toMatchObject({
        inserted: 3,
        deadLetters: 1,
        unstorable: 0,
        conflicts: 0,
      });
      await first.close();

      const second = await createPgliteSampleStore({ dataDir: dir });
      try {
        await second.migrate();
        expect(await second.countSamples()).toBe(3);
        expect(await second.querySamples({ gpu: { uuid: 'GPU-reopen' }, order: 'asc' })).toEqual(samples);
        expect(await second.writeBatch(batch)).toEqual({
          duplicate: true,
          inserted: 0,
          deadLetters: 0,
          unstorable: 0,
          conflicts: 0,
        });
        expect(await second.listDeadLetters()).toMatchObject([dl]);
        // A fresh series cache resolves the stored series instead of creating another one.
        const more = {
          ...batch,
          id: 'reopen-2',
          samples: [{ ...key, timestampMs: 1_752_871_355_000, value: 1 }],
        };
        expect(await second.writeBatch(more)).toMatchObject({ inserted: 1 });
        expect(await second.listGpus()).toHaveLength(1);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('upgrades a v1 data directory: samples move into day partitions, rollups are backfilled', async () => {
    const dir = await initdbCopy();
    try {
      const v1 = await PGlite.create(dir);
      await v1.exec(MIGRATIONS[0]!.sql);
      await v1.exec(`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO schema_migrations (version, name) VALUES (1, 'v1');
        INSERT INTO series (series_key, cluster_id, hostname, gpu_id, uuid, device, model_name, metric)
          VALUES ('k', 'c', 'h', '0', 'GPU-v1', 'nvidia0', 'H100', 'DCGM_FI_DEV_GPU_TEMP');
        INSERT INTO samples (series_id, ts, value)
          SELECT 1, timestamptz '2025-07-18 23:58:00+00' + i * interval '1 minute', i FROM generate_series(0, 3) AS i;`);
      await v1.close();

      const store = await createPgliteSampleStore({ dataDir: dir });
      try {
        await store.migrate();
        expect(await store.partitioning()).toBe('native');
        expect(await store.countSamples()).toBe(4);
        const hours = await store.querySamples({ gpu: { uuid: 'GPU-v1' }, resolution: '1h', order: 'asc' });
        expect(hours.map((h) => [new Date(h.timestampMs).toISOString(), h.aggregate])).toEqual([
          ['2025-07-18T23:00:00.000Z', { min: 0, max: 1, avg: 0.5, count: 2, last: 1 }],
          ['2025-07-19T00:00:00.000Z', { min: 2, max: 3, avg: 2.5, count: 2, last: 3 }],
        ]);
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('creates a missing data directory', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'nexus-pglite-'));
    try {
      const store = await createPgliteSampleStore({ dataDir: join(parent, 'a', 'b') });
      await store.migrate();
      await store.ping();
      await store.close();
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });

  it('refuses a non-empty directory that holds no database, and leaves nothing of its own there', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'nexus-pglite-'));
    try {
      const dataDir = join(parent, 'pglite');
      await mkdir(dataDir);
      await writeFile(join(dataDir, 'notes.txt'), 'not a database');
      const opened = createPgliteSampleStore({ dataDir });
      await expect(opened).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
      await expect(opened).rejects.toThrow(/initdb failed/);
      // The directory is as it was, and the staging directory initdb ran in is gone.
      expect(await readdir(dataDir)).toEqual(['notes.txt']);
      expect(await readdir(parent)).toEqual(['pglite']);
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });
});
