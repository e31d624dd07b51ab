/**
 * NATS JetStream queue behaviour beyond the shared conformance suite: the stream and consumer
 * operators see, dedupe of re-published payloads, redelivery after a lapsed claim, error mapping,
 * credentials, replicas that stay identical while producers are held at maxDepth, and a three-node
 * cluster whose stream leader is SIGKILLed mid-traffic (no item is lost).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DiscardPolicy, RetentionPolicy, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createNatsQueue, type NatsQueue, type NatsQueueOptions } from '../../src/adapters/nats/queue.js';
import { streamName } from '../../src/adapters/nats/connection.js';
import { hasCode } from '../../src/errors.js';
import type { ClaimedItem } from '../../src/ports/queue.js';
import { startNatsCluster, type NatsHandle } from '../harness/nats.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const opened: NatsQueue[] = [];
let topicCounter = 0;

function topic(label: string): string {
  topicCounter += 1;
  return `nats-${label}-${Date.now().toString(36)}-${topicCounter}`;
}

async function open(nats: NatsHandle, options: Omit<NatsQueueOptions, 'servers'>): Promise<NatsQueue> {
  const queue = await createNatsQueue({ ...options, servers: nats.url });
  opened.push(queue);
  return queue;
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/** A payload of `size` bytes starting with `label` and a newline. */
function payload(label: string, size: number): Uint8Array {
  const bytes = new Uint8Array(Math.max(size, label.length + 1)).fill(0x2e);
  bytes.set(encoder.encode(`${label}\n`));
  return bytes;
}

function labelOf(item: ClaimedItem): string {
  const text = decoder.decode(item.payload);
  return text.slice(0, text.indexOf('\n'));
}

afterEach(async () => {
  for (const queue of opened.splice(0)) await queue.close();
});

