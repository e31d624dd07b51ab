/**
 * Authentication on the streamer's remote write port: `streamer --remote-write-port` with AUTH=token
 * looks API tokens up in the collectors' PostgreSQL. Without a token the write is refused 401, a
 * `read` token 403, a `write` token is taken (and its samples stored by a collector through Redis),
 * a revoked token is refused within about a second, and no token text reaches the streamer's output.
 * The bind rule of the API holds for the receiver too: a non-loopback HOST without authentication
 * does not start (the `--insecure-no-auth` warning is checked in test/auth/rules.test.ts without
 * binding an open port), and AUTH=token without PostgreSQL names what to set.
 */
import snappy from 'snappyjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenStoreOf, type TokenStore } from '../../src/auth/token-store.js';
import { loadConfig } from '../../src/config/config.js';
import { WriteRequestType } from '../../src/ingest/remote-write.js';
import { startCollectorProcess, type CollectorProcess } from '../../src/runtime/roles.js';
import { createLogger } from '../../src/util/logger.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import { startRedis, type RedisHandle } from '../harness/redis.js';
import { killAll, spawnCli, type CliProcess } from '../support/cli-process.js';
import { until } from '../support/until.js';

const CLUSTER = 'rw-auth';
const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);

let redis: RedisHandle;
let postgres: PostgresHarness;
let databaseUrl: string;
let collector: CollectorProcess;
let tokens: TokenStore;
let streamer: CliProcess;
let receiver: string;

/** A remote write body with one DCGM sample of GPU 0 on `host` at `timestamp`. */
function body(host: string, timestamp: number, value: number): Buffer {
  const message = WriteRequestType.fromObject({
    timeseries: [
      {
        labels: [
          { name: '__name__', value: 'DCGM_FI_DEV_GPU_UTIL' },
          { name: 'gpu', value: '0' },
          { name: 'UUID', value: `GPU-${host}-0` },
          { name: 'device', value: 'nvidia0' },
          { name: 'modelName', value: 'NVIDIA H100 80GB HBM3' },
          { name: 'Hostname', value: host },
        ],
        samples: [{ value, timestamp }],
      },
    ],
  });
  return Buffer.from(snappy.compress(WriteRequestType.encode(message).finish()));
}

function write(payload: Buffer, token?: string): Promise<Response> {
  return fetch(`${receiver}/api/v1/write`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'snappy',
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: payload,
  });
}

const streamerEnv = (extra: Record<string, string>): Record<string, string> => ({
  CLUSTER_ID: CLUSTER,
  REDIS_URL: redis.url,
  REDIS_TOPICS: 'rw-auth',
  ENABLE_NEXUS: 'false',
  ETCD_ENDPOINTS: '',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'debug',
  ...extra,
});

beforeAll(async () => {
  [redis, postgres] = await Promise.all([startRedis(), startPostgres()]);
  databaseUrl = await postgres.createDatabase('streamer_rw_auth');
  // The collector migrates the database, which creates the token table the streamer reads.
  collector = await startCollectorProcess(
    loadConfig(
      {},
      {
        CLUSTER_ID: CLUSTER,
        REDIS_URL: redis.url,
        REDIS_TOPICS: 'rw-auth',
        DATABASE_URL: databaseUrl,
        ENABLE_NEXUS: false,
        LOG_LEVEL: 'silent',
        POLL_INTERVAL: '100ms',
      },
    ),
    createLogger('silent'),
  );
  tokens = tokenStoreOf(collector.store)!;
  streamer = spawnCli(
    ['streamer', '--remote-write-port', '0'],
    streamerEnv({ AUTH: 'token', DATABASE_URL: databaseUrl }),
  );
  const line = await streamer.waitFor(/"address":"http:\/\/127\.0\.0\.1:\d+\/api\/v1\/write"/, 60_000);
  receiver = /http:\/\/127\.0\.0\.1:\d+/.exec(line)![0];
}, 120_000);

afterAll(async () => {
  killAll();
  await collector?.close();
  await Promise.all([redis?.stop(), postgres?.stop()]);
});

