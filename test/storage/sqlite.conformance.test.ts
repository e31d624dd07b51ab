/**
 * SQLite sample store (node-sqlite3-wasm): the shared conformance suite in memory and on disk.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteSampleStore } from '../../src/adapters/sqlite/sample-store.js';
import { type SampleStoreCapabilities, sampleStoreConformance } from '../conformance/sample-store.js';

/** One process owns the file; rollups are computed at read time; retention deletes rows by hour. */
const capabilities: SampleStoreCapabilities = {
  retention: true,
  compaction: true,
  rollups: true,
  partitions: 'SQLite has no table partitions; retention deletes rows older than whole-hour bounds',
  timescaledb: 'SQLite has no TimescaleDB',
  concurrentWriters: 'one process owns the database file (the runtime locks DATA_DIR)',
  fullTimeRange: true,
  indexRowLimit: 'SQLite has no index row size limit: a long field is stored',
};

sampleStoreConformance(
  'SQLite in memory',
  async () => {
    const store = createSqliteSampleStore({ memory: true });
    return { store, teardown: () => store.close() };
  },
  capabilities,
);

sampleStoreConformance(
  'SQLite on disk',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nexus-sqlite-'));
    const store = createSqliteSampleStore({ file: join(dir, 'samples.db') });
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
