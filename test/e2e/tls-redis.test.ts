/**
 * Redis over TLS with an ACL user (issue 17): a redis-server that serves only TLS (`--port 0`)
 * and has the default user switched off; the Redis queue, opened from the configuration
 * (REDIS_URL_FILE with `rediss://user:password@`, REDIS_TLS_CA), enqueues and claims through it.
 * A wrong password, a plain-TCP client and an unknown CA are refused with clear errors.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisQueue } from '../../src/adapters/redis/queue.js';
import { loadConfig } from '../../src/config/config.js';
import { NexusError } from '../../src/errors.js';
import { openQueue } from '../../src/runtime/registry.js';
import { startRedis, type RedisHandle } from '../harness/redis.js';
import { makeTestCerts, type TestCerts } from '../harness/tls-certs.js';

const PASSWORD = 'redis-Secr3t-pw';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let certs: TestCerts;
let redis: RedisHandle;
let port: number;

/** URL with credentials: `rediss://user:password@127.0.0.1:<port>`. */
function urlWith(user: string, password: string, scheme = 'rediss'): string {
  return `${scheme}://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}`;
}

async function errorOf(promise: Promise<unknown>): Promise<NexusError> {
  const started = Date.now();
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(NexusError);
  // Refused, not hung: well inside the client's 5 s connect timeout plus a loaded machine's slack.
  expect(Date.now() - started).toBeLessThan(20_000);
  return error as NexusError;
}

beforeAll(async () => {
  certs = await makeTestCerts();
  redis = await startRedis({
    tls: { certFile: certs.certFile, keyFile: certs.keyFile, caFile: certs.caFile },
    users: ['default off', `nexus on >${PASSWORD} ~* &* +@all`],
  });
  port = redis.port;
}, 60_000);

afterAll(async () => {
  await redis?.stop();
  await certs?.remove();
});

describe('Redis with TLS and an ACL user', () => {
  it('enqueues and claims through the queue opened from REDIS_URL_FILE and REDIS_TLS_CA', async () => {
    const urlFile = join(certs.dir, 'redis-url');
    writeFileSync(urlFile, `${urlWith('nexus', PASSWORD)}\n`, { mode: 0o600 });
    const config = loadConfig({ REDIS_URL_FILE: urlFile, REDIS_TLS_CA: certs.caFile });
    expect(config.REDIS_URL).toBe(urlWith('nexus', PASSWORD));
    const queue = await openQueue('redis', config, { topic: 'tls-test', maxDepth: 100 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 3; i += 1) ids.push(await queue.enqueue(encoder.encode(`batch-${i}`)));
      expect(await queue.depth()).toBe(3);
      const items = await queue.claim('tls-consumer', { max: 10 });
      expect(items.map((item) => item.id)).toEqual(ids);
      expect(items.map((item) => decoder.decode(item.payload))).toEqual(['batch-0', 'batch-1', 'batch-2']);
      for (const item of items) expect(await queue.ack(item)).toBe(true);
      expect(await queue.depth()).toBe(0);
    } finally {
      await queue.close();
    }
  }, 60_000);

  it('refuses a wrong password with the server reason', async () => {
    const error = await errorOf(
      createRedisQueue({ topic: 't', url: urlWith('nexus', 'wrong-pw'), tlsCaFile: certs.caFile }),
    );
    expect(error.code).toBe('BACKEND_UNAVAILABLE');
    expect(error.message).toMatch(/WRONGPASS/);
    expect(error.message).not.toContain('wrong-pw');
  }, 60_000);

  it('refuses a client without a login (default user off)', async () => {
    const error = await errorOf(
      createRedisQueue({ topic: 't', url: `rediss://127.0.0.1:${port}`, tlsCaFile: certs.caFile }),
    );
    expect(error.code).toBe('BACKEND_UNAVAILABLE');
    expect(error.message).toMatch(/NOAUTH/);
  }, 60_000);

  it('refuses plain TCP to the TLS port', async () => {
    const error = await errorOf(createRedisQueue({ topic: 't', url: urlWith('nexus', PASSWORD, 'redis') }));
    expect(error.code).toBe('BACKEND_UNAVAILABLE');
    expect(error.message).toContain(`cannot connect to Redis at redis://nexus:***@127.0.0.1:${port}`);
    expect(error.message).not.toContain(PASSWORD);
  }, 60_000);

  it('refuses a server certificate from another CA', async () => {
    const error = await errorOf(
      createRedisQueue({ topic: 't', url: urlWith('nexus', PASSWORD), tlsCaFile: certs.otherCaFile }),
    );
    expect(error.code).toBe('BACKEND_UNAVAILABLE');
    expect(error.message).toMatch(/certificate/i);
  }, 60_000);

  it('rejects REDIS_TLS_CA that cannot be read, or set for a redis:// URL', async () => {
    const missing = await errorOf(
      createRedisQueue({
        topic: 't',
        url: urlWith('nexus', PASSWORD),
        tlsCaFile: join(certs.dir, 'nope.pem'),
      }),
    );
    expect(missing.code).toBe('CONFIG_INVALID');
    expect(missing.message).toMatch(/^REDIS_TLS_CA: cannot read .*nope\.pem \(ENOENT\)$/);
    const plain = await errorOf(
      createRedisQueue({ topic: 't', url: urlWith('nexus', PASSWORD, 'redis'), tlsCaFile: certs.caFile }),
    );
    expect(plain.code).toBe('CONFIG_INVALID');
    expect(plain.message).toContain('REDIS_URL is not a rediss:// URL');
  });
});