describe('streamer --remote-write-port with AUTH=token', () => {
  it('refuses no token (401) and a read token (403), takes a write token, and the sample is stored', async () => {
    const writer = (await tokens.create('prometheus', ['write'])).token;
    const reader = (await tokens.create('grafana', ['read'])).token;

    const none = await write(body('rw-none', T0, 1));
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    const bogus = await write(body('rw-bogus', T0, 1), 'nxt_not-a-real-token');
    expect(bogus.status).toBe(401);
    const readOnly = await write(body('rw-read', T0, 2), reader);
    expect(readOnly.status).toBe(403);
    expect(((await readOnly.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');

    const taken = await write(body('rw-ok', T0, 42), writer);
    expect(taken.status).toBe(204);
    await until('the collector to store the written sample', 30_000, async () => {
      const rows = await collector.store.querySamples({
        gpu: { clusterId: CLUSTER, hostname: 'rw-ok', gpuId: '0' },
      });
      return rows.length === 1;
    });
    const [stored] = await collector.store.querySamples({
      gpu: { clusterId: CLUSTER, hostname: 'rw-ok', gpuId: '0' },
    });
    expect(stored).toMatchObject({ metric: 'DCGM_FI_DEV_GPU_UTIL', value: 42, timestampMs: T0 });
    // Refused writes stored nothing.
    for (const host of ['rw-none', 'rw-bogus', 'rw-read'])
      expect(
        await collector.store.querySamples({ gpu: { clusterId: CLUSTER, hostname: host, gpuId: '0' } }),
      ).toEqual([]);
    // /health stays public: a load balancer probes it without a token.
    expect((await fetch(`${receiver}/health`)).status).toBe(200);
  });

  it('refuses a revoked token within about a second, and never prints a token', async () => {
    const { token, record } = await tokens.create('rotating', ['write']);
    expect((await write(body('rw-rotate', T0, 1), token)).status).toBe(204);
    const revokedAt = Date.now();
    await tokens.revoke(record.id);
    let refusedAfterMs = -1;
    await until('the revoked token to be refused', 10_000, async () => {
      const status = (await write(body('rw-rotate', T0 + 10_000, 2), token)).status;
      if (status === 401) refusedAfterMs = Date.now() - revokedAt;
      return status === 401;
    });
    // The receiver trusts an accepted credential for at most a second (src/auth/authenticator.ts).
    expect(refusedAfterMs).toBeGreaterThanOrEqual(0);
    expect(refusedAfterMs).toBeLessThan(3_000);
    console.log(`streamer receiver: revoked token refused after ${refusedAfterMs} ms`);
    const output = streamer.output();
    expect(output.length).toBeGreaterThan(0);
    expect(output).not.toContain(token);
    expect(output).not.toMatch(/nxt_[A-Za-z0-9_-]{20,}/);
  });
});

describe('the receiver refuses unsafe or incomplete settings', () => {
  it('does not serve a non-loopback HOST without authentication (and binds nothing)', async () => {
    // The accepted insecure variant (--insecure-no-auth, which warns) is checked without binding an
    // open port, in test/auth/rules.test.ts: servers in tests listen on loopback only.
    const refused = spawnCli(['streamer', '--remote-write-port', '0'], streamerEnv({ HOST: '0.0.0.0' }));
    expect(await refused.exited).not.toBe(0);
    expect(refused.output()).toMatch(/HOST=0\.0\.0\.0 serves other machines, but AUTH=none/);
    expect(refused.output()).toContain('--insecure-no-auth');
    expect(refused.output()).not.toMatch(/api\/v1\/write"/);
  }, 60_000);

  it('names DATABASE_URL when AUTH=token has no PostgreSQL to look tokens up in', async () => {
    const refused = spawnCli(['streamer', '--remote-write-port', '0'], streamerEnv({ AUTH: 'token' }));
    expect(await refused.exited).not.toBe(0);
    expect(refused.output()).toMatch(/looks tokens up in PostgreSQL: set DATABASE_URL/);
  }, 60_000);
});
