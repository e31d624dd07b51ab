/**
 * Redis queue behaviour beyond the shared conformance suite: the key layout operators see,
 * error mapping when the server is down, and recovery of a dead consumer's claims (restart under
 * the same id, liveness lapse seen by another consumer, a real SIGKILLed consumer process).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisQueue, type RedisQueue, type RedisQueueOptions } from '../../src/adapters/redis/queue.js';
import { hasCode } from '../../src/errors.js';
import type { ClaimedItem } from '../../src/ports/queue.js';
import { startRedis, type RedisHandle } from '../harness/redis.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const adapterUrl = pathToFileURL(
  fileURLToPath(new URL('../../src/adapters/redis/queue.ts', import.meta.url)),
).href;

let redis: RedisHandle;
let raw: Redis;
const opened: RedisQueue[] = [];
let topicCounter = 0;

function topic(label: string): string {
  topicCounter += 1;
  return `redis-${label}-${Date.now().toString(36)}-${topicCounter}`;
}

async function open(options: Omit<RedisQueueOptions, 'url'>, url = redis.url): Promise<RedisQueue> {
  const queue = await createRedisQueue({ ...options, url });
  opened.push(queue);
  return queue;
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

beforeAll(async () => {
  redis = await startRedis();
  raw = new Redis(redis.url);
});

afterEach(async () => {
  for (const queue of opened.splice(0)) await queue.close();
});

afterAll(async () => {
  raw?.disconnect();
  await redis?.stop();
});

describe('redis queue layout', () => {
  it('keeps the backlog in a list named exactly the topic, claims in per-consumer lists', async () => {
    const name = topic('layout');
    const queue = await open({ topic: name });
    for (let i = 0; i < 3; i++) await queue.enqueue(encoder.encode(`row-${i}`));
    expect(await raw.llen(name)).toBe(3);
    expect(await raw.type(name)).toBe('list');

    const [item] = await queue.claim('collector-1');
    expect(await raw.llen(name)).toBe(2);
    expect(await raw.lrange(`${name}:processing:collector-1`, 0, -1)).toEqual([item?.id]);
    expect(await raw.hget(`${name}:deliveries`, item?.id ?? '')).toBe('1');
    expect(await queue.depth()).toBe(3);

    expect(await queue.ack(item as ClaimedItem)).toBe(true);
    expect(await raw.llen(`${name}:processing:collector-1`)).toBe(0);
    expect(await raw.hexists(`${name}:items`, item?.id ?? '')).toBe(0);
    expect(await raw.hlen(`${name}:claims`)).toBe(0);
    expect(await queue.depth()).toBe(2);
  });
});

describe('redis queue errors', () => {
  it('rejects a bad URL with CONFIG_INVALID and an unreachable server with BACKEND_UNAVAILABLE', async () => {
    expect(
      hasCode(await errorOf(createRedisQueue({ topic: 't', url: 'http://127.0.0.1:1' })), 'CONFIG_INVALID'),
    ).toBe(true);
    const scratch = await startRedis();
    const deadUrl = scratch.url;
    await scratch.stop();
    const error = await errorOf(createRedisQueue({ topic: 't', url: deadUrl }));
    expect(hasCode(error, 'BACKEND_UNAVAILABLE'), String(error)).toBe(true);
  });

  it('maps an outage to BACKEND_UNAVAILABLE, then works again after restart with nothing lost', async () => {
    const server = await startRedis({ appendonly: true });
    try {
      const name = topic('outage');
      const queue = await open({ topic: name }, server.url);
      await queue.enqueue(encoder.encode('before-1'));
      await queue.enqueue(encoder.encode('before-2'));

      await server.kill();
      const started = performance.now();
      const enqueueError = await errorOf(queue.enqueue(encoder.encode('during')));
      expect(hasCode(enqueueError, 'BACKEND_UNAVAILABLE'), String(enqueueError)).toBe(true);
      expect((enqueueError as Error).message).toContain(name);
      expect(hasCode(await errorOf(queue.claim('c1')), 'BACKEND_UNAVAILABLE')).toBe(true);
      expect(hasCode(await errorOf(queue.depth()), 'BACKEND_UNAVAILABLE')).toBe(true);
      expect(performance.now() - started).toBeLessThan(10_000);

      await server.restart();
      let depth: number | undefined;
      for (let attempt = 0; attempt < 100 && depth === undefined; attempt++) {
        depth = await queue.depth().catch(() => undefined);
        if (depth === undefined) await sleep(100);
      }
      expect(depth).toBe(2);
      const items = await queue.claim('c1', { max: 10 });
      expect(items.map((item) => decoder.decode(item.payload))).toEqual(['before-1', 'before-2']);
    } finally {
      for (const queue of opened.splice(0)) await queue.close();
      await server.stop();
    }
  });
});

describe('redis queue consumer recovery', () => {
  it('a consumer restarting under the same id takes back its unacked items at once', async () => {
    const name = topic('restart');
    const first = await open({ topic: name, claimTtlMs: 60_000, consumerLivenessMs: 60_000 });
    for (let i = 0; i < 4; i++) await first.enqueue(encoder.encode(`r${i}`));
    const held = await first.claim('collector-7', { max: 3 });
    expect(held).toHaveLength(3);
    await first.close(); // as after a crash: nothing released

    const other = await open({ topic: name, claimTtlMs: 60_000, consumerLivenessMs: 60_000 });
    const fresh = await other.claim('collector-8', { max: 10 });
    expect(fresh.map((item) => decoder.decode(item.payload))).toEqual(['r3']);

    const restarted = await open({ topic: name, claimTtlMs: 60_000, consumerLivenessMs: 60_000 });
    const started = performance.now();
    const again = await restarted.claim('collector-7', { max: 10 });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(again.map((item) => decoder.decode(item.payload))).toEqual(['r0', 'r1', 'r2']);
    expect(again.map((item) => item.deliveries)).toEqual([2, 2, 2]);
    for (const item of again) expect(await restarted.ack(item)).toBe(true);
  });

  it('another consumer reclaims a dead consumer’s items once its liveness lapses, not before', async () => {
    const name = topic('liveness');
    // Liveness 1.5 s: the heartbeat (every liveness / 3) must survive event-loop stalls of a loaded machine.
    const options = { topic: name, claimTtlMs: 60_000, consumerLivenessMs: 1_500 };
    const doomed = await open(options);
    const survivor = await open(options);
    await doomed.enqueue(encoder.encode('in-flight'));
    const [held] = await doomed.claim('doomed');

    // While its process runs, the heartbeat keeps the claim alive well past consumerLivenessMs.
    expect(await survivor.claim('survivor', { waitMs: 3_000 })).toEqual([]);

    await doomed.close();
    const started = performance.now();
    const [taken] = await survivor.claim('survivor', { waitMs: 5000 });
    const waited = performance.now() - started;
    expect(taken?.id).toBe(held?.id);
    expect(taken?.deliveries).toBe(2);
    expect(waited).toBeLessThan(5_000);
    expect(await survivor.ack(taken as ClaimedItem)).toBe(true);
    expect(await survivor.depth()).toBe(0);
  });

  it('a paused consumer whose liveness lapsed cannot ack: its item went back', async () => {
    const name = topic('zombie');
    const zombie = await open({ topic: name, consumerLivenessMs: 150 });
    const other = await open({ topic: name, consumerLivenessMs: 150 });
    await zombie.enqueue(encoder.encode('paused'));
    const [held] = await zombie.claim('zombie');
    // Block the event loop, as a GC pause or SIGSTOP would: no heartbeat goes out.
    const until = Date.now() + 400;
    while (Date.now() < until) {
      /* spin */
    }
    expect(await zombie.ack(held as ClaimedItem)).toBe(false);
    const [again] = await other.claim('other');
    expect(again?.id).toBe(held?.id);
    expect(again?.deliveries).toBe(2);
    expect(await other.ack(again as ClaimedItem)).toBe(true);
  });
});

