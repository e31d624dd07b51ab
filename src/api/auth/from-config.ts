/**
 * The API's authentication from the configuration (AUTH, JWT_*, METRICS_AUTH), the same for the
 * streamer's remote write receiver (whose tokens live in PostgreSQL, as the API's do), and the bind
 * safety rule of the serving commands: a non-loopback HOST without authentication starts only with
 * `--insecure-no-auth` (INSECURE_NO_AUTH=true), and then warns every minute.
 */
import { Authenticator } from '../../auth/authenticator.js';
import { createJwtVerifier } from '../../auth/jwt.js';
import { tokenStoreOf, type TokenStore } from '../../auth/token-store.js';
import { isLoopbackHost, type Config } from '../../config/config.js';
import { NexusError } from '../../errors.js';
import type { SampleStore } from '../../ports/sample-store.js';
import type { Logger } from '../../util/logger.js';
import type { AuthSettings } from './plugin.js';

/** How often the insecure-bind warning repeats. */
export const INSECURE_WARNING_INTERVAL_MS = 60_000;

/**
 * The app's auth settings, or undefined when AUTH=none. Tokens live in the sample store's
 * database (throws CONFIG_INVALID when that store has none).
 */
export function authFromConfig(config: Config, store: SampleStore, logger: Logger): AuthSettings | undefined {
  const { token, jwt } = config.AUTH;
  if (!token && !jwt) return undefined;
  const tokens = token ? tokenStoreOf(store) : undefined;
  if (token && tokens === undefined)
    throw new NexusError(
      'CONFIG_INVALID',
      'AUTH=token needs a sample store that keeps API tokens (PGlite, SQLite or PostgreSQL)',
      {
        details: { variable: 'AUTH' },
      },
    );
  return settingsOf(config, tokens, logger);
}

/**
 * `start --memory` with API tokens only (no JWT): the token table would live in process memory,
 * where `nexus-telemetry token create` cannot reach it, so no request could ever be authorised.
 * Refused before anything starts (in-process callers, e.g. tests, mint tokens through the store).
 * @throws NexusError CONFIG_INVALID naming what to do instead
 */
export function checkTokensReachable(config: Config): void {
  const { token, jwt } = config.AUTH;
  if (!token || jwt || !config.MEMORY) return;
  throw new NexusError(
    'CONFIG_INVALID',
    'AUTH=token with --memory (MEMORY=true): the token table would be in process memory, where `nexus-telemetry token create` cannot add the first admin token. Keep a data directory (drop --memory, then `nexus-telemetry token create --name <name> --scope admin`), or use AUTH=jwt',
    { details: { variable: 'AUTH' } },
  );
}

/** Auth of the streamer's remote write receiver, and what to close when the streamer stops. */
export interface ReceiverAuth {
  settings: AuthSettings | undefined;
  close(): Promise<void>;
}

/**
 * Authentication of the streamer's remote write port (REMOTE_WRITE_PORT), from the same variables
 * as the API's. JWTs need nothing more; API tokens are looked up in the token table of the
 * PostgreSQL database the collectors and API processes share (DATABASE_URL or DB_*), which the
 * streamer opens only for that (it runs no migrations: a collector or API process creates the table).
 * @throws NexusError CONFIG_INVALID when AUTH includes `token` and no PostgreSQL is configured.
 */
export async function receiverAuthFromConfig(config: Config, logger: Logger): Promise<ReceiverAuth> {
  const { token, jwt } = config.AUTH;
  if (!token && !jwt) return { settings: undefined, close: async () => undefined };
  if (!token) return { settings: settingsOf(config, undefined, logger), close: async () => undefined };
  if (!config.DATABASE_URL && !config.DB_HOST)
    throw new NexusError(
      'CONFIG_INVALID',
      "AUTH=token on the streamer's remote write port looks tokens up in PostgreSQL: set DATABASE_URL (or DB_HOST/DB_*) to the collectors' database, or use AUTH=jwt",
      { details: { variable: 'DATABASE_URL' } },
    );
  const { openSampleStore } = await import('../../runtime/registry.js');
  const store = await openSampleStore('postgres', config, logger);
  return {
    settings: settingsOf(config, tokenStoreOf(store), logger),
    close: () => store.close(),
  };
}

function settingsOf(config: Config, tokens: TokenStore | undefined, logger: Logger): AuthSettings {
  const { jwt } = config.AUTH;
  const log = logger.child({ component: 'auth' });
  const verifier =
    jwt && config.JWT_JWKS_URL !== undefined
      ? createJwtVerifier(
          {
            jwksUrl: config.JWT_JWKS_URL,
            issuer: config.JWT_ISSUER,
            audience: config.JWT_AUDIENCE,
            scopeClaim: config.JWT_SCOPE_CLAIM,
          },
          (reason) => log.debug({ reason }, 'bearer JWT refused'),
        )
      : undefined;
  return {
    authenticator: new Authenticator({ tokens, jwt: verifier }),
    tokens,
    metricsAuth: config.METRICS_AUTH,
  };
}

/** Whether the API (or a streamer's receiver) would serve other machines without authentication. */
export function insecureBind(config: Config): boolean {
  return !isLoopbackHost(config.HOST) && !config.AUTH.token && !config.AUTH.jwt;
}

/**
 * Refuse a non-loopback bind without authentication unless INSECURE_NO_AUTH is set; when it is,
 * warn now and every minute. Returns a function that stops the warnings.
 */
export function checkBind(
  config: Config,
  logger: Logger,
  exposure: { service: string; risk: string } = {
    service: 'the API serves every interface',
    risk: 'anyone who reaches the port reads everything',
  },
): () => void {
  if (!insecureBind(config)) return () => undefined;
  if (!config.INSECURE_NO_AUTH)
    throw new NexusError(
      'CONFIG_INVALID',
      `HOST=${config.HOST} serves other machines, but AUTH=none: set AUTH=token (or jwt; see docs/security.md), ` +
        'bind to 127.0.0.1, or pass --insecure-no-auth (INSECURE_NO_AUTH=true) to serve without authentication',
      { details: { variable: 'HOST' } },
    );
  const warn = (): void =>
    logger.warn(
      { host: config.HOST },
      `${exposure.service} WITHOUT authentication (--insecure-no-auth): ${exposure.risk}; set AUTH (docs/security.md)`,
    );
  warn();
  const timer = setInterval(warn, INSECURE_WARNING_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
