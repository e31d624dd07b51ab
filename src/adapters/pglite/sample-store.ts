/**
 * Embedded sample store on PGlite (PostgreSQL compiled to WebAssembly, in-process). Keeps its data
 * in a directory (default `./data/pglite`) or, with `memory: true`, nowhere. PGlite has a single
 * connection, so every statement and transaction runs through one FIFO lock here. Bulk loads use
 * binary COPY from PGlite's `/dev/blob` device.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { NexusError } from '../../errors.js';
import type { SqlExecutor, SqlResult, TransactionExecutor } from '../../storage/sql-executor.js';
import { sqlState } from '../../storage/sql-executor.js';
import {
  type SqlBackend,
  SqlSampleStore,
  type SqlSampleStoreOptions,
} from '../../storage/sql-sample-store.js';

/** Default data directory of the embedded store. */
export const DEFAULT_PGLITE_DATA_DIR = './data/pglite';

/** Options of {@link createPgliteSampleStore}. */
export interface PgliteSampleStoreOptions extends SqlSampleStoreOptions {
  /** Directory holding the database (created if missing). Default `./data/pglite`. */
  dataDir?: string;
  /** Keep everything in memory and nothing on disk (tests). Slows down as tables grow. */
  memory?: boolean;
}

/** The embedded store (a {@link SqlSampleStore} over PGlite). */
export type PgliteSampleStore = SqlSampleStore;

/** FIFO lock: PGlite runs one statement at a time, and a transaction must not interleave. */
class SerialLock {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(fn, fn);
    this.#tail = next.catch(() => undefined);
    return next;
  }
}

type Queryable = Pick<Transaction, 'query' | 'exec'>;

function executorOf(db: Queryable): SqlExecutor {
  return {
    async query<R extends object>(text: string, params: readonly unknown[] = []): Promise<SqlResult<R>> {
      const r = await db.query<R>(text, [...params]);
      return { rows: r.rows, rowCount: r.rowCount ?? r.affectedRows ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await db.exec(sql);
    },
  };
}

function transactionExecutorOf(tx: Transaction): TransactionExecutor {
  return {
    ...executorOf(tx),
    async copyBinary(table: string, columns: readonly string[], data: Uint8Array): Promise<number> {
      const r = await tx.query(
        `COPY ${table} (${columns.join(', ')}) FROM '/dev/blob' WITH (FORMAT binary)`,
        [],
        {
          blob: new Blob([data]),
        },
      );
      return r.rowCount ?? r.affectedRows ?? 0;
    },
  };
}

/**
 * Write-ahead log bounds for PGlite. It runs PostgreSQL as a single-user backend, which never
 * checkpoints on its own: its `pg_wal` grew to most of the 814 MB a million samples took on disk.
 * The backend checkpoints itself once this much WAL was written since the last checkpoint, and on
 * close; `max_wal_size`/`min_wal_size` bound what a checkpoint keeps, and `wal_recycle=off` makes
 * it delete the segments it no longer needs instead of keeping them renamed for reuse: a closed
 * store keeps one 16 MB segment, as an empty one does, not 32 MB (measured: issue 18's disk figures).
 */
export const PGLITE_CHECKPOINT_WAL_BYTES = 64 * 2 ** 20;
/**
 * The WAL bounds above, and 32 MB of shared buffers instead of PostgreSQL's 128: they live in the
 * WebAssembly heap, which never shrinks once touched, so they were about 90 MiB of the process's
 * RSS; ingest and query figures did not move (docs/performance.md, "Embedded RSS").
 */
const PGLITE_PARAMS = [
  ...['-c', 'max_wal_size=32MB', '-c', 'min_wal_size=32MB', '-c', 'wal_recycle=off'],
  ...['-c', 'shared_buffers=32MB'],
];
/** How often the backend looks at the WAL written since the last checkpoint (ms). */
const PGLITE_CHECKPOINT_POLL_MS = 10_000;

class PgliteBackend implements SqlBackend {
  readonly name = 'PGlite';
  readonly vacuumAfterFlush = true;
  readonly executor: SqlExecutor;
  readonly #db: PGlite;
  readonly #lock = new SerialLock();
  readonly #timer: NodeJS.Timeout;

  constructor(db: PGlite) {
    this.#db = db;
    const direct = executorOf(db);
    this.executor = {
      query: (text, params) => this.#lock.run(() => direct.query(text, params)),
      exec: (sql) => this.#lock.run(() => direct.exec(sql)),
    };
    this.#timer = setInterval(
      () => void this.checkpointIfDue().catch(() => undefined),
      PGLITE_CHECKPOINT_POLL_MS,
    );
    this.#timer.unref();
  }

  /** CHECKPOINT when at least {@link PGLITE_CHECKPOINT_WAL_BYTES} of WAL were written since the last one. */
  async checkpointIfDue(): Promise<boolean> {
    return this.#lock.run(async () => {
      const { rows } = await this.#db.query<{ bytes: number }>(
        'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), (pg_control_checkpoint()).redo_lsn)::float8 AS bytes',
      );
      if ((rows[0]?.bytes ?? 0) < PGLITE_CHECKPOINT_WAL_BYTES) return false;
      await this.#db.exec('CHECKPOINT');
      return true;
    });
  }

  transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>): Promise<T> {
    return this.#lock.run(() => this.#db.transaction((tx) => fn(transactionExecutorOf(tx))));
  }

  mapError(error: unknown, operation: string): NexusError {
    const message = error instanceof Error ? error.message : String(error);
    const state = sqlState(error);
    return new NexusError('INTERNAL', `PGlite ${operation} failed: ${message}`, {
      cause: error,
      details: { operation, ...(state === undefined ? {} : { sqlState: state }) },
    });
  }

  close(): Promise<void> {
    clearInterval(this.#timer);
    return this.#lock.run(async () => {
      await this.#db.exec('CHECKPOINT').catch(() => undefined);
      await this.#db.close();
    });
  }
}

