/**
 * PostgreSQL sample store on a real PostgreSQL 15 (test/harness/postgres.ts): the shared
 * conformance suite on a fresh database per run, concurrent migrations from several stores,
 * and the behaviour of connection loss (retryable BACKEND_UNAVAILABLE, no password in messages,
 * recovery after the server comes back).
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import type { Batch } from '../../src/domain/types.js';
import { NexusError } from '../../src/errors.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from '../../src/storage/migrations.js';
import { sampleStoreConformance } from '../conformance/sample-store.js';
import { type PostgresHarness, TEST_PG_PASSWORD, startPostgres } from '../harness/postgres.js';

let server: PostgresHarness;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

function dbName(): string {
  return `nexus_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
}

sampleStoreConformance(
  'PostgreSQL',
  async () => {
    const connectionString = await server.createDatabase(dbName());
    const store = await createPostgresSampleStore({ connectionString, poolSize: 4 });
    return {
      store,
      teardown: () => store.close(),
      connect: () => createPostgresSampleStore({ connectionString, poolSize: 2 }),
    };
  },
  {
    retention: true,
    compaction: true,
    rollups: true,
    partitions: true,
    timescaledb:
      'the test server is plain PostgreSQL 15 without the extension; it uses native day partitions',
    concurrentWriters: true,
    fullTimeRange: true,
    indexRowLimit: true,
  },
);

function oneSampleBatch(id: string, ts: number): Batch {
  return {
    id,
    source: 'pg-test',
    deadLetters: [],
    samples: [
      {
        clusterId: 'c',
        hostname: 'h',
        gpuId: '0',
        uuid: 'GPU-pg',
        device: 'nvidia0',
        modelName: 'H100',
        metric: 'DCGM_FI_DEV_GPU_UTIL',
        container: '',
        pod: '',
        namespace: '',
        labels: {},
        timestampMs: ts,
        value: 1,
      },
    ],
  };
}

describe('PostgreSQL sample store', () => {
  it('applies each migration once when several stores migrate at the same time', async () => {
    const connectionString = await server.createDatabase(dbName());
    const stores = await Promise.all(
      Array.from({ length: 6 }, () => createPostgresSampleStore({ connectionString, poolSize: 2 })),
    );
    try {
      await Promise.all(stores.map((s) => s.migrate()));
      await Promise.all(stores.map((s) => s.migrate()));
      const client = new pg.Client({ connectionString });
      await client.connect();
      try {
        const { rows } = await client.query<{ version: number; n: string }>(
          'SELECT version, count(*) AS n FROM schema_migrations GROUP BY version ORDER BY version',
        );
        expect(rows.map((r) => [r.version, Number(r.n)])).toEqual(MIGRATIONS.map((m) => [m.version, 1]));
        expect(Math.max(...rows.map((r) => r.version))).toBe(LATEST_SCHEMA_VERSION);
      } finally {
        await client.end();
      }
      expect(await stores[0]!.writeBatch(oneSampleBatch('m-1', 1000))).toMatchObject({ inserted: 1 });
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('accepts host/port/user/password/database fields instead of a connection string', async () => {
    const database = dbName();
    await server.createDatabase(database);
    const store = await createPostgresSampleStore({
      host: server.host,
      port: server.port,
      user: server.user,
      password: server.password,
      database,
    });
    try {
      await store.migrate();
      await expect(store.ping()).resolves.toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('lets the connection string win over the separate fields, as node-postgres does', async () => {
    const connectionString = await server.createDatabase(dbName());
    const store = await createPostgresSampleStore({
      connectionString,
      host: '127.0.0.1',
      port: 1,
      database: 'does_not_exist',
      password: 'stale-default',
    });
    try {
      await expect(store.ping()).resolves.toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('reports an unreachable server as retryable BACKEND_UNAVAILABLE without the password', async () => {
    const store = await createPostgresSampleStore({
      connectionString: `postgres://postgres:${TEST_PG_PASSWORD}@127.0.0.1:1/nowhere`,
      connectionTimeoutMs: 2000,
    });
    try {
      for (const call of [
        () => store.ping(),
        () => store.migrate(),
        () => store.writeBatch(oneSampleBatch('u', 1)),
      ]) {
        const error = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(NexusError);
        const e = error as NexusError;
        expect(e.code).toBe('BACKEND_UNAVAILABLE');
        expect(e.retryable).toBe(true);
        expect(e.message).toContain('127.0.0.1:1/nowhere');
        expect(JSON.stringify({ m: e.message, d: e.details })).not.toContain(TEST_PG_PASSWORD);
      }
    } finally {
      await store.close();
    }
  });

  it('reports a wrong password as CONFIG_INVALID without echoing it', async () => {
    const store = await createPostgresSampleStore({
      host: server.host,
      port: server.port,
      user: 'postgres',
      password: 'definitely-wrong-pw',
      database: 'postgres',
    });
    try {
      const error = await store.ping().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'CONFIG_INVALID', retryable: false });
      expect((error as Error).message).not.toContain('definitely-wrong-pw');
    } finally {
      await store.close();
    }
  });

  it('survives the server crashing under an open pool, then recovers when it is back', async () => {
    const connectionString = await server.createDatabase(dbName());
    const warnings: string[] = [];
    const store = await createPostgresSampleStore({
      connectionString,
      poolSize: 3,
      connectionTimeoutMs: 2000,
      logger: { warn: (_obj, msg) => warnings.push(msg ?? '') },
    });
    try {
      await store.migrate();
      expect(await store.writeBatch(oneSampleBatch('crash-1', 1000))).toMatchObject({ inserted: 1 });

      await server.stopImmediate();
      // Idle pooled connections die now; the pool 'error' event must not crash the process.
      await new Promise((r) => setTimeout(r, 200));
      const error = await store.writeBatch(oneSampleBatch('crash-2', 2000)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'BACKEND_UNAVAILABLE', retryable: true });
      await expect(store.ping()).rejects.toMatchObject({ code: 'BACKEND_UNAVAILABLE' });

      await server.start();
      // The retry the collector would do: same batch id, now written once.
      let result;
      for (let attempt = 0; attempt < 20 && !result; attempt++) {
        result = await store.writeBatch(oneSampleBatch('crash-2', 2000)).catch(async (e: unknown) => {
          expect(e).toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
          await new Promise((r) => setTimeout(r, 250));
          return undefined;
        });
      }
      expect(result).toEqual({ duplicate: false, inserted: 1, deadLetters: 0, unstorable: 0, conflicts: 0 });
      expect(await store.countSamples()).toBe(2);
      expect(warnings.join('\n')).not.toContain(TEST_PG_PASSWORD);
    } finally {
      await store.close();
    }
  });
});
