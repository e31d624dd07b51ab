/**
 * The traditional pipeline: streamer -> Redis list -> collector -> PostgreSQL -> REST-only API with the
 * hierarchy derived from PostgreSQL (no etcd). It must answer the REST API for the bundled sample exactly
 * as embedded mode does, and `LLEN telemetry` must show the backlog while no collector runs.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';
import { startEmbedded } from '../../src/runtime/embedded.js';
import { runStreamerProcess, startApiProcess, startCollectorProcess } from '../../src/runtime/roles.js';
import { createLogger } from '../../src/util/logger.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import { startRedis, type RedisHandle } from '../harness/redis.js';
import { apiSnapshot } from '../support/api-snapshot.js';

const logger = createLogger('silent');
let redis: RedisHandle;
let postgres: PostgresHarness;
let config: Config;

beforeAll(async () => {
  [redis, postgres] = await Promise.all([startRedis({ appendonly: true }), startPostgres()]);
  const databaseUrl = await postgres.createDatabase('traditional');
  config = loadConfig(
    {},
    {
      CLUSTER_ID: 'dgx-lab',
      REDIS_URL: redis.url,
      DATABASE_URL: databaseUrl,
      ENABLE_NEXUS: false,
      HOST: '127.0.0.1',
      PORT: 0,
      LOG_LEVEL: 'silent',
      POLL_INTERVAL: '200ms',
    },
  );
});

afterAll(async () => {
  await Promise.all([redis?.stop(), postgres?.stop()]);
});

describe('traditional pipeline (Redis + PostgreSQL, no etcd)', () => {
  it('shows the backlog with LLEN while no collector runs, then drains to 0', async () => {
    const summary = await runStreamerProcess(config, logger, { spec: bundledSamplePath() });
    expect(summary.rows).toBe(2470);
    const client = new Redis(redis.url);
    try {
      expect(await client.llen('telemetry')).toBe(summary.batches);
      const collector = await startCollectorProcess(config, logger);
      const deadline = Date.now() + 30_000;
      while ((await client.llen('telemetry')) > 0 || (await collector.queues[0]!.depth()) > 0) {
        if (Date.now() > deadline) throw new Error('collector did not drain the Redis list');
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(await client.llen('telemetry')).toBe(0);
      expect(await collector.store.countSamples()).toBe(2470);
      await collector.close();
    } finally {
      client.disconnect();
    }
  });

  it('answers the REST API for the bundled sample exactly as embedded mode does', async () => {
    const api = await startApiProcess(config, logger);
    const embedded = await startEmbedded({
      config: loadConfig({}, { CLUSTER_ID: 'dgx-lab', MEMORY: true, LOG_LEVEL: 'silent' }),
      logger,
      listen: false,
    });
    try {
      await embedded.ingest({ spec: bundledSamplePath() });
      const fromEmbedded = await apiSnapshot(
        async (url) => (await embedded.app.inject(url)).json(),
        'dgx-lab',
      );
      const fromTraditional = await apiSnapshot(
        async (url) => (await fetch(`${api.address}${url}`)).json(),
        'dgx-lab',
      );
      expect(fromTraditional.cluster).toEqual({
        cluster_id: 'dgx-lab',
        cluster_name: 'dgx-lab cluster',
        region: 'local',
        metadata: { total_hosts: 31, total_gpus: 247, active_hosts: 31, active_gpus: 247 },
      });
      expect(fromTraditional).toEqual(fromEmbedded);
    } finally {
      await embedded.close();
      await api.close();
    }
  });
});
