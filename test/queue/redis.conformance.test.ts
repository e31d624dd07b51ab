/**
 * Runs the queue conformance suite on the Redis adapter against a real redis-server started by
 * the harness. Every handle is its own RedisQueue with its own connections, like separate processes.
 */
import { afterAll, beforeAll } from 'vitest';
import { createRedisQueue } from '../../src/adapters/redis/queue.js';
import { queueConformance } from '../conformance/queue.js';
import { startRedis, type RedisHandle } from '../harness/redis.js';

let redis: RedisHandle;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

queueConformance(
  'redis',
  async (options) => {
    const queue = await createRedisQueue({ ...options, url: redis.url });
    return { queue, teardown: () => queue.close() };
  },
  // Waits block in BLMOVE; the backlog lives in redis-server, not in the handle.
  { watch: true, claimExpiry: true, multipleConsumers: true, persistence: true },
);
