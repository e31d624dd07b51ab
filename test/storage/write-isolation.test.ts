/**
 * How the write path isolates refused rows, on an in-memory PGlite behind an instrumented
 * SqlBackend (counts transactions and statements, injects faults):
 * - a clean batch still takes one transaction and no isolating savepoint (the COPY fast path);
 * - a 5,000-row batch with one poison row (54000, index row too large) takes one more transaction
 *   and O(log n) isolating parts, stores the other 4,999 rows and one dead letter;
 * - a retryable error (deadlock, connection loss) is not split: the write fails, nothing is kept,
 *   and the same batch written again is stored whole;
 * - which errors count as "the database refuses this row" (property-checked);
 * - for random poison positions, exactly the poison rows are refused and every other row stored.
 */
import { PGlite, type Transaction } from '@electric-sql/pglite';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Batch, Sample, SeriesKey } from '../../src/domain/types.js';
import { NexusError } from '../../src/errors.js';
import { InvalidBatchError, isUnstorableError } from '../../src/storage/refusals.js';
import type { SqlExecutor, SqlResult, TransactionExecutor } from '../../src/storage/sql-executor.js';
import { type SqlBackend, SqlSampleStore } from '../../src/storage/sql-sample-store.js';
import { incompressible } from '../support/samples.js';

const T0 = Date.parse('2025-07-18T00:00:00.000Z');

const KEY: SeriesKey = {
  clusterId: 'c',
  hostname: 'host-a',
  gpuId: '0',
  uuid: 'GPU-a',
  device: 'nvidia0',
  modelName: 'H100',
  metric: 'DCGM_FI_DEV_GPU_UTIL',
  container: '',
  pod: '',
  namespace: '',
  labels: {},
};

/** `n` good samples over 25 series, plus poison rows (a 4,000-char host and metric) at `poisonAt`. */
function batchWithPoison(id: string, n: number, poisonAt: readonly number[]): Batch {
  const samples: Sample[] = Array.from({ length: n }, (_, i) => ({
    ...KEY,
    metric: `DCGM_FI_M_${i % 25}`,
    timestampMs: T0 + i * 1000,
    value: i,
  }));
  poisonAt.forEach((at, k) => {
    samples[at] = {
      ...KEY,
      hostname: incompressible(4000, 2 * k + 1),
      metric: incompressible(4000, 2 * k + 2),
      timestampMs: T0,
      value: -1,
    };
  });
  return { id, source: 'isolation.csv', samples, deadLetters: [] };
}

