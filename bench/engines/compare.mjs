// Embedded storage engines side by side on the raw-sample core of the sample store (issue 18, "the
// embedded store: compare PGlite with an embedded columnar or SQLite engine"). Not part of
// `npm run bench`: the engines are not dependencies of the project. See docs/performance.md,
// "Embedded engines compared", for how to install them and the figures.
//
//   node bench/engines/compare.mjs [--gpus 1000] [--scrapes 100] [--metrics 10] [--batch 5000]
//     [--engines pglite,sqlite,sqlitewasm,duckdb] [--sqlite-cache-kib 2000]
//
// Each engine runs in its own child process (peak RSS is per process): the same samples (every GPU's
// metrics every 30 s, values with two decimals, written scrape by scrape in batches as a collector
// writes them, each batch one transaction, idempotent on (series, time)), then the bytes on disk,
// then one GPU's 10 metrics over the last hour read 200 times (p50/p99), as arrays per series.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import console from 'node:console';
import { performance } from 'node:perf_hooks';
import process from 'node:process';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : process.argv[i + 1];
};
const GPUS = Number(arg('gpus', 1000));
const SCRAPES = Number(arg('scrapes', 100));
const METRICS = Number(arg('metrics', 10));
const BATCH = Number(arg('batch', 5000));
const ENGINE = arg('engine', undefined);
/** SQLite's page cache, KiB (its default is 2,000). */
const CACHE_KIB = Number(arg('sqlite-cache-kib', 2000));
const STEP_MS = 30_000;
const END_MS = Date.parse('2026-12-01T12:00:00Z');
const START_MS = END_MS - (SCRAPES - 1) * STEP_MS;
const require = createRequire(join(process.env.ENGINES_DIR ?? process.cwd(), 'package.json'));

/** Deterministic values: two decimals, a random walk per series. */
function* batches() {
  const walk = new Float64Array(GPUS * METRICS).fill(50);
  let x = 12345;
  const rand = () => (x = (Math.imul(x ^ (x >>> 15), 2246822519) + 0x9e3779b9) >>> 0) / 2 ** 32;
  let ids = [],
    ts = [],
    vals = [];
  for (let s = 0; s < SCRAPES; s++) {
    const t = START_MS + s * STEP_MS;
    for (let id = 0; id < GPUS * METRICS; id++) {
      walk[id] = Math.max(0, walk[id] + (rand() - 0.5) * 4);
      ids.push(id + 1);
      ts.push(t);
      vals.push(Math.round(walk[id] * 100) / 100);
      if (ids.length === BATCH) {
        yield { ids, ts, vals };
        ids = [];
        ts = [];
        vals = [];
      }
    }
  }
  if (ids.length > 0) yield { ids, ts, vals };
}

const dirBytes = (dir) =>
  readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .reduce((n, e) => n + statSync(join(e.parentPath, e.name)).size, 0);

const pct = (xs, p) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

