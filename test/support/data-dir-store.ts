/**
 * The sample store a `start` process kept in a data directory, opened the way `start` would choose
 * it (EMBEDDED_STORE=auto unless `kind` is given), so end-to-end tests count what a run stored on
 * whichever embedded store is the default.
 */
import { join } from 'node:path';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { createSqliteSampleStore } from '../../src/adapters/sqlite/sample-store.js';
import { loadConfig } from '../../src/config/config.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import { embeddedStoreKind } from '../../src/runtime/topology.js';

/** Open the embedded store under `dataDir`; the caller closes it. No process may hold the directory. */
export async function openDataDirStore(dataDir: string, kind?: 'pglite' | 'sqlite'): Promise<SampleStore> {
  const chosen = kind ?? embeddedStoreKind(loadConfig({ DATA_DIR: dataDir }));
  return chosen === 'pglite'
    ? createPgliteSampleStore({ dataDir: join(dataDir, 'pglite') })
    : createSqliteSampleStore({ file: join(dataDir, 'sqlite', 'samples.db') });
}

/** Samples stored and dead letters (`reason: detail`, at most 1,000) of the store under `dataDir`. */
export async function storedCounts(dataDir: string): Promise<{ samples: number; deadLetters: string[] }> {
  const store = await openDataDirStore(dataDir);
  try {
    const samples = await store.countSamples();
    const deadLetters = (await store.listDeadLetters({ limit: 1000 })).map((d) => `${d.reason}: ${d.detail}`);
    return { samples, deadLetters };
  } finally {
    await store.close();
  }
}
