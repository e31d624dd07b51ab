/**
 * Redis connection helpers for the Redis adapters: client options that fail fast while the server
 * is unreachable (and keep reconnecting in the background), error mapping to NexusError at the
 * adapter edge, and EVALSHA with an EVAL fallback for Lua scripts.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { NexusError } from '../../errors.js';

/** Oldest server with LMOVE/BLMOVE. */
const MIN_VERSION: readonly [number, number] = [6, 2];

/** Validate a redis:// or rediss:// URL; throws CONFIG_INVALID naming REDIS_URL otherwise. */
export function checkRedisUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new NexusError('CONFIG_INVALID', `REDIS_URL is not a valid URL: ${JSON.stringify(url)}`, { cause });
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new NexusError(
      'CONFIG_INVALID',
      `REDIS_URL must start with redis:// or rediss://, got ${parsed.protocol}`,
    );
  }
}

/** Connection URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(invalid url)';
  }
}

/** TLS settings of {@link newRedisClient}. */
export interface RedisTlsOptions {
  /** PEM CA file the server certificate must chain to (REDIS_TLS_CA); default: the system CAs. */
  caFile?: string;
}

/**
 * ioredis' `tls` option: set for rediss:// URLs (server certificate and host name always checked),
 * with the CA read from `caFile`. Throws CONFIG_INVALID naming REDIS_TLS_CA when it cannot be read,
 * or when it is given for a plain redis:// URL (which would silently not use it).
 */
export function redisTlsOptions(url: string, tls: RedisTlsOptions = {}): RedisOptions['tls'] {
  const secure = url.startsWith('rediss:');
  if (tls.caFile === undefined) return secure ? {} : undefined;
  if (!secure) {
    throw new NexusError('CONFIG_INVALID', 'REDIS_TLS_CA is set but REDIS_URL is not a rediss:// URL', {
      details: { problems: ['REDIS_TLS_CA'] },
    });
  }
  try {
    return { ca: readFileSync(tls.caFile, 'utf8') };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new NexusError('CONFIG_INVALID', `REDIS_TLS_CA: cannot read ${tls.caFile} (${code})`, {
      details: { problems: ['REDIS_TLS_CA'] },
    });
  }
}

/**
 * A new, not yet connected client. Commands issued while the link is down fail after one
 * reconnect attempt instead of queueing for long; reconnects continue with capped backoff.
 * Credentials come from the URL (`rediss://user:password@host:port`: AUTH with an ACL user).
 */
export function newRedisClient(url: string, tls: RedisTlsOptions = {}): Redis {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 5), 1000),
    tls: redisTlsOptions(url, tls),
  });
  // Without a listener ioredis prints every reconnect failure; failures surface on commands instead.
  client.on('error', () => undefined);
  return client;
}

/** Connect `client` and check the server can run the adapter (Redis >= 6.2). */
export async function connectRedis(client: Redis, url: string): Promise<void> {
  // connect() often rejects with a bare "Connection is closed."; the reason (WRONGPASS, a TLS
  // certificate error) came as an 'error' event just before.
  let reason: unknown;
  const onError = (error: unknown): void => {
    reason = error;
  };
  client.on('error', onError);
  try {
    await client.connect();
    const info = await client.info('server');
    const match = /redis_version:(\d+)\.(\d+)/.exec(info);
    const major = Number(match?.[1] ?? 0);
    const minor = Number(match?.[2] ?? 0);
    if (major < MIN_VERSION[0] || (major === MIN_VERSION[0] && minor < MIN_VERSION[1])) {
      throw new NexusError(
        'BACKEND_UNAVAILABLE',
        `Redis at ${redactUrl(url)} is version ${major}.${minor}; 6.2 or newer is needed (LMOVE/BLMOVE)`,
      );
    }
  } catch (error) {
    client.disconnect();
    const closed = error instanceof Error && error.message === 'Connection is closed.';
    throw toNexusError(
      closed && reason !== undefined ? reason : error,
      `cannot connect to Redis at ${redactUrl(url)}`,
    );
  } finally {
    client.off('error', onError);
  }
}

/** Map a client error to NexusError('BACKEND_UNAVAILABLE'); NexusErrors pass through. */
export function toNexusError(error: unknown, message: string): NexusError {
  if (error instanceof NexusError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new NexusError('BACKEND_UNAVAILABLE', `${message}: ${detail}`, { cause: error });
}

/** A Lua script run by SHA, loaded on first NOSCRIPT. Replies keep bulk strings as Buffers. */
export class LuaScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  async run(
    client: Redis,
    keys: readonly string[],
    args: readonly (string | Buffer | number)[],
  ): Promise<unknown> {
    try {
      return await client.callBuffer('EVALSHA', this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return client.callBuffer('EVAL', this.source, keys.length, ...keys, ...args);
    }
  }
}