/** The engines: open(dir), write(batch), finish(), hour(ids, from, to) -> [{id, t[], v[]}], close(). */
const engines = {
  async pglite(dir) {
    // The data directory is made in a child process, as the project does (initdb's memory would
    // otherwise stay in this process: docs/performance.md, "Embedded RSS").
    execFileSync(process.execPath, [
      '--input-type=module',
      '-e',
      `import { PGlite } from '@electric-sql/pglite'; await (await PGlite.create(${JSON.stringify(join(dir, 'pg'))})).close();`,
    ]);
    const { PGlite } = await import('@electric-sql/pglite');
    // The product's settings (src/adapters/pglite/sample-store.ts, PGLITE_PARAMS): a 32 MB WAL
    // budget without recycling, 32 MB of shared buffers. PGlite starts with fsync off.
    const db = await PGlite.create(join(dir, 'pg'), {
      startParams: [
        ...PGlite.defaultStartParams,
        ...['-c', 'max_wal_size=32MB', '-c', 'min_wal_size=32MB', '-c', 'wal_recycle=off'],
        ...['-c', 'shared_buffers=32MB'],
      ],
    });
    await db.exec(`CREATE TABLE series (id integer PRIMARY KEY, key text NOT NULL);
CREATE TABLE samples (series_id integer NOT NULL, ts timestamptz NOT NULL, value double precision NOT NULL,
  PRIMARY KEY (series_id, ts));`);
    await db.query("INSERT INTO series SELECT g, 'series-' || g FROM generate_series(1, $1::int) g", [
      GPUS * METRICS,
    ]);
    return {
      write: (b) =>
        db.query(
          `INSERT INTO samples SELECT i, to_timestamp(t / 1000), v FROM unnest($1::int4[], $2::float8[], $3::float8[]) AS u(i, t, v)
           ON CONFLICT DO NOTHING`,
          [b.ids, b.ts, b.vals],
        ),
      finish: () => db.exec('CHECKPOINT'),
      async hour(ids, from, to) {
        const { rows } = await db.query(
          `SELECT series_id, (extract(epoch FROM ts) * 1000)::float8 AS t, value FROM samples
           WHERE series_id = ANY($1::int4[]) AND ts >= to_timestamp($2::float8 / 1000) AND ts <= to_timestamp($3::float8 / 1000)
           ORDER BY series_id, ts`,
          [ids, from, to],
          { rowMode: 'array' },
        );
        return group(rows);
      },
      close: () => db.close(),
    };
  },
  async sqlite(dir) {
    const Database = require('better-sqlite3');
    const db = new Database(join(dir, 'samples.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma(`cache_size = -${CACHE_KIB}`);
    db.exec(`CREATE TABLE series (id INTEGER PRIMARY KEY, key TEXT NOT NULL);
CREATE TABLE samples (series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
  PRIMARY KEY (series_id, ts)) WITHOUT ROWID;`);
    const insertSeries = db.prepare('INSERT INTO series VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 1; i <= GPUS * METRICS; i++) insertSeries.run(i, `series-${i}`);
    })();
    const insert = db.prepare('INSERT INTO samples VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
    const writeAll = db.transaction((b) => {
      for (let i = 0; i < b.ids.length; i++) insert.run(b.ids[i], b.ts[i], b.vals[i]);
    });
    const read = db
      .prepare(
        `SELECT series_id, ts, value FROM samples WHERE series_id IN (SELECT value FROM json_each(?)) AND ts BETWEEN ? AND ?
         ORDER BY series_id, ts`,
      )
      .raw();
    return {
      write: (b) => writeAll(b),
      finish: () => db.pragma('wal_checkpoint(TRUNCATE)'),
      hour: (ids, from, to) => group(read.all(JSON.stringify(ids), from, to)),
      close: () => db.close(),
    };
  },
  async sqlitewasm(dir) {
    const { Database } = require('node-sqlite3-wasm');
    const db = new Database(join(dir, 'samples.db'));
    db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -${CACHE_KIB};`);
    db.exec(`CREATE TABLE series (id INTEGER PRIMARY KEY, key TEXT NOT NULL);
CREATE TABLE samples (series_id INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL NOT NULL,
  PRIMARY KEY (series_id, ts)) WITHOUT ROWID;`);
    db.exec('BEGIN');
    const insertSeries = db.prepare('INSERT INTO series VALUES (?, ?)');
    for (let i = 1; i <= GPUS * METRICS; i++) insertSeries.run([i, `series-${i}`]);
    insertSeries.finalize();
    db.exec('COMMIT');
    const insert = db.prepare('INSERT INTO samples VALUES (?, ?, ?) ON CONFLICT DO NOTHING');
    const read = db.prepare(
      `SELECT series_id, ts, value FROM samples WHERE series_id IN (SELECT value FROM json_each(?)) AND ts BETWEEN ? AND ?
       ORDER BY series_id, ts`,
    );
    return {
      write(b) {
        db.exec('BEGIN');
        for (let i = 0; i < b.ids.length; i++) insert.run([b.ids[i], b.ts[i], b.vals[i]]);
        db.exec('COMMIT');
      },
      finish: () => db.exec('PRAGMA wal_checkpoint(TRUNCATE)'),
      hour: (ids, from, to) =>
        group(read.all([JSON.stringify(ids), from, to]).map((r) => [r.series_id, r.ts, r.value])),
      close() {
        insert.finalize();
        read.finalize();
        db.close();
      },
    };
  },
  async duckdb(dir) {
    const duck = await import(require.resolve('@duckdb/node-api'));
    const instance = await duck.DuckDBInstance.create(join(dir, 'samples.duckdb'));
    const c = await instance.connect();
    await c.run(`CREATE TABLE samples (series_id INTEGER NOT NULL, ts BIGINT NOT NULL, value DOUBLE NOT NULL,
      PRIMARY KEY (series_id, ts))`);

    return {
      async write(b) {
        // One transaction per batch; INSERT OR IGNORE from column lists keeps writes idempotent.
        await c.run('BEGIN');
        await c.run(
          `INSERT OR IGNORE INTO samples SELECT unnest($1::INTEGER[]), unnest($2::BIGINT[]), unnest($3::DOUBLE[])`,
          [duck.listValue(b.ids), duck.listValue(b.ts.map(BigInt)), duck.listValue(b.vals)],
          [duck.LIST(duck.INTEGER), duck.LIST(duck.BIGINT), duck.LIST(duck.DOUBLE)],
        );
        await c.run('COMMIT');
      },
      finish: () => c.run('CHECKPOINT'),
      async hour(ids, from, to) {
        // Integer ids as an IN list: list_contains on a list parameter was 3.5x slower.
        const r = await c.runAndReadAll(
          `SELECT series_id, ts, value FROM samples WHERE series_id IN (${ids.map(Number).join(',')})
           AND ts BETWEEN $1 AND $2 ORDER BY series_id, ts`,
          [BigInt(from), BigInt(to)],
        );
        return group(r.getRows().map(([i, t, v]) => [i, Number(t), v]));
      },
      close: () => c.closeSync?.(),
    };
  },
};

/** Rows [id, t, v] ordered by id then t as compact series. */
function group(rows) {
  const out = [];
  let cur;
  for (const [id, t, v] of rows) {
    if (cur?.id !== id) out.push((cur = { id, t: [], v: [] }));
    cur.t.push(t);
    cur.v.push(v);
  }
  return out;
}

async function runOne(name) {
  const dir = mkdtempSync(join(tmpdir(), `engine-${name}-`));
  try {
    const engine = await engines[name](dir);
    const started = performance.now();
    let n = 0;
    for (const b of batches()) {
      await engine.write(b);
      n += b.ids.length;
    }
    await engine.finish();
    const seconds = (performance.now() - started) / 1000;
    const bytes = dirBytes(dir);
    const ids = Array.from({ length: METRICS }, (_, m) => 1 + m);
    const from = END_MS - 3_600_000;
    const first = await engine.hour(ids, from, END_MS);
    const points = first.reduce((k, s) => k + s.t.length, 0);
    const lat = [];
    for (let i = 0; i < 220; i++) {
      const s = performance.now();
      await engine.hour(ids, from, END_MS);
      if (i >= 20) lat.push(performance.now() - s);
    }
    await engine.close();
    const rssMiB = process.resourceUsage().maxRSS / 1024;
    console.log(
      JSON.stringify({
        name,
        samples: n,
        perSec: Math.round(n / seconds),
        bytesPerSample: +(bytes / n).toFixed(2),
        points,
        p50: +pct(lat, 50).toFixed(3),
        p99: +pct(lat, 99).toFixed(3),
        peakRssMiB: Math.round(rssMiB),
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (ENGINE) {
  await runOne(ENGINE);
} else {
  console.log(
    `${GPUS} GPUs x ${METRICS} metrics x ${SCRAPES} scrapes = ${GPUS * METRICS * SCRAPES} samples, batches of ${BATCH}`,
  );
  for (const name of arg('engines', 'pglite,sqlite,sqlitewasm,duckdb').split(',')) {
    const out = execFileSync(
      process.execPath,
      [process.argv[1], ...process.argv.slice(2), '--engine', name],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 24,
      },
    );
    process.stdout.write(out);
  }
}
