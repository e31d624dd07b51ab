/**
 * The traditional pipeline with every backend connection on TLS and logged in (issue 17): streamer ->
 * Redis (TLS only, ACL user, default user off) -> collector -> PostgreSQL (hostssl only, verify-full).
 * Every secret comes from a file (REDIS_URL_FILE, DB_PASSWORD_FILE); the bundled sample's 2,470
 * rows arrive in PostgreSQL.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';
import { runStreamerProcess, startCollectorProcess } from '../../src/runtime/roles.js';
import { createLogger } from '../../src/util/logger.js';
import { startPostgres, TEST_PG_PASSWORD, type PostgresHarness } from '../harness/postgres.js';
import { startRedis, type RedisHandle } from '../harness/redis.js';
import { makeTestCerts, type TestCerts } from '../harness/tls-certs.js';

const REDIS_PASSWORD = 'redis-Secr3t-pw';
const logger = createLogger('silent');
let certs: TestCerts;
let redis: RedisHandle;
let postgres: PostgresHarness;
let config: Config;

beforeAll(async () => {
  certs = await makeTestCerts();
  const tls = { certFile: certs.certFile, keyFile: certs.keyFile };
  [redis, postgres] = await Promise.all([
    startRedis({
      tls: { ...tls, caFile: certs.caFile },
      users: ['default off', `nexus on >${REDIS_PASSWORD} ~* &* +@all`],
    }),
    startPostgres({ tls }),
  ]);
  await postgres.createDatabase('traditional_tls');
  const redisUrlFile = join(certs.dir, 'redis-url');
  const dbPasswordFile = join(certs.dir, 'db-password');
  writeFileSync(redisUrlFile, `rediss://nexus:${REDIS_PASSWORD}@127.0.0.1:${redis.port}\n`, { mode: 0o600 });
  writeFileSync(dbPasswordFile, `${TEST_PG_PASSWORD}\n`, { mode: 0o600 });
  config = loadConfig({
    CLUSTER_ID: 'dgx-lab',
    ENABLE_NEXUS: 'false',
    LOG_LEVEL: 'silent',
    POLL_INTERVAL: '200ms',
    REDIS_URL_FILE: redisUrlFile,
    REDIS_TLS_CA: certs.caFile,
    DB_HOST: '127.0.0.1',
    DB_PORT: String(postgres.port),
    DB_USER: postgres.user,
    DB_PASSWORD_FILE: dbPasswordFile,
    DB_NAME: 'traditional_tls',
    DB_SSLMODE: 'verify-full',
    DB_SSLROOTCERT: certs.caFile,
  });
}, 120_000);

afterAll(async () => {
  await Promise.all([redis?.stop(), postgres?.stop()]);
  await certs?.remove();
});

describe('traditional pipeline over TLS with credentials', () => {
  it('streams the bundled sample through Redis into PostgreSQL: 2,470 samples', async () => {
    const summary = await runStreamerProcess(config, logger, { spec: bundledSamplePath() });
    expect(summary.rows).toBe(2470);
    const collector = await startCollectorProcess(config, logger);
    try {
      const deadline = Date.now() + 60_000;
      while ((await collector.store.countSamples()) < 2470) {
        if (Date.now() > deadline) throw new Error('collector did not store the sample');
        await new Promise((r) => setTimeout(r, 100));
      }
      while ((await collector.queues[0]!.depth()) > 0) {
        if (Date.now() > deadline) throw new Error('collector did not drain the Redis list');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await collector.store.countSamples()).toBe(2470);
    } finally {
      await collector.close();
    }
  }, 120_000);
});