function executorOf(db: Pick<Transaction, 'query' | 'exec'>, log: string[]): SqlExecutor {
  return {
    async query<R extends object>(text: string, params: readonly unknown[] = []): Promise<SqlResult<R>> {
      log.push(text);
      const r = await db.query<R>(text, [...params]);
      return { rows: r.rows, rowCount: r.rowCount ?? r.affectedRows ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await db.exec(sql);
    },
  };
}

/** A PGlite backend that records statements and transactions and may fail a COPY on purpose. */
class InstrumentedBackend implements SqlBackend {
  readonly name = 'PGlite (instrumented)';
  readonly executor: SqlExecutor;
  readonly statements: string[] = [];
  transactions = 0;
  /** When set, the next COPY throws it (once). */
  failNextCopy: Error | undefined;

  constructor(private readonly db: PGlite) {
    this.executor = executorOf(db, this.statements);
  }

  transaction<T>(fn: (tx: TransactionExecutor) => Promise<T>): Promise<T> {
    this.transactions += 1;
    return this.db.transaction((tx) =>
      fn({
        ...executorOf(tx, this.statements),
        copyBinary: async (table, columns, data) => {
          this.statements.push(`COPY ${table}`);
          const fault = this.failNextCopy;
          if (fault) {
            this.failNextCopy = undefined;
            throw fault;
          }
          const r = await tx.query(
            `COPY ${table} (${columns.join(', ')}) FROM '/dev/blob' WITH (FORMAT binary)`,
            [],
            {
              blob: new Blob([data]),
            },
          );
          return r.rowCount ?? r.affectedRows ?? 0;
        },
      }),
    );
  }

  mapError(error: unknown, operation: string): NexusError {
    const code = (error as { code?: string }).code;
    const retryable = code === '40P01' || code === '57P01';
    return new NexusError(retryable ? 'BACKEND_UNAVAILABLE' : 'INTERNAL', `${operation}: ${String(error)}`, {
      cause: error,
    });
  }

  close(): Promise<void> {
    return this.db.close();
  }

  /** Statements seen since the last call, and reset. */
  take(): string[] {
    return this.statements.splice(0);
  }
}

/** An error carrying a SQLSTATE, as the drivers raise them. */
function sqlError(code: string, message = `error ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

let opened: SqlSampleStore[] = [];

async function open(): Promise<{ store: SqlSampleStore; backend: InstrumentedBackend }> {
  const backend = new InstrumentedBackend(await PGlite.create('memory://'));
  const store = new SqlSampleStore(backend);
  await store.migrate();
  opened.push(store);
  backend.take();
  backend.transactions = 0;
  return { store, backend };
}

afterEach(async () => {
  await Promise.all(opened.map((s) => s.close()));
  opened = [];
});

const parts = (statements: string[]): number => statements.filter((s) => s === 'SAVEPOINT nexus_part').length;

describe('write path: isolating refused rows', () => {
  it('a clean batch takes one transaction and no isolating savepoint (the COPY fast path)', async () => {
    const { store, backend } = await open();
    const r = await store.writeBatch(batchWithPoison('clean', 5000, []));
    expect(r).toEqual({ duplicate: false, inserted: 5000, deadLetters: 0, unstorable: 0, conflicts: 0 });
    const statements = backend.take();
    expect(backend.transactions).toBe(1);
    expect(parts(statements)).toBe(0);
    expect(statements.filter((s) => s.startsWith('COPY'))).toEqual(['COPY samples']);
    expect(statements.some((s) => s.includes('ON CONFLICT DO NOTHING\nRETURNING'))).toBe(false);
  });

  it('one poison row among 5,000: one extra transaction, O(log n) parts, 4,999 rows and one dead letter', async () => {
    const { store, backend } = await open();
    const b = batchWithPoison('one-poison', 5000, [3217]);
    const r = await store.writeBatch(b);
    expect(r).toEqual({
      duplicate: false,
      inserted: 4999,
      deadLetters: 1,
      unstorable: 1,
      conflicts: 0,
      refusedSamples: [3217],
    });
    const statements = backend.take();
    expect(backend.transactions).toBe(2);
    // Halving 5,000 rows down to one takes 13 levels, two parts per level at most.
    const n = parts(statements);
    expect(n).toBeGreaterThanOrEqual(13);
    expect(n).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(5000)));
    expect(await store.countSamples()).toBe(4999);
    const [d] = await store.listDeadLetters();
    expect(d).toMatchObject({ reason: 'unstorable_row', line: 0, source: 'isolation.csv' });
    expect(d!.detail).toMatch(/^batch one-poison, sample 3217 of 5000: index row size \d+ exceeds/);
    // Ledger: the redelivered batch adds nothing; its dead-letter count includes the refused row.
    expect(await store.writeBatch(b)).toMatchObject({ duplicate: true, inserted: 0, deadLetters: 0 });
    expect(await store.countSamples()).toBe(4999);
  });

  it('a retryable error is not split: the write fails whole, and the batch written again is stored whole', async () => {
    for (const code of ['40P01', '57P01']) {
      const { store, backend } = await open();
      const b = batchWithPoison(`retry-${code}`, 400, []);
      backend.failNextCopy = sqlError(code);
      await expect(store.writeBatch(b)).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
      expect(backend.transactions).toBe(1);
      expect(parts(backend.take())).toBe(0);
      expect(await store.countSamples()).toBe(0);
      expect(await store.listDeadLetters()).toEqual([]);
      expect(await store.writeBatch(b)).toMatchObject({ duplicate: false, inserted: 400, unstorable: 0 });
    }
  });

  it('an error that is neither data nor retryable (e.g. permission denied) fails the write without splitting', async () => {
    const { store, backend } = await open();
    backend.failNextCopy = sqlError('42501', 'permission denied for table samples');
    await expect(store.writeBatch(batchWithPoison('perm', 100, []))).rejects.toMatchObject({
      code: 'INTERNAL',
    });
    expect(backend.transactions).toBe(1);
    expect(await store.countSamples()).toBe(0);
    expect(await store.listDeadLetters()).toEqual([]);
  });

  it('classifies refused-data errors: classes 22, 23 (not 23505), 54 and InvalidBatchError', () => {
    for (const code of ['54000', '22003', '22008', '22P02', '23514', '23502', '23503'])
      expect(isUnstorableError(sqlError(code)), code).toBe(true);
    for (const code of [
      '23505',
      '40001',
      '40P01',
      '57P01',
      '08006',
      '53300',
      '55P03',
      '42501',
      '42P01',
      'XX000',
    ])
      expect(isUnstorableError(sqlError(code)), code).toBe(false);
    expect(isUnstorableError(new InvalidBatchError('x'))).toBe(true);
    expect(isUnstorableError(new Error('Connection terminated'))).toBe(false);
    expect(isUnstorableError(new NexusError('BACKEND_UNAVAILABLE', 'x'))).toBe(false);
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9A-Z]{5}$/), (code) => {
        const expected = code !== '23505' && ['22', '23', '54'].includes(code.slice(0, 2));
        expect(isUnstorableError(sqlError(code))).toBe(expected);
      }),
    );
  });

  it('for any poison positions, exactly the poison rows are refused and every other row is stored once', async () => {
    const { store } = await open();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 1, max: 120 })
          .chain((n) =>
            fc.tuple(fc.constant(n), fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { maxLength: 4 })),
          ),
        async ([n, poisonAt]) => {
          run += 1;
          const b = batchWithPoison(`prop-${run}`, n, poisonAt);
          // Each run uses its own cluster so runs do not see each other's samples, and its own poison
          // metric names (the start of the rebuilt row): a dead letter is keyed by its text, so an identical refused row is one letter.
          b.samples = b.samples.map((s) => ({
            ...s,
            clusterId: `prop-${run}`,
            metric: s.metric.length > 100 ? `${run}-${s.metric}` : s.metric,
          }));
          const before = await store.countSamples();
          const r = await store.writeBatch(b);
          const sorted = [...poisonAt].sort((x, y) => x - y);
          expect(r.inserted).toBe(n - poisonAt.length);
          expect(r.unstorable).toBe(poisonAt.length);
          expect(r.refusedSamples ?? []).toEqual(sorted);
          expect(await store.countSamples()).toBe(before + n - poisonAt.length);
          const letters = await store.listDeadLetters({ limit: 10 });
          const ours = letters.filter((d) => d.detail.startsWith(`batch prop-${run},`));
          expect(ours.map((d) => Number(/sample (\d+) of/.exec(d.detail)![1])).sort((x, y) => x - y)).toEqual(
            sorted,
          );
        },
      ),
      { numRuns: 12 },
    );
  });
});