describe('nats queue on one server (R1)', () => {
  let nats: NatsHandle;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    nats = await startNatsCluster({ nodes: 1 });
    nc = await connect({ servers: nats.urls });
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('keeps a topic in a work-queue stream NEXUS_<topic> read by the durable consumer `collectors`', async () => {
    const name = topic('layout');
    const queue = await open(nats, { topic: name, maxDepth: 7, claimTtlMs: 1_500 });
    expect(queue.streamName).toBe(`NEXUS_${name}`);
    const info = await jsm.streams.info(`NEXUS_${name}`);
    expect(info.config.retention).toBe('workqueue');
    expect(info.config.num_replicas).toBe(1);
    // No message limit on the stream: maxDepth is the handle's (see the adapter header).
    expect(info.config.max_msgs).toBe(-1);
    expect(info.config.subjects).toEqual([`nexus.queue.${name}`]);
    const consumer = await jsm.consumers.info(`NEXUS_${name}`, 'collectors');
    expect(consumer.config.ack_policy).toBe('explicit');
    expect(consumer.config.ack_wait).toBe(1_500 * 1_000_000);

    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await queue.enqueue(encoder.encode(`row-${i}`)));
    expect(ids).toEqual(['1', '2', '3']);
    expect((await jsm.streams.info(`NEXUS_${name}`)).state.messages).toBe(3);
    const [item] = await queue.claim('collector-1');
    expect((await jsm.consumers.info(`NEXUS_${name}`, 'collectors')).num_ack_pending).toBe(1);
    expect(await queue.ack(item as ClaimedItem)).toBe(true);
    expect((await jsm.streams.info(`NEXUS_${name}`)).state.messages).toBe(2);
    expect(await queue.depth()).toBe(2);

    // A second handle with other settings adopts the stream and applies them.
    await open(nats, { topic: name, maxDepth: 9, claimTtlMs: 2_000 });
    expect((await jsm.streams.info(`NEXUS_${name}`)).config.max_msgs).toBe(-1);
    expect((await jsm.consumers.info(`NEXUS_${name}`, 'collectors')).config.ack_wait).toBe(2e9);
    // One opened without claimTtlMs (a streamer) keeps the consumer's ack_wait and claims by it.
    const producer = await open(nats, { topic: name, maxDepth: 9 });
    expect((await jsm.consumers.info(`NEXUS_${name}`, 'collectors')).config.ack_wait).toBe(2e9);
    const held = await producer.claim('p', { max: 2 });
    expect(held.map((i) => i.id)).toEqual(['2', '3']);
    const [again] = await queue.claim('collector-2', { waitMs: 10_000 });
    expect(again?.id).toBe('2'); // back after 2 s, not the default 30 s
    expect(again?.deliveries).toBe(2);
  });

  it('removes the message limit an earlier version set on the stream', async () => {
    const name = topic('oldlimit');
    await jsm.streams.add({
      name: `NEXUS_${name}`,
      subjects: [`nexus.queue.${name}`],
      retention: RetentionPolicy.Workqueue,
      max_msgs: 5,
      discard: DiscardPolicy.New,
    });
    const queue = await open(nats, { topic: name, maxDepth: 5 });
    expect((await jsm.streams.info(`NEXUS_${name}`)).config.max_msgs).toBe(-1);
    for (let i = 0; i < 5; i++) await queue.enqueue(encoder.encode(`old-${i}`));
    const sixth = queue.enqueue(encoder.encode('old-5'));
    const held = await Promise.race([sixth.then(() => 'stored'), sleep(300).then(() => 'held')]);
    expect(held).toBe('held');
    const [item] = await queue.claim('c1');
    expect(await queue.ack(item as ClaimedItem)).toBe(true);
    expect(await sixth).toBe('6');
    expect(await queue.depth()).toBe(5);
  });

  it('maps topics with characters stream names refuse to distinct names', () => {
    expect(streamName('telemetry')).toBe('NEXUS_telemetry');
    const dotted = streamName('a.b');
    const spaced = streamName('a b');
    expect(dotted).toMatch(/^NEXUS_a_b_[0-9a-f]{8}$/);
    expect(spaced).toMatch(/^NEXUS_a_b_[0-9a-f]{8}$/);
    expect(dotted).not.toBe(spaced);
    expect(dotted).not.toBe(streamName('a_b'));
  });

  it('stores a re-published payload once within the duplicate window, again after it', async () => {
    const name = topic('dedupe');
    const queue = await open(nats, { topic: name, duplicateWindowMs: 1_000 });
    const batch = encoder.encode('batch-7: the same bytes a restarted streamer publishes again');
    const first = await queue.enqueue(batch);
    expect(await queue.enqueue(batch)).toBe(first);
    expect(await queue.enqueue(encoder.encode('batch-8'))).not.toBe(first);
    expect(await queue.depth()).toBe(2);

    const items = await queue.claim('c1', { max: 10 });
    expect(items.map((i) => decoder.decode(i.payload))).toEqual([decoder.decode(batch), 'batch-8']);
    for (const item of items) expect(await queue.ack(item)).toBe(true);
    // Acked, then published again inside the window: still recognised, nothing comes back.
    expect(await queue.enqueue(batch)).toBe(first);
    expect(await queue.depth()).toBe(0);
    expect(await queue.claim('c1', { waitMs: 100 })).toEqual([]);

    await sleep(1_300);
    const later = await queue.enqueue(batch);
    expect(Number(later)).toBeGreaterThan(Number(first));
    expect(await queue.depth()).toBe(1);
  });

  it('redelivers a lapsed claim with deliveries counted up; the late ack is refused', async () => {
    const name = topic('redeliver');
    const a = await open(nats, { topic: name, claimTtlMs: 300 });
    const b = await open(nats, { topic: name, claimTtlMs: 300 });
    const id = await a.enqueue(encoder.encode('slow'));
    const [first] = await a.claim('a');
    expect(first?.deliveries).toBe(1);
    const [second] = await b.claim('b', { waitMs: 3_000 });
    expect(second?.id).toBe(id);
    expect(second?.deliveries).toBe(2);
    const [third] = await a.claim('a', { waitMs: 3_000 });
    expect(third?.id).toBe(id);
    expect(third?.deliveries).toBe(3);
    expect(await a.ack(first as ClaimedItem)).toBe(false);
    expect(await b.ack(second as ClaimedItem)).toBe(false);
    expect(await a.ack(third as ClaimedItem)).toBe(true);
    expect(await a.depth()).toBe(0);
    expect(await b.claim('b', { waitMs: 500 })).toEqual([]);
  });

  it('a handle closed while holding claims gives them back after claimTtlMs', async () => {
    const name = topic('closed');
    const crashed = await createNatsQueue({ topic: name, servers: nats.url, claimTtlMs: 400 });
    for (let i = 0; i < 3; i++) await crashed.enqueue(encoder.encode(`held-${i}`));
    expect(await crashed.claim('gone', { max: 3 })).toHaveLength(3);
    await crashed.close();
    const survivor = await open(nats, { topic: name, claimTtlMs: 400 });
    const got: ClaimedItem[] = [];
    const until = performance.now() + 5_000;
    while (got.length < 3 && performance.now() < until) {
      got.push(...(await survivor.claim('s', { max: 3, waitMs: 1_000 })));
    }
    expect(got.map((i) => decoder.decode(i.payload)).sort()).toEqual(['held-0', 'held-1', 'held-2']);
    expect(got.every((i) => i.deliveries === 2)).toBe(true);
  });

  it('maps bad options to CONFIG_INVALID and an unreachable server to BACKEND_UNAVAILABLE', async () => {
    const bad = await errorOf(createNatsQueue({ topic: 't', servers: 'http://127.0.0.1:1' }));
    expect(hasCode(bad, 'CONFIG_INVALID')).toBe(true);
    const empty = await errorOf(createNatsQueue({ topic: 't', servers: ' , ' }));
    expect(hasCode(empty, 'CONFIG_INVALID')).toBe(true);
    const replicas = await errorOf(createNatsQueue({ topic: 't', servers: nats.url, replicas: 0 }));
    expect(hasCode(replicas, 'CONFIG_INVALID')).toBe(true);
    const down = await errorOf(
      createNatsQueue({ topic: 't', servers: 'nats://127.0.0.1:1', connectTimeoutMs: 500 }),
    );
    expect(hasCode(down, 'BACKEND_UNAVAILABLE')).toBe(true);
    // R3 on a single server cannot be placed: refused when the queue is opened, at once (a permanent
    // refusal, not retried for the 30 s a transient JetStream failure is).
    const asked = performance.now();
    const tooMany = await errorOf(createNatsQueue({ topic: topic('r3'), servers: nats.url, replicas: 3 }));
    expect(hasCode(tooMany, 'BACKEND_UNAVAILABLE')).toBe(true);
    expect(String(tooMany)).toMatch(/replicas > 1 not supported/);
    expect(performance.now() - asked).toBeLessThan(10_000);
  });
});

