/**
 * Schema of the SQLite sample store (src/adapters/sqlite/sample-store.ts): series, raw samples keyed
 * on (series, time) in a clustered b-tree, compacted chunks, the rollup buckets folded when rows are
 * compacted or deleted, the batch ledger and dead letters. Versioned through `PRAGMA user_version`; each step runs
 * in the transaction that records it.
 */

/** One schema step: applied when `PRAGMA user_version` is below its version. */
export interface SqliteMigration {
  version: number;
  name: string;
  sql: string;
}

export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = [
  {
    version: 1,
    name: 'series, samples, folded rollups, batch ledger, dead letters',
    sql: `
CREATE TABLE series (
  id INTEGER PRIMARY KEY,
  key_hash TEXT NOT NULL UNIQUE,
  cluster_id TEXT NOT NULL,
  hostname TEXT NOT NULL,
  gpu_id TEXT NOT NULL,
  uuid TEXT NOT NULL,
  device TEXT NOT NULL,
  model_name TEXT NOT NULL,
  metric TEXT NOT NULL,
  container TEXT NOT NULL,
  pod TEXT NOT NULL,
  namespace TEXT NOT NULL,
  labels TEXT NOT NULL
);
CREATE INDEX series_gpu ON series (cluster_id, hostname, gpu_id);
CREATE INDEX series_uuid ON series (uuid);
CREATE INDEX series_metric ON series (metric);

-- Times are milliseconds since 1970 as REAL (microsecond fractions kept as given); SQLite writes
-- whole numbers of a REAL column as integers on disk.
CREATE TABLE samples (
  series_id INTEGER NOT NULL,
  ts REAL NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;

-- Buckets of raw samples that compaction or retention took away (res: 60000 or 3600000 ms); reads
-- merge them with the buckets of the raw samples still stored.
CREATE TABLE rollups (
  res INTEGER NOT NULL,
  series_id INTEGER NOT NULL,
  bucket REAL NOT NULL,
  min REAL NOT NULL,
  max REAL NOT NULL,
  sum REAL NOT NULL,
  count INTEGER NOT NULL,
  last REAL NOT NULL,
  last_ts REAL NOT NULL,
  PRIMARY KEY (res, series_id, bucket)
) WITHOUT ROWID;

CREATE TABLE batch_ledger (
  batch_id TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  sample_count INTEGER NOT NULL,
  dead_letter_count INTEGER NOT NULL,
  committed_ms REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE dead_letters (
  id INTEGER PRIMARY KEY,
  batch_id TEXT,
  source TEXT NOT NULL,
  line INTEGER NOT NULL,
  raw TEXT NOT NULL,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL,
  received_ms REAL NOT NULL,
  dedupe_key TEXT NOT NULL UNIQUE
);
CREATE INDEX dead_letters_source ON dead_letters (source, id);
`,
  },
  {
    version: 2,
    name: 'compacted chunks: one per series and 6-hour window (src/adapters/sqlite/chunks.ts)',
    sql: `
CREATE TABLE chunks (
  series_id INTEGER NOT NULL,
  window_start REAL NOT NULL,
  n INTEGER NOT NULL,
  first_ts REAL NOT NULL,
  last_ts REAL NOT NULL,
  last_value REAL NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (series_id, window_start)
) WITHOUT ROWID;
`,
  },
  {
    version: 3,
    name: 'API tokens: sha256 of each token, its name and scopes (src/adapters/sqlite/token-store.ts)',
    sql: `
CREATE TABLE api_tokens (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  token_hash BLOB NOT NULL UNIQUE,
  scopes TEXT NOT NULL,
  created_ms REAL NOT NULL,
  revoked_ms REAL
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_ms IS NULL;
`,
  },
];
