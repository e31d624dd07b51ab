/**
 * PostgreSQL over TLS (issue 17): a server with ssl=on whose pg_hba.conf has only a `hostssl ...
 * scram-sha-256` line for TCP. The embedded `start` pipeline on it, configured with
 * DB_SSLMODE=verify-full and DB_SSLROOTCERT (password from DB_PASSWORD_FILE), ingests the bundled
 * sample: 2,470 samples stored, over TLS connections. The same through `sslmode=verify-full&
 * sslrootcert=` in DATABASE_URL. A server certificate from another CA, and sslmode=disable, are
 * refused with clear errors. On a server whose certificate names another host, verify-ca connects
 * and verify-full refuses.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import { resolvePostgresTls, type PgSslMode } from '../../src/adapters/postgres/tls.js';
import { loadConfig } from '../../src/config/config.js';
import { NexusError } from '../../src/errors.js';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { startPostgres, TEST_PG_PASSWORD, type PostgresHarness } from '../harness/postgres.js';
import { makeTestCerts, type TestCerts } from '../harness/tls-certs.js';

let certs: TestCerts;
let postgres: PostgresHarness;
const logger = createLogger('silent');

beforeAll(async () => {
  certs = await makeTestCerts();
  postgres = await startPostgres({ tls: { certFile: certs.certFile, keyFile: certs.keyFile } });
}, 120_000);

afterAll(async () => {
  await postgres?.stop();
  await certs?.remove();
});

/** Variables of a `start` on `database` with the DB_* settings (password from a file). */
function dbEnv(database: string, extra: Record<string, string>): Record<string, string> {
  const passwordFile = join(certs.dir, 'db-password');
  writeFileSync(passwordFile, `${TEST_PG_PASSWORD}\n`, { mode: 0o600 });
  return {
    DB_HOST: postgres.host,
    DB_PORT: String(postgres.port),
    DB_USER: postgres.user,
    DB_PASSWORD_FILE: passwordFile,
    DB_NAME: database,
    CLUSTER_ID: 'tls-lab',
    LOG_LEVEL: 'silent',
    ...extra,
  };
}

/** Start, ingest the bundled sample, check the count and that every pipeline connection is TLS. */
async function ingestSample(env: Record<string, string>, database: string): Promise<void> {
  const runtime: EmbeddedRuntime = await startEmbedded({ config: loadConfig(env), logger, listen: false });
  try {
    expect(runtime.topology.samples).toBe('postgres');
    const summary = await runtime.ingest({ spec: bundledSamplePath() });
    expect(summary).toMatchObject({ rows: 2470, badRows: 0, refusedByStore: 0 });
    expect(await runtime.store.countSamples()).toBe(2470);

    const admin = new pg.Client({
      connectionString: postgres.connectionStringFor(database),
      ssl: { ca: readFileSync(certs.caFile, 'utf8') },
    });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ ssl: boolean; version: string }>(
        `SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
          WHERE a.application_name = 'nexus-telemetry' AND a.datname = $1`,
        [database],
      );
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows)
        expect(row).toMatchObject({ ssl: true, version: expect.stringMatching(/^TLSv1\.[23]$/) });
    } finally {
      await admin.end();
    }
  } finally {
    await runtime.close();
  }
}

