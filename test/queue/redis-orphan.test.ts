/**
 * Regression: a BLMOVE that Redis executed but whose reply was lost (Redis died, or ioredis resent it
 * on reconnect) leaves an id in a live consumer's processing list with no claim. The consumer's next
 * claim must hand it out; no sweep would, since the consumer is alive.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisQueue } from '../../src/adapters/redis/queue.js';
import { processingKey } from '../../src/adapters/redis/queue-scripts.js';
import { startRedis, type RedisHandle } from '../harness/redis.js';

let redis: RedisHandle;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

describe('redis queue: an id moved without a claim', () => {
  it('is handed out by the next claim of the consumer that holds it', async () => {
    const queue = await createRedisQueue({ topic: 'orphan', url: redis.url, claimTtlMs: 60_000 });
    const raw = new Redis(redis.url);
    try {
      // A first claim: a consumer's first claim recovers its own list (restart case), so the orphan
      // must appear after it to exercise the live-consumer path.
      expect(await queue.claim('c1', { max: 1 })).toEqual([]);
      await queue.enqueue(Buffer.from('first'));
      await queue.enqueue(Buffer.from('second'));
      // What a BLMOVE whose reply never arrived leaves behind: the id moved, no claim recorded.
      const moved = await raw.lmove('orphan', processingKey('orphan', 'c1'), 'LEFT', 'RIGHT');
      expect(moved).not.toBeNull();
      const items = await queue.claim('c1', { max: 2 });
      expect(items.map((i) => Buffer.from(i.payload).toString())).toEqual(['first', 'second']);
      for (const item of items) expect(await queue.ack(item)).toBe(true);
      expect(await queue.depth()).toBe(0);
    } finally {
      raw.disconnect();
      await queue.close();
    }
  });
});
