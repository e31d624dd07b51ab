/**
 * The PostgreSQL TLS settings (src/adapters/postgres/tls.ts) as pg receives them: each sslmode's
 * `ssl` option, URL parameters winning over the DB_* variables and taken out of the connection
 * string, and CONFIG_INVALID for what cannot work. Connections themselves: test/e2e/tls-postgres.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolvePostgresTls } from '../../src/adapters/postgres/tls.js';
import { loadConfig } from '../../src/config/config.js';
import { NexusError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'nexus-pgtls-'));
const ca = join(dir, 'ca.pem');
const cert = join(dir, 'client.crt');
const key = join(dir, 'client.key');
writeFileSync(ca, 'CA PEM\n');
writeFileSync(cert, 'CERT PEM\n');
writeFileSync(key, 'KEY PEM\n');
const URL_BASE = 'postgres://nexus:p%40ss@db.internal:5432/telemetry';

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function errorOf(fn: () => unknown): NexusError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(NexusError);
    return error as NexusError;
  }
  throw new Error('expected an error');
}

describe('resolvePostgresTls', () => {
  it('maps each sslmode to pg ssl options', () => {
    expect(resolvePostgresTls({ sslmode: 'disable' }).ssl).toBe(false);
    expect(resolvePostgresTls({ sslmode: 'prefer' }).ssl).toBeUndefined();
    expect(resolvePostgresTls({}).ssl).toBeUndefined();
    expect(resolvePostgresTls({ sslmode: 'require' }).ssl).toEqual({ rejectUnauthorized: false });
    const verifyCa = resolvePostgresTls({ sslmode: 'verify-ca', sslrootcert: ca }).ssl;
    expect(verifyCa).toMatchObject({ ca: 'CA PEM\n', rejectUnauthorized: true });
    expect(verifyCa && verifyCa.checkServerIdentity?.('db', {} as never)).toBeUndefined();
    const verifyFull = resolvePostgresTls({ sslmode: 'verify-full', sslrootcert: ca }).ssl;
    expect(verifyFull).toEqual({ ca: 'CA PEM\n', rejectUnauthorized: true });
    expect(resolvePostgresTls({ sslmode: 'require', sslcert: cert, sslkey: key }).ssl).toEqual({
      cert: 'CERT PEM\n',
      key: 'KEY PEM\n',
      rejectUnauthorized: false,
    });
  });

  it('takes the URL parameters out of DATABASE_URL, and they win over the variables', () => {
    const url = `${URL_BASE}?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}&application_name=x`;
    const result = resolvePostgresTls({ sslmode: 'disable' }, url);
    expect(result.connectionString).toBe(`${URL_BASE}?application_name=x`);
    expect(result.ssl).toEqual({ ca: 'CA PEM\n', rejectUnauthorized: true });
    const withVariables = resolvePostgresTls({ sslmode: 'verify-full', sslrootcert: ca }, URL_BASE);
    expect(withVariables.connectionString).toBe(URL_BASE);
    expect(withVariables.ssl).toEqual({ ca: 'CA PEM\n', rejectUnauthorized: true });
    expect(resolvePostgresTls({ sslmode: 'verify-full' }, `${URL_BASE}?sslmode=disable`)).toEqual({
      connectionString: URL_BASE,
      ssl: false,
    });
  });

  it('refuses, with CONFIG_INVALID naming the source, what cannot work', () => {
    expect(errorOf(() => resolvePostgresTls({ sslmode: 'verify-full' })).message).toBe(
      'invalid configuration: DB_SSLMODE: sslmode verify-full needs a CA file (DB_SSLROOTCERT or sslrootcert= in DATABASE_URL)',
    );
    const missing = join(dir, 'missing.pem');
    const unreadable = errorOf(() =>
      resolvePostgresTls({}, `${URL_BASE}?sslmode=verify-ca&sslrootcert=${encodeURIComponent(missing)}`),
    );
    expect(unreadable.code).toBe('CONFIG_INVALID');
    expect(unreadable.message).toBe(
      `invalid configuration: DATABASE_URL sslrootcert: cannot read ${missing} (ENOENT)`,
    );
    expect(errorOf(() => resolvePostgresTls({}, `${URL_BASE}?sslmode=allow`)).message).toBe(
      'invalid configuration: DATABASE_URL: sslmode=allow is not one of disable, prefer, require, verify-ca, verify-full',
    );
    expect(errorOf(() => resolvePostgresTls({ sslmode: 'require', sslcert: cert })).message).toBe(
      'invalid configuration: DB_SSLCERT: set both the client certificate and its key, or neither',
    );
  });

  it('is reached from the configuration: DB_SSLMODE accepts verify-ca, rejects other words', () => {
    expect(loadConfig({ DB_SSLMODE: 'verify-ca' }).DB_SSLMODE).toBe('verify-ca');
    expect(() => loadConfig({ DB_SSLMODE: 'verify' })).toThrow(/DB_SSLMODE/);
  });
});