async function startError(env: Record<string, string>): Promise<NexusError> {
  const error = await startEmbedded({ config: loadConfig(env), logger, listen: false }).then(
    async (runtime) => {
      await runtime.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(NexusError);
  return error as NexusError;
}

describe('PostgreSQL with hostssl and verify-full', () => {
  it('ingests the bundled sample through DB_SSLMODE=verify-full and DB_SSLROOTCERT', async () => {
    await postgres.createDatabase('tls_vars');
    await ingestSample(
      dbEnv('tls_vars', { DB_SSLMODE: 'verify-full', DB_SSLROOTCERT: certs.caFile }),
      'tls_vars',
    );
  }, 180_000);

  it('ingests it through sslmode=verify-full&sslrootcert= in DATABASE_URL', async () => {
    const base = await postgres.createDatabase('tls_url');
    const url = `${base}?sslmode=verify-full&sslrootcert=${encodeURIComponent(certs.caFile)}`;
    // DB_SSLMODE=disable is overridden by the URL's sslmode, as libpq's connection string wins.
    await ingestSample(
      { DATABASE_URL: url, DB_SSLMODE: 'disable', CLUSTER_ID: 'tls-lab', LOG_LEVEL: 'silent' },
      'tls_url',
    );
  }, 180_000);

  it('refuses a server certificate signed by another CA', async () => {
    await postgres.createDatabase('tls_wrong_ca');
    const error = await startError(
      dbEnv('tls_wrong_ca', { DB_SSLMODE: 'verify-full', DB_SSLROOTCERT: certs.otherCaFile }),
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(
      `PostgreSQL 127.0.0.1:${postgres.port}/tls_wrong_ca: TLS server certificate not accepted`,
    );
    expect(error.message).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
    expect(error.message).not.toContain(TEST_PG_PASSWORD);
  }, 120_000);

  it('is refused by the server with sslmode=disable (no plain host line)', async () => {
    await postgres.createDatabase('tls_plain');
    const error = await startError(dbEnv('tls_plain', { DB_SSLMODE: 'disable' }));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(
      `PostgreSQL 127.0.0.1:${postgres.port}/tls_plain refused the configured login`,
    );
    expect(error.message).toMatch(/no pg_hba\.conf entry .*no encryption/);
    expect(error.message).not.toContain(TEST_PG_PASSWORD);
  }, 120_000);

  it('stops with CONFIG_INVALID when verify-full has no CA file or the CA file is unreadable', async () => {
    const noCa = await startError(dbEnv('postgres', { DB_SSLMODE: 'verify-full' }));
    expect(noCa.code).toBe('CONFIG_INVALID');
    expect(noCa.message).toBe(
      'invalid configuration: DB_SSLMODE: sslmode verify-full needs a CA file (DB_SSLROOTCERT or sslrootcert= in DATABASE_URL)',
    );
    const missing = join(certs.dir, 'missing-ca.pem');
    const unreadable = await startError(
      dbEnv('postgres', { DB_SSLMODE: 'verify-ca', DB_SSLROOTCERT: missing }),
    );
    expect(unreadable.code).toBe('CONFIG_INVALID');
    expect(unreadable.message).toBe(`invalid configuration: DB_SSLROOTCERT: cannot read ${missing} (ENOENT)`);
  }, 60_000);
});

describe('verify-ca and verify-full on a certificate for another host name', () => {
  let wrongName: PostgresHarness;

  beforeAll(async () => {
    wrongName = await startPostgres({
      tls: { certFile: certs.wrongNameCertFile, keyFile: certs.wrongNameKeyFile },
    });
  }, 120_000);

  afterAll(async () => {
    await wrongName?.stop();
  });

  async function ping(sslmode: PgSslMode): Promise<unknown> {
    const tls = resolvePostgresTls({ sslmode, sslrootcert: certs.caFile }, wrongName.connectionString);
    const store = await createPostgresSampleStore({ connectionString: tls.connectionString, ssl: tls.ssl });
    try {
      return await store.ping().then(
        () => 'connected',
        (e: unknown) => e,
      );
    } finally {
      await store.close();
    }
  }

  it('connects with require and verify-ca, refuses verify-full naming the host name check', async () => {
    expect(await ping('require')).toBe('connected');
    expect(await ping('verify-ca')).toBe('connected');
    const error = await ping('verify-full');
    expect(error).toBeInstanceOf(NexusError);
    expect((error as NexusError).code).toBe('CONFIG_INVALID');
    expect((error as NexusError).message).toContain(
      'TLS server certificate not accepted (ERR_TLS_CERT_ALTNAME_INVALID',
    );
    expect((error as NexusError).message).toContain("IP: 127.0.0.1 is not in the cert's list");
  }, 60_000);
});