interface ChildReport {
  claimed: string[];
  acked: string[];
}

/**
 * Start a consumer in its own Node process that claims `max` items, acks the first `ack` of them,
 * reports, then idles (heartbeat running) until killed.
 */
function startChildConsumer(
  name: string,
  consumerId: string,
  max: number,
  ack: number,
  livenessMs: number,
): Promise<{ report: ChildReport; kill: () => Promise<void> }> {
  const source = `
    import { createRedisQueue } from ${JSON.stringify(adapterUrl)};
    const queue = await createRedisQueue({ topic: ${JSON.stringify(name)}, url: ${JSON.stringify(redis.url)},
      claimTtlMs: 60000, consumerLivenessMs: ${livenessMs} });
    const items = await queue.claim(${JSON.stringify(consumerId)}, { max: ${max}, waitMs: 5000 });
    const acked = [];
    for (const item of items.slice(0, ${ack})) if (await queue.ack(item)) acked.push(new TextDecoder().decode(item.payload));
    const claimed = items.map((item) => new TextDecoder().decode(item.payload));
    process.stdout.write(JSON.stringify({ claimed, acked }) + '\\n');
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', source], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      resolve({
        report: JSON.parse(line) as ChildReport,
        kill: async () => {
          child.kill('SIGKILL');
          await exited;
        },
      });
    });
    void exited.then(() => reject(new Error(`child consumer exited early: ${stderr}`)));
  });
}

describe('redis queue: consumers killed mid-batch', () => {
  it('delivers every item and acks each exactly once across SIGKILLed consumers', async () => {
    const name = topic('sigkill');
    const total = 40;
    const producer = await open({ topic: name, maxDepth: 100 });
    for (let i = 0; i < total; i++) await producer.enqueue(encoder.encode(`batch-${i}`));

    // Two consumer processes claim 8 each; the first acks 3 of its batch; both are SIGKILLed.
    // Liveness 2 s: one child must keep its heartbeat going while the other boots (tsx compiles).
    const first = await startChildConsumer(name, 'collector-a', 8, 3, 2_000);
    const second = await startChildConsumer(name, 'collector-b', 8, 0, 2_000);
    await first.kill();
    await second.kill();
    expect(first.report.claimed).toHaveLength(8);
    expect(first.report.acked).toHaveLength(3);
    expect(second.report.claimed).toHaveLength(8);

    const ackCounts = new Map<string, number>();
    const count = (payload: string) => ackCounts.set(payload, (ackCounts.get(payload) ?? 0) + 1);
    first.report.acked.forEach(count);
    const redelivered = new Map<string, number>();

    // collector-a restarts (requeues its own leftovers at once); a survivor picks up collector-b's
    // after its liveness lapses.
    const restarted = await open({ topic: name, claimTtlMs: 60_000, consumerLivenessMs: 2_000 });
    const survivor = await open({ topic: name, claimTtlMs: 60_000, consumerLivenessMs: 2_000 });
    async function drain(queue: RedisQueue, consumerId: string): Promise<void> {
      while ([...ackCounts.values()].reduce((a, b) => a + b, 0) < total) {
        const items = await queue.claim(consumerId, { max: 5, waitMs: 200 });
        for (const item of items) {
          const payload = decoder.decode(item.payload);
          if (item.deliveries > 1) redelivered.set(payload, item.deliveries);
          if (await queue.ack(item)) count(payload);
        }
      }
    }
    await Promise.race([
      Promise.all([drain(restarted, 'collector-a'), drain(survivor, 'collector-c')]),
      sleep(20_000).then(() => {
        throw new Error(`drain stalled: ${ackCounts.size} of ${total} acked`);
      }),
    ]);

    expect(ackCounts.size).toBe(total);
    expect([...ackCounts.values()].every((n) => n === 1)).toBe(true);
    const abandoned = [...first.report.claimed.slice(3), ...second.report.claimed].sort();
    expect([...redelivered.keys()].sort()).toEqual(abandoned);
    expect([...redelivered.values()].every((d) => d === 2)).toBe(true);
    expect(await producer.depth()).toBe(0);
    expect(await raw.llen(name)).toBe(0);
    expect(await raw.hlen(`${name}:claims`)).toBe(0);
    expect(await raw.exists(`${name}:processing:collector-a`, `${name}:processing:collector-b`)).toBe(0);
  });
});
