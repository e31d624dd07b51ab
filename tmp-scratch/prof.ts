import pg from 'pg';
import { startPostgres } from '../test/harness/postgres.js';
import { createPostgresSampleStore } from '../src/adapters/postgres/sample-store.js';
import { foldRollup, mergeRollup, ROLLUP_LEVELS } from '../src/storage/rollups.js';
import type { SqlExecutor } from '../src/storage/sql-executor.js';

const h = await startPostgres();
try {
  const url = await h.createDatabase('prof');
  const store = await createPostgresSampleStore({ connectionString: url });
  await store.migrate();
  await store.writeBatch({ id: 'x', source: 's', deadLetters: [], samples: [{ clusterId: 'c', hostname: 'h', gpuId: '0', uuid: 'u', device: 'd', modelName: 'm', metric: 'M', container: '', pod: '', namespace: '', labels: {}, timestampMs: Date.parse('2025-07-18T00:00:00Z'), value: 1 }] });
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const ex: SqlExecutor = { query: async (t, p) => { const r = await c.query(t, p as unknown[]); return { rows: r.rows, rowCount: r.rowCount ?? 0 }; }, exec: async (s) => { await c.query(s); } };
  const S = 2480; // series
  const t0 = Date.parse('2025-07-18T00:00:00Z');
  for (let b = 0; b < 40; b++) {
    const ids: number[] = [], ts: number[] = [], vs: number[] = [];
    for (let k = 0; k < 2; k++) for (let s = 0; s < S; s++) { ids.push(s + 1); ts.push(t0 + (b * 2 + k) * 10000); vs.push(Math.random()); }
    await c.query('BEGIN');
    const tA = performance.now();
    const f1 = foldRollup(ids, ts, vs, 60000); const f2 = foldRollup(ids, ts, vs, 3600000);
    const tB = performance.now();
    await mergeRollup(ex, ROLLUP_LEVELS[0]!, f1);
    const tC = performance.now();
    if (b === 39) {
      const orig = ex.query;
      ex.query = async (t, p) => { const r = await c.query('EXPLAIN (ANALYZE, BUFFERS) ' + t, p as unknown[]); console.log(r.rows.map((x) => x['QUERY PLAN']).join('\n')); return { rows: [], rowCount: 0 }; };
      await mergeRollup(ex, ROLLUP_LEVELS[1]!, f2);
      ex.query = orig;
    } else await mergeRollup(ex, ROLLUP_LEVELS[1]!, f2);
    const tD = performance.now();
    await c.query('COMMIT');
    if (b % 8 === 7) console.log(`batch ${b}: fold ${(tB - tA).toFixed(1)} ms, 1m ${f1.seriesIds.length} rows ${(tC - tB).toFixed(1)} ms, 1h ${f2.seriesIds.length} rows ${(tD - tC).toFixed(1)} ms`);
  }
  const st = await c.query(`SELECT relname, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname LIKE 'samples_1%' AND n_tup_upd > 0`);
  console.log(st.rows);
  await c.end(); await store.close();
} finally { await h.stop(); }
