/**
 * The SampleStore behaviour common to every SQL backend: migrations, the idempotent write path,
 * queries, the series id cache, close semantics and error mapping. An adapter supplies a
 * {@link SqlBackend} (how to run a statement, a transaction, and what its errors mean).
 */
import type { Batch } from '../domain/types.js';
import { NexusError } from '../errors.js';
import type {
  SampleQuery,
  SampleStore,
  StoredDeadLetter,
  StoredGpu,
  StoredSample,
  WriteResult,
} from '../ports/sample-store.js';
import { applyMigrations } from './migrations.js';
import {
  COUNT_SAMPLES_SQL,
  type DeadLetterRow,
  type GpuRow,
  type SampleRow,
  buildListDeadLetters,
  buildLatestSamples,
  buildListGpus,
  buildSampleQuery,
  compareGpus,
  toStoredDeadLetter,
  toStoredGpu,
  toStoredSample,
} from './queries.js';
import { SeriesIdCache } from './series.js';
import { type SqlExecutor, type TransactionExecutor, sqlState } from './sql-executor.js';
import { InvalidBatchError, writeBatchInTransaction } from './write-batch.js';

/** What an adapter provides to {@link SqlSampleStore}. */
export interface SqlBackend {
  /** Human name used in error messages ("PGlite", "PostgreSQL"). */
  readonly name: string;
  /** Single statements outside a transaction. */
  readonly executor: SqlExecutor;
  /** Run `fn` in one transaction: commit when it resolves, roll back when it throws. */
  transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>): Promise<T>;
  /** Map an error that is not already a NexusError (connection loss -> BACKEND_UNAVAILABLE, ...). */
  mapError(error: unknown, operation: string): NexusError;
  /** Release the backend; called once, after in-flight operations settled. */
  close(): Promise<void>;
}

/** Options of {@link SqlSampleStore}. */
export interface SqlSampleStoreOptions {
  /** Most series ids kept in memory (default 200,000). */
  seriesCacheSize?: number;
}

/** A SampleStore over any {@link SqlBackend}. */
export class SqlSampleStore implements SampleStore {
  readonly #backend: SqlBackend;
  readonly #cache: SeriesIdCache;
  readonly #inFlight = new Set<Promise<unknown>>();
  #closing: Promise<void> | undefined;

  constructor(backend: SqlBackend, options: SqlSampleStoreOptions = {}) {
    this.#backend = backend;
    this.#cache = new SeriesIdCache(options.seriesCacheSize);
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  migrate(): Promise<void> {
    return this.#run('migrate', async () => {
      await this.#backend.transaction((tx) => applyMigrations(tx));
    });
  }

  writeBatch(batch: Batch): Promise<WriteResult> {
    return this.#run('writeBatch', async () => {
      const outcome = await this.#backend.transaction((tx) =>
        writeBatchInTransaction(tx, batch, this.#cache),
      );
      this.#cache.addAll(outcome.resolvedSeries);
      return outcome.result;
    });
  }

  querySamples(query: SampleQuery): Promise<StoredSample[]> {
    return this.#run('querySamples', async () => {
      const { text, params } = buildSampleQuery(query);
      const { rows } = await this.#backend.executor.query<SampleRow>(text, params);
      return rows.map(toStoredSample);
    });
  }

  listGpus(clusterId?: string): Promise<StoredGpu[]> {
    return this.#run('listGpus', async () => {
      const { text, params } = buildListGpus(clusterId);
      const { rows } = await this.#backend.executor.query<GpuRow>(text, params);
      return rows.map(toStoredGpu).sort(compareGpus);
    });
  }

  latestSamples(clusterId?: string): Promise<StoredSample[]> {
    return this.#run('latestSamples', async () => {
      const { text, params } = buildLatestSamples(clusterId);
      const { rows } = await this.#backend.executor.query<SampleRow>(text, params);
      return rows.map(toStoredSample);
    });
  }

  listDeadLetters(options?: { limit?: number; source?: string }): Promise<StoredDeadLetter[]> {
    return this.#run('listDeadLetters', async () => {
      const { text, params } = buildListDeadLetters(options);
      const { rows } = await this.#backend.executor.query<DeadLetterRow>(text, params);
      return rows.map(toStoredDeadLetter);
    });
  }

  countSamples(): Promise<number> {
    return this.#run('countSamples', async () => {
      const { rows } = await this.#backend.executor.query<{ n: number }>(COUNT_SAMPLES_SQL);
      return rows[0]?.n ?? 0;
    });
  }

  ping(): Promise<void> {
    return this.#run('ping', async () => {
      await this.#backend.executor.query('SELECT 1');
    });
  }

  /** Stop accepting calls, wait for the ones in flight, release the backend. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inFlight]);
      this.#cache.clear();
      await this.#backend.close();
    })();
    return this.#closing;
  }

  #run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) {
      return Promise.reject(new NexusError('STORE_CLOSED', `${this.#backend.name} sample store is closed`));
    }
    const p = fn().catch((error: unknown) => {
      throw this.#mapError(error, operation);
    });
    this.#inFlight.add(p);
    const forget = (): void => {
      this.#inFlight.delete(p);
    };
    p.then(forget, forget);
    return p;
  }

  #mapError(error: unknown, operation: string): NexusError {
    if (error instanceof NexusError) return error;
    if (error instanceof InvalidBatchError) {
      return new NexusError('BAD_REQUEST', error.message, { cause: error, details: { operation } });
    }
    // Data exceptions (22) and integrity violations (23, e.g. the finite-value check) mean the
    // input is refused: retrying the same batch cannot help.
    const state = sqlState(error);
    if (state !== undefined && (state.startsWith('22') || state.startsWith('23'))) {
      const message = error instanceof Error ? error.message : String(error);
      return new NexusError(
        'BAD_REQUEST',
        `${this.#backend.name} refused the data of ${operation}: ${message}`,
        {
          cause: error,
          details: { operation, sqlState: state },
        },
      );
    }
    return this.#backend.mapError(error, operation);
  }
}
