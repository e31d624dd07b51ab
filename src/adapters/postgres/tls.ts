/**
 * TLS settings of the PostgreSQL connection, libpq style: an sslmode (disable, prefer, require,
 * verify-ca, verify-full) and the sslrootcert / sslcert / sslkey files, from DB_* variables or from
 * the `sslmode=`-style parameters of DATABASE_URL (those win, as every other URL part does). The
 * result is node-postgres' `ssl` option, with the parameters taken out of the connection string so
 * pg's own, differently-behaving sslmode parsing never sees them.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { NexusError } from '../../errors.js';

/** libpq's sslmode values that node-postgres can honour (`allow` has no equivalent in pg). */
export const PG_SSL_MODES = ['disable', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;

/** One of {@link PG_SSL_MODES}. */
export type PgSslMode = (typeof PG_SSL_MODES)[number];

/** TLS settings given as separate variables (DB_SSLMODE, DB_SSLROOTCERT, DB_SSLCERT, DB_SSLKEY). */
export interface PgTlsSettings {
  sslmode?: PgSslMode;
  /** PEM file of the CA(s) the server certificate must chain to (verify-ca, verify-full). */
  sslrootcert?: string;
  /** PEM client certificate file (with sslkey), for `cert` authentication. */
  sslcert?: string;
  /** PEM private key file of sslcert. */
  sslkey?: string;
}

/** What to hand to pg: the connection string without TLS parameters, and the `ssl` option. */
export interface PgTlsResult {
  connectionString?: string;
  /** false: no TLS; undefined: pg's default (no TLS, as `prefer` is in pg). */
  ssl: false | ConnectionOptions | undefined;
}

const URL_PARAMS = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey'] as const;

const VARIABLES: Record<keyof PgTlsSettings, string> = {
  sslmode: 'DB_SSLMODE',
  sslrootcert: 'DB_SSLROOTCERT',
  sslcert: 'DB_SSLCERT',
  sslkey: 'DB_SSLKEY',
};

function invalid(message: string, problem: string): NexusError {
  return new NexusError('CONFIG_INVALID', `invalid configuration: ${problem}: ${message}`, {
    details: { problems: [problem] },
  });
}

function readPem(path: string, source: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw invalid(`cannot read ${path} (${code})`, source);
  }
}

/**
 * Take the TLS parameters out of a `postgres://` URL. Keyword/value strings (`host=... sslmode=...`)
 * are returned unchanged with no parameters: pg parses those itself.
 */
function splitUrl(connectionString: string): { rest: string; params: PgTlsSettings } {
  let url: URL;
  try {
    url = new URL(connectionString);
  } catch {
    return { rest: connectionString, params: {} };
  }
  const params: PgTlsSettings = {};
  for (const name of URL_PARAMS) {
    const value = url.searchParams.get(name);
    if (value === null) continue;
    url.searchParams.delete(name);
    if (name === 'sslmode') {
      if (!(PG_SSL_MODES as readonly string[]).includes(value)) {
        throw invalid(`sslmode=${value} is not one of ${PG_SSL_MODES.join(', ')}`, 'DATABASE_URL');
      }
      params.sslmode = value as PgSslMode;
    } else {
      params[name] = value;
    }
  }
  // Rewritten only when something was taken out: the string pg sees otherwise stays as given.
  return { rest: Object.keys(params).length > 0 ? url.toString() : connectionString, params };
}

/**
 * Resolve the TLS settings into pg's `ssl` option, reading the PEM files. Each URL parameter wins
 * over its variable. Throws CONFIG_INVALID when a file cannot be read, verify-ca / verify-full has no
 * CA file (the system CAs are not used: a private CA is the norm for databases), or only one of the
 * client certificate and key is given.
 *
 * - disable / prefer: no TLS (pg has no "try TLS, fall back" mode, so prefer behaves as disable)
 * - require: TLS, the server certificate is not checked
 * - verify-ca: TLS, the certificate must chain to the CA; its host name is not checked
 * - verify-full: TLS, chain and host name (subjectAltName DNS or IP) checked
 */
export function resolvePostgresTls(settings: PgTlsSettings, connectionString?: string): PgTlsResult {
  const { rest, params } =
    connectionString === undefined ? { rest: undefined, params: {} } : splitUrl(connectionString);
  const source = (name: keyof PgTlsSettings): string =>
    params[name] !== undefined ? `DATABASE_URL ${name}` : VARIABLES[name];
  const mode = params.sslmode ?? settings.sslmode ?? 'prefer';
  const rootcert = params.sslrootcert ?? settings.sslrootcert;
  const cert = params.sslcert ?? settings.sslcert;
  const key = params.sslkey ?? settings.sslkey;

  if (mode === 'disable') return { connectionString: rest, ssl: false };
  if (mode === 'prefer') return { connectionString: rest, ssl: undefined };
  if ((cert === undefined) !== (key === undefined)) {
    throw invalid(
      'set both the client certificate and its key, or neither',
      cert ? source('sslcert') : source('sslkey'),
    );
  }
  const ssl: ConnectionOptions = {};
  if (cert !== undefined && key !== undefined) {
    ssl.cert = readPem(cert, source('sslcert'));
    ssl.key = readPem(key, source('sslkey'));
  }
  if (mode === 'require') {
    ssl.rejectUnauthorized = false;
    return { connectionString: rest, ssl };
  }
  if (rootcert === undefined) {
    throw invalid(
      `sslmode ${mode} needs a CA file (DB_SSLROOTCERT or sslrootcert= in DATABASE_URL)`,
      source('sslmode'),
    );
  }
  ssl.ca = readPem(rootcert, source('sslrootcert'));
  ssl.rejectUnauthorized = true;
  // verify-ca: the chain is checked by rejectUnauthorized; the name check is switched off.
  if (mode === 'verify-ca') ssl.checkServerIdentity = () => undefined;
  return { connectionString: rest, ssl };
}