describe('nats queue with credentials', () => {
  let nats: NatsHandle;
  beforeAll(async () => {
    nats = await startNatsCluster({ nodes: 1, auth: { user: 'nexus', password: 's3cret' } });
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it('connects with NATS_USER / NATS_PASSWORD and is refused without them', async () => {
    const queue = await open(nats, { topic: topic('auth'), user: 'nexus', password: 's3cret' });
    expect(await queue.enqueue(encoder.encode('x'))).toBe('1');
    const refused = await errorOf(createNatsQueue({ topic: 'auth', servers: nats.url }));
    expect(hasCode(refused, 'BACKEND_UNAVAILABLE')).toBe(true);
    const wrong = await errorOf(
      createNatsQueue({ topic: 'auth', servers: nats.url, user: 'nexus', password: 'nope' }),
    );
    expect(hasCode(wrong, 'BACKEND_UNAVAILABLE')).toBe(true);
    expect(String(wrong)).not.toContain('nope');
  });
});

/** What {@link pump} saw. */
interface PumpResult {
  /** Per payload label, how many acks of it returned true. */
  acks: Map<string, number>;
  /** Labels whose processing ended in an ack call (true or false). */
  handled: Set<string>;
  /** Labels delivered again after an ack of them had returned true. */
  cameBack: { label: string; at: number }[];
  /** Every delivery of a label that had been delivered before (lapsed claims, failover), with when. */
  repeats: { label: string; at: number }[];
  /** Acks that returned false (the claim had lapsed, or its confirmation was lost). */
  refused: number;
  consumerErrors: unknown[];
  ms: number;
}

/**
 * Run producers and consumers over `total` items until every one was handled (bounded at 90 s);
 * records acks per payload and deliveries after a successful ack.
 */
async function pump(
  producer: NatsQueue,
  consumers: NatsQueue[],
  total: number,
  size: number,
  options: {
    producers?: number;
    workersPerConsumer?: number;
    /** Time a consumer spends on an item before acking it (its durable write), in ms. */
    workMs?: number;
    onAcked?: (n: number) => void;
  } = {},
): Promise<PumpResult> {
  const result: PumpResult = {
    acks: new Map(),
    handled: new Set(),
    cameBack: [],
    repeats: [],
    refused: 0,
    consumerErrors: [],
    ms: 0,
  };
  let next = 0;
  let ackedTotal = 0;
  let drained = false;
  const seen = new Set<string>();
  const started = performance.now();
  async function produce(): Promise<void> {
    while (next < total) {
      const n = next++;
      await producer.enqueue(payload(`item-${n}`, size));
    }
  }
  async function consume(queue: NatsQueue, consumerId: string): Promise<void> {
    // Ends when every item was handled, or at the time bound (then the test names the missing ones).
    while (!drained && performance.now() - started < 60_000) {
      try {
        if (result.handled.size >= total) {
          drained = true;
          break;
        }
        const items = await queue.claim(consumerId, { max: 4, waitMs: 300 });
        for (const item of items) {
          const label = labelOf(item);
          const at = performance.now();
          if (result.acks.has(label)) result.cameBack.push({ label, at });
          if (seen.has(label)) result.repeats.push({ label, at });
          seen.add(label);
          if (options.workMs) await sleep(options.workMs);
          const acked = await queue.ack(item);
          result.handled.add(label);
          if (acked) {
            result.acks.set(label, (result.acks.get(label) ?? 0) + 1);
            ackedTotal += 1;
            options.onAcked?.(ackedTotal);
          } else {
            result.refused += 1;
          }
        }
      } catch (error) {
        // A collector logs and carries on; unacked claims come back after claimTtlMs.
        result.consumerErrors.push(error);
        await sleep(100);
      }
    }
  }
  await Promise.all([
    ...Array.from({ length: options.producers ?? 4 }, () => produce()),
    ...consumers.flatMap((queue, c) =>
      Array.from({ length: options.workersPerConsumer ?? 2 }, (_, w) => consume(queue, `consumer-${c}-${w}`)),
    ),
  ]);
  result.ms = performance.now() - started;
  return result;
}

/** One node's copy of a stream, from its monitoring port. */
interface ReplicaState {
  node: number;
  messages: number;
  lastSeq: number;
}

/** Every running node's copy of `stream` (`/jsz`), leader and followers alike. */
async function replicaStates(nats: NatsHandle, stream: string): Promise<ReplicaState[]> {
  const states: ReplicaState[] = [];
  for (const [node, url] of nats.monitorUrls.entries()) {
    if (!nats.isRunning(node)) continue;
    const jsz = (await (await fetch(`${url}/jsz?accounts=true&streams=true`)).json()) as {
      account_details?: {
        stream_detail?: { name: string; state: { messages: number; last_seq: number } }[];
      }[];
    };
    const detail = (jsz.account_details ?? [])
      .flatMap((a) => a.stream_detail ?? [])
      .find((d) => d.name === stream);
    if (detail) states.push({ node, messages: detail.state.messages, lastSeq: detail.state.last_seq });
  }
  return states;
}

describe('nats queue on a three-node cluster (R3)', () => {
  let nats: NatsHandle;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  beforeAll(async () => {
    nats = await startNatsCluster({ nodes: 3 });
    nc = await connect({ servers: nats.urls });
    jsm = await jetstreamManager(nc);
  }, 60_000);
  afterAll(async () => {
    await nc?.close();
    await nats?.stop();
  });

  it('measures enqueue+claim+ack of 50 KiB batches', async () => {
    const name = topic('speed3');
    const producer = await open(nats, { topic: name, maxDepth: 200, replicas: 3 });
    const consumer = await open(nats, { topic: name, maxDepth: 200, replicas: 3 });
    const total = 400;
    const { acks, ms, refused } = await pump(producer, [consumer], total, 50 * 1024, {
      producers: 8,
      workersPerConsumer: 4,
    });
    expect(refused).toBe(0);
    expect(acks.size).toBe(total);
    expect([...acks.values()].every((n) => n === 1)).toBe(true);
    const perSecond = (total / ms) * 1000;
    console.log(`nats queue, 3 nodes R3: ${perSecond.toFixed(0)} batches/s of 50 KiB (enqueue+claim+ack)`);
    expect(await producer.depth()).toBe(0);
  }, 120_000);

  it('a claim that does not wait gets the items an enqueue just stored, whichever node each talks to', async () => {
    // Regression: nats-server 2.9 confirms a publish before the consumer (on a replica, maybe) has
    // heard of the message, so a no_wait pull answered "no messages" for 9 of 300 fresh items here,
    // or fewer than were stored (CI failed once on each, in the conformance suite).
    let short = 0;
    for (let round = 0; round < 3; round++) {
      const servers = [...nats.urls.slice(round), ...nats.urls.slice(0, round)];
      const queue = await createNatsQueue({ topic: topic(`fresh${round}`), servers, replicas: 3 });
      opened.push(queue);
      for (let i = 0; i < 40; i++) {
        const ids = [
          await queue.enqueue(new TextEncoder().encode(`fresh ${round}/${i}/a`)),
          await queue.enqueue(new TextEncoder().encode(`fresh ${round}/${i}/b`)),
        ];
        let items = await queue.claim('c', { max: 2 });
        if (items.length < 2) {
          short += 1;
          items = [...items, ...(await queue.claim('c', { max: 2 - items.length, waitMs: 5_000 }))];
        }
        expect(items.map((item) => item.id).sort()).toEqual([...ids].sort());
        for (const item of items) expect(await queue.ack(item)).toBe(true);
      }
    }
    expect(short).toBe(0);
  }, 120_000);

  it('keeps every replica identical while producers are held at maxDepth', async () => {
    // Regression of issue 21: with the bound as the stream's own limit (max_msgs + discard new),
    // nats-server 2.9.10 left a replica apart from the leader in 3 runs of 3 of this case (one at
    // last sequence 429 with 29 messages beside the leader's 400 and 0); a consumer leader on such
    // a replica never delivers what it lacks (items lost with no node down, docs/scaling.md).
    // The handle's own bound keeps them equal.
    const name = topic('replicas');
    const options = { topic: name, maxDepth: 30, claimTtlMs: 5_000, replicas: 3 };
    const producer = await open(nats, options);
    const consumers = [
      await createNatsQueue({ ...options, servers: [nats.urls[1]!] }),
      await createNatsQueue({ ...options, servers: [nats.urls[2]!] }),
    ];
    opened.push(...consumers);
    let deepest = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        deepest = Math.max(deepest, await producer.depth());
        await sleep(20);
      }
    })();
    const total = 400;
    const result = await pump(producer, consumers, total, 8 * 1024, { workMs: 10 });
    sampling = false;
    await sampler;
    expect(result.handled.size).toBe(total);
    expect(result.acks.size).toBe(total);
    expect(result.refused).toBe(0);
    // Producers were held (the stream reached the bound) and never let past it. The sampler polls
    // every 20 ms and can miss the exact peak on a loaded machine (a CI run saw 28 of 30).
    expect(deepest).toBeGreaterThanOrEqual(25);
    expect(deepest).toBeLessThanOrEqual(30);
    expect(await producer.depth()).toBe(0);
    // Every replica holds what the leader holds: the same last sequence, no message left.
    const stream = `NEXUS_${name}`;
    const leader = (await jsm.streams.info(stream)).state;
    expect(leader.last_seq).toBeGreaterThanOrEqual(total);
    const expected = { messages: 0, lastSeq: leader.last_seq };
    const same = (s: ReplicaState): boolean =>
      s.messages === expected.messages && s.lastSeq === expected.lastSeq;
    let states: ReplicaState[] = [];
    for (const until = performance.now() + 10_000; performance.now() < until; await sleep(250)) {
      states = await replicaStates(nats, stream);
      if (states.length === 3 && states.every(same)) break;
    }
    expect(states.map(({ messages, lastSeq }) => ({ messages, lastSeq }))).toEqual([
      expected,
      expected,
      expected,
    ]);
  }, 120_000);

  it('loses and duplicates nothing when the stream leader is SIGKILLed mid-traffic', async () => {
    const name = topic('failover');
    const options = { topic: name, maxDepth: 50, claimTtlMs: 5_000, replicas: 3 };
    const producer = await open(nats, options);
    const consumers = [
      await createNatsQueue({ ...options, servers: [nats.urls[1]!, nats.urls[2]!, nats.urls[0]!] }),
      await createNatsQueue({ ...options, servers: [nats.urls[2]!, nats.urls[0]!, nats.urls[1]!] }),
    ];
    opened.push(...consumers);
    const leaderName = (await jsm.streams.info(`NEXUS_${name}`)).cluster?.leader ?? '';
    const leader = Number(leaderName.slice(1));
    expect(leaderName).toMatch(/^n[0-2]$/);

    const total = 300;
    let killing: Promise<void> | undefined;
    let killedAt = Infinity;
    const result = await pump(producer, consumers, total, 8 * 1024, {
      onAcked: (n) => {
        if (n !== 80) return;
        killedAt = performance.now();
        killing = nats.kill(leader);
      },
    });
    await killing;
    const twice = [...result.acks].filter(([, n]) => n !== 1).map(([label]) => label);
    console.log(
      `nats failover: ${total} items in ${result.ms.toFixed(0)} ms with the stream leader killed; ` +
        `${result.consumerErrors.length} consumer errors, ${result.refused} acks refused, ` +
        `${result.cameBack.length} acked items handed out again, ${twice.length} items acked twice`,
    );
    expect(nats.isRunning(leader)).toBe(false);
    // No item is lost: every one enqueued reached a consumer, and nothing is left in the stream.
    // (Before issue 21's fix about one run in four lost 1-2 items enqueued around the kill.)
    const labels = Array.from({ length: total }, (_, i) => `item-${i}`);
    const missing = labels.filter((label) => !result.handled.has(label));
    expect(missing).toEqual([]);
    // An ack refused during the failover either let the item come back (then acked) or was taken
    // by the server with its confirmation lost (then the item is gone): no other item lacks an ack.
    expect(result.acks.size).toBeGreaterThanOrEqual(total - result.refused);
    // An item is handed out again only through the failover (a lapsed claim, or a new consumer
    // leader missing deliveries and acks the killed one had confirmed: see the adapter header),
    // never before the kill, and then only the few around it.
    expect(result.repeats.every((r) => r.at > killedAt)).toBe(true);
    expect(result.cameBack.length).toBeLessThanOrEqual(total / 20);
    expect(twice.length).toBeLessThanOrEqual(total / 20);
    // Errors a consumer saw are all retryable outages, never anything else.
    expect(result.consumerErrors.every((e) => hasCode(e, 'BACKEND_UNAVAILABLE'))).toBe(true);
    // What the stream still holds was handled already: an ack refused or lost in the failover
    // leaves the item to come back after ack_wait, as a collector would claim it again and find it
    // in its ledger. Drained here: nothing that was not handled may turn up, nothing may stay.
    const late: string[] = [];
    let depth = await producer.depth();
    for (const until = performance.now() + 20_000; depth > 0 && performance.now() < until;) {
      for (const item of await consumers[0]!.claim('drain', { max: 10, waitMs: 1_000 })) {
        late.push(labelOf(item));
        await consumers[0]!.ack(item);
      }
      depth = await producer.depth();
    }
    console.log(`nats failover: ${late.length} handled items came back after the run`);
    expect(late.filter((label) => !result.handled.has(label))).toEqual([]);
    expect(depth).toBe(0);

    // The killed node comes back and catches up; nothing reappears.
    await nats.restart(leader);
    expect(await consumers[0]!.claim('after', { waitMs: 500 })).toEqual([]);
    expect(await producer.depth()).toBe(0);
  }, 120_000);
});
