/**
 * Sample store on PostgreSQL through node-postgres: a connection pool, the shared migrations and
 * write path, and bulk loads by binary COPY (pg-copy-streams) inside the batch transaction.
 * Connection failures surface as retryable BACKEND_UNAVAILABLE errors; errors of idle or
 * checked-out clients are logged, never thrown into the event loop. The password is never logged
 * nor put in an error message.
 */
import type { ConnectionOptions } from 'node:tls';
import { finished } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { NexusError } from '../../errors.js';
import type { SqlExecutor, SqlResult, TransactionExecutor } from '../../storage/sql-executor.js';
import {
  type SqlBackend,
  SqlSampleStore,
  type SqlSampleStoreOptions,
} from '../../storage/sql-sample-store.js';
import { isConnectionError, mapPostgresError, redact } from './errors.js';

/** Minimal logger (pino-compatible) for connection problems the store recovers from. */
export interface PostgresStoreLogger {
  warn(obj: Record<string, unknown>, msg?: string): void;
}

/** Connection and pool settings of {@link createPostgresSampleStore}. */
export interface PostgresSampleStoreConfig extends SqlSampleStoreOptions {
  /**
   * `postgres://user:password@host:port/database`. As in node-postgres, the parts it contains win
   * over the separate fields below, which fill in what it leaves out.
   */
  connectionString?: string;
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  /** TLS: `true` for defaults, or Node TLS options. */
  ssl?: boolean | ConnectionOptions;
  /** Most connections in the pool (default 10). */
  poolSize?: number;
  /** How long to wait for a connection before failing with BACKEND_UNAVAILABLE (default 10 s). */
  connectionTimeoutMs?: number;
  /** Close idle connections after this long (default 30 s). */
  idleTimeoutMs?: number;
  /** `application_name` shown in pg_stat_activity (default `nexus-telemetry`). */
  applicationName?: string;
  logger?: PostgresStoreLogger;
}

/** The PostgreSQL store (a {@link SqlSampleStore} over a pg Pool). */
export type PostgresSampleStore = SqlSampleStore;

type PgQueryable = Pick<pg.PoolClient, 'query'>;

function executorOf(db: PgQueryable): SqlExecutor {
  return {
    async query<R extends object>(text: string, params: readonly unknown[] = []): Promise<SqlResult<R>> {
      const r = await db.query(text, [...params]);
      return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await db.query(sql);
    },
  };
}

function transactionExecutorOf(client: pg.PoolClient): TransactionExecutor {
  return {
    ...executorOf(client),
    async copyBinary(table: string, columns: readonly string[], data: Uint8Array): Promise<number> {
      const stream = client.query(
        copyFrom(`COPY ${table} (${columns.join(', ')}) FROM STDIN WITH (FORMAT binary)`),
      );
      stream.end(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      await finished(stream);
      return stream.rowCount;
    },
  };
}

/** Target for messages: host:port/database, without credentials. Mirrors pg: URL parts win. */
function describeTarget(config: PostgresSampleStoreConfig): string {
  let host = config.host;
  let port = config.port;
  let database = config.database;
  if (config.connectionString) {
    try {
      const url = new URL(config.connectionString);
      host = url.hostname || host;
      port = url.port ? Number(url.port) : port;
      database = decodeURIComponent(url.pathname.replace(/^\//, '')) || database;
    } catch {
      // keyword/value connection strings: describe what the explicit fields say
    }
  }
  return `${host ?? 'localhost'}:${port ?? 5432}/${database ?? '(default)'}`;
}

/** Every password the config carries (field and connection string), for redaction. */
function configuredPasswords(config: PostgresSampleStoreConfig): string[] {
  const found: string[] = [];
  if (config.password) found.push(config.password);
  if (config.connectionString) {
    try {
      const p = new URL(config.connectionString).password;
      if (p) found.push(decodeURIComponent(p));
    } catch {
      const p = /password=(\S+)/.exec(config.connectionString)?.[1];
      if (p) found.push(p);
    }
  }
  return found;
}

class PostgresBackend implements SqlBackend {
  readonly name = 'PostgreSQL';
  readonly executor: SqlExecutor;
  readonly #pool: pg.Pool;
  readonly #target: string;
  readonly #passwords: string[];
  readonly #logger: PostgresStoreLogger | undefined;

  constructor(config: PostgresSampleStoreConfig) {
    this.#target = describeTarget(config);
    this.#passwords = configuredPasswords(config);
    this.#logger = config.logger;
    this.#pool = new pg.Pool({
      connectionString: config.connectionString,
      host: config.host,
      port: config.port,
      user: config.user,
      password: config.password,
      database: config.database,
      ssl: config.ssl,
      max: config.poolSize ?? 10,
      connectionTimeoutMillis: config.connectionTimeoutMs ?? 10_000,
      idleTimeoutMillis: config.idleTimeoutMs ?? 30_000,
      application_name: config.applicationName ?? 'nexus-telemetry',
      keepAlive: true,
    });
    // An idle client losing its connection emits 'error' on the pool; unhandled, it would crash.
    this.#pool.on('error', (error) => this.#warn(error, 'idle PostgreSQL connection failed'));
    this.executor = executorOf(this.#pool);
  }

  async transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    // pg removes the pool's listener while a client is checked out; keep one so a connection
    // dropped between two statements becomes a failed statement, not an uncaught 'error' event.
    const onError = (error: Error): void =>
      this.#warn(error, 'PostgreSQL connection failed during a transaction');
    client.on('error', onError);
    let discard = false;
    try {
      await client.query('BEGIN');
      const result = await fn(transactionExecutorOf(client));
      await client.query('COMMIT');
      return result;
    } catch (error) {
      discard = isConnectionError(error);
      if (!discard) {
        try {
          await client.query('ROLLBACK');
        } catch {
          discard = true;
        }
      }
      throw error;
    } finally {
      client.off('error', onError);
      client.release(discard);
    }
  }

  mapError(error: unknown, operation: string): NexusError {
    return mapPostgresError(error, operation, this.#target, this.#passwords);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  #warn(error: Error, msg: string): void {
    this.#logger?.warn(
      {
        target: this.#target,
        err: { message: redact(error.message, this.#passwords), code: (error as { code?: unknown }).code },
      },
      msg,
    );
  }
}

/**
 * Create a PostgreSQL sample store. Does not connect yet: the first call does (so a service can
 * start while the database is still coming up); use `ping()` to check. Call `migrate()` before
 * writing.
 */
export async function createPostgresSampleStore(
  config: PostgresSampleStoreConfig,
): Promise<PostgresSampleStore> {
  return new SqlSampleStore(new PostgresBackend(config), config);
}