/**
 * Create a new PGlite data directory in a child process. PGlite runs initdb inside the instance
 * that opens a new directory and keeps about 500 MiB of it resident for that instance's life; an
 * instance opening an existing directory starts at about 220 MiB (docs/performance.md, "Embedded
 * RSS"). A closed instance's memory goes back only when V8 collects it, so the child is what
 * returns it for certain.
 */
async function initDataDir(location: string, startParams: string[]): Promise<void> {
  // Into a sibling directory, renamed into place once complete: a child killed halfway (timeout,
  // out of memory) leaves no half-made directory that a later start would take for a database.
  const staging = `${location}.initdb-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  const script = `const [path, dir, params] = process.argv.slice(1);
require(path).PGlite.create(dir, { startParams: JSON.parse(params) }).then((db) => db.close());`;
  const pglite = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  try {
    await promisify(execFile)(
      process.execPath,
      ['-e', script, pglite, staging, JSON.stringify(startParams)],
      { timeout: 120_000 },
    );
    // Replaces the empty directory created above; one holding other files is refused (ENOTEMPTY).
    renameSync(staging, location);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    const stderr = String((error as { stderr?: string }).stderr ?? '').trim();
    throw new Error(`initdb failed${stderr ? `: ${stderr.slice(-500)}` : `: ${String(error)}`}`, {
      cause: error,
    });
  }
}

/**
 * Open (creating if needed) an embedded PGlite sample store. Call `migrate()` before writing.
 * Only one process may open a given `dataDir` at a time.
 */
export async function createPgliteSampleStore(
  options: PgliteSampleStoreOptions = {},
): Promise<PgliteSampleStore> {
  let location = 'memory://';
  if (!options.memory) {
    location = resolve(options.dataDir ?? DEFAULT_PGLITE_DATA_DIR);
    mkdirSync(location, { recursive: true });
  }
  let db: PGlite;
  try {
    const defaults = (PGlite as unknown as { defaultStartParams: string[] }).defaultStartParams;
    const startParams = [...defaults, ...PGLITE_PARAMS];
    if (!options.memory && !existsSync(join(location, 'PG_VERSION')))
      await initDataDir(location, startParams);
    db = await PGlite.create(location, { startParams });
  } catch (error) {
    throw new NexusError('BACKEND_UNAVAILABLE', `cannot open PGlite at ${location}: ${String(error)}`, {
      cause: error,
    });
  }
  return new SqlSampleStore(new PgliteBackend(db), options);
}
