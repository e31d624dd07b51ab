import pg from 'pg';
import { startPostgres } from '../test/harness/postgres.js';
const h = await startPostgres();
try {
  const c = new pg.Client({ connectionString: h.connectionString });
  await c.connect();
  const n = 2480;
  const arrs = Array.from({ length: 8 }, (_, k) => Array.from({ length: n }, (_, i) => (k === 0 ? i : Math.random() * 1e3 + 1.7e12)));
  for (let r = 0; r < 5; r++) {
    let t = performance.now();
    await c.query('SELECT 1');
    const one = performance.now() - t;
    t = performance.now();
    await c.query('SELECT count(*) FROM unnest($1::int4[], $2::float8[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[])', arrs);
    const un = performance.now() - t;
    t = performance.now();
    const s = arrs.map((a) => '{' + a.join(',') + '}');
    const ser = performance.now() - t;
    t = performance.now();
    await c.query('SELECT count(*) FROM unnest($1::int4[], $2::float8[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[])', s);
    const pre = performance.now() - t;
    console.log(`select1 ${one.toFixed(1)} unnest ${un.toFixed(1)} joinser ${ser.toFixed(1)} preserialized ${pre.toFixed(1)}`);
  }
  await c.end();
} finally { await h.stop(); }
