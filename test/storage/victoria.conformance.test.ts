/**
 * Remote-write sample store on a real VictoriaMetrics (test/harness/victoria-metrics.ts) with its
 * ledger and dead letters in a real PostgreSQL (test/harness/postgres.ts): the shared conformance
 * suite, declaring what a remote TSDB cannot do, with the reasons.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import { createVictoriaSampleStore } from '../../src/adapters/victoria/sample-store.js';
import { sampleStoreConformance } from '../conformance/sample-store.js';
import { type PostgresHarness, startPostgres } from '../harness/postgres.js';
import { type VictoriaHandle, startVictoriaMetrics } from '../harness/victoria-metrics.js';

let pg: PostgresHarness;
let vm: VictoriaHandle;

beforeAll(async () => {
  [pg, vm] = await Promise.all([startPostgres(), startVictoriaMetrics()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([pg?.stop(), vm?.stop()]);
});

sampleStoreConformance(
  'VictoriaMetrics + PostgreSQL ledger',
  async () => {
    const connectionString = await pg.createDatabase(
      `nexus_${randomUUID().replaceAll('-', '').slice(0, 16)}`,
    );
    const ledger = await createPostgresSampleStore({ connectionString, poolSize: 2 });
    const store = createVictoriaSampleStore({ writeUrl: vm.writeUrl }, ledger);
    return { store, teardown: () => store.close() };
  },
  {
    compaction: 'the TSDB compresses its own storage; the store has no compact()',
    retention: 'the TSDB enforces its own -retentionPeriod; the store has no applyRetention',
    rollups: true,
    partitions: 'samples live in the TSDB, not in SQL day partitions',
    timescaledb: 'samples live in the TSDB, not in TimescaleDB',
    concurrentWriters:
      'refusing a conflicting duplicate and counting `inserted` rest on a read before the write: two processes writing the same (series, time) at once may both count it (the TSDB keeps one copy of identical samples)',
    fullTimeRange:
      'VictoriaMetrics keeps samples from 1970 within its -retentionPeriod, and refuses them more than 2 days ahead; others are unstorable_row dead letters',
    indexRowLimit:
      'VictoriaMetrics has no index row limit: long label values are stored (up to -maxLabelValueLen, then truncated)',
  },
);
