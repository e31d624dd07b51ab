/**
 * Redis queue adapter (traditional mode): the reliable-queue pattern on Redis lists.
 * The topic is a list of item ids named exactly the topic (`redis-cli llen telemetry` shows the
 * backlog); payloads live in a hash beside it. A consumer moves ids atomically into its own
 * processing list (LMOVE in a Lua script, BLMOVE while waiting), and each claim is recorded with
 * a deadline. Claims come back to the queue when their deadline passes, when their consumer's
 * liveness key lapses (the process died), or when a consumer restarts under the same id.
 * See queue-scripts.ts for the key layout and the atomic steps.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ProducerLine } from '../producer-line.js';
import { NexusError } from '../../errors.js';
import {
  normalizeClaimOptions,
  normalizeQueueOptions,
  type ClaimedItem,
  type ClaimOptions,
  type Queue,
  type QueueOptions,
} from '../../ports/queue.js';
import { checkRedisUrl, connectRedis, newRedisClient, toNexusError } from './connection.js';
import {
  CLAIM,
  ENQUEUE,
  RECOVER,
  SETTLE,
  aliveKey,
  freedChannel,
  processingKey,
  queueKeys,
} from './queue-scripts.js';

/** Default time after which a silent consumer's items are handed to others. */
export const DEFAULT_CONSUMER_LIVENESS_MS = 10_000;
/** Upper bound on how long a producer held by backpressure goes without re-checking depth. */
const BACKPRESSURE_RECHECK_MS = 1000;

/** Options of {@link createRedisQueue}. */
export interface RedisQueueOptions extends QueueOptions {
  /** Server URL, REDIS_URL style: redis[s]://[user:password@]host:port[/db]. */
  url: string;
  /** PEM CA file for a rediss:// URL (REDIS_TLS_CA); default: the system CAs. */
  tlsCaFile?: string;
  /**
   * How long a consumer's liveness key lives without refresh (default 10 s). The adapter refreshes
   * it every third of that while open; when it lapses, any consumer requeues that consumer's items.
   */
  consumerLivenessMs?: number;
}

interface ClaimReply {
  /** ms until a claim or a consumer's liveness may lapse; -1 when none is pending. */
  wakeMs: number;
  items: ClaimedItem[];
}

function parseClaimReply(reply: unknown): ClaimReply {
  if (!Array.isArray(reply) || typeof reply[0] !== 'number') {
    throw new NexusError('INTERNAL', 'unexpected reply from the Redis claim script');
  }
  const items: ClaimedItem[] = [];
  for (let i = 1; i + 3 < reply.length; i += 4) {
    const [id, payload, deliveries, token] = reply.slice(i, i + 4) as [Buffer, Buffer, number, Buffer];
    items.push({
      id: id.toString('utf8'),
      // Copy out of the Buffer pool so the item owns exactly its bytes.
      payload: new Uint8Array(payload),
      deliveries,
      claimToken: token.toString('utf8'),
    });
  }
  return { wakeMs: reply[0], items };
}

/** {@link Queue} on Redis lists; see the port for the delivery contract. */
export class RedisQueue implements Queue {
  readonly topic: string;
  private readonly maxDepth: number;
  private readonly claimTtlMs: number;
  private readonly livenessMs: number;
  private readonly keys: string[];
  private readonly idleBlockers: Redis[] = [];
  private readonly activeBlockers = new Set<Redis>();
  /** Consumers this process claims for: recovered once on first use, then kept alive. */
  private readonly consumers = new Map<string, Promise<void>>();
  private readonly heartbeat: NodeJS.Timeout;
  private subscriber: Redis | undefined;
  private subscribed: Promise<void> | undefined;
  /** Producers held by backpressure, woken by ack announcements. */
  private spaceWaiters = new Set<() => void>();
  /** Producers held by backpressure, admitted in arrival order. */
  private readonly producers = new ProducerLine();
  private closed = false;

  /** Use {@link createRedisQueue}, which connects and checks the server first. */
  constructor(
    private readonly client: Redis,
    options: RedisQueueOptions,
  ) {
    const normalized = normalizeQueueOptions(options);
    this.topic = normalized.topic;
    this.maxDepth = normalized.maxDepth;
    this.claimTtlMs = normalized.claimTtlMs;
    this.livenessMs = options.consumerLivenessMs ?? DEFAULT_CONSUMER_LIVENESS_MS;
    if (!Number.isInteger(this.livenessMs) || this.livenessMs < 30) {
      throw new NexusError(
        'CONFIG_INVALID',
        `consumerLivenessMs must be an integer >= 30, got ${this.livenessMs}`,
      );
    }
    this.keys = queueKeys(this.topic);
    this.heartbeat = setInterval(() => void this.refreshLiveness(), Math.floor(this.livenessMs / 3));
    this.heartbeat.unref();
  }

  /** Add one item; while `depth() >= maxDepth` it waits for an ack (announced over pub/sub). */
  async enqueue(payload: Uint8Array): Promise<string> {
    this.assertOpen();
    const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    if (this.producers.waiting === 0) {
      const id = await this.tryEnqueue(bytes);
      if (id !== undefined) return id;
    }
    return this.producers.join(() => this.enqueueWhenFree(bytes));
  }

  /**
   * Claim up to `max` items for `consumerId`, waiting up to `waitMs` (BLMOVE) for the first.
   * The first claim for a consumer id in this process requeues what an earlier process with the
   * same id left unacked, so a consumer id must be used by one live process at a time.
   */
  async claim(consumerId: string, options?: ClaimOptions): Promise<ClaimedItem[]> {
    this.assertOpen();
    const { max, waitMs } = normalizeClaimOptions(options);
    if (consumerId.length === 0) throw new NexusError('BAD_REQUEST', 'consumerId must not be empty');
    await this.adoptConsumer(consumerId);
    const deadline = performance.now() + waitMs;
    let moved = '';
    for (;;) {
      const reply = await this.runClaim(consumerId, max, moved);
      moved = '';
      if (this.closed) return [];
      if (reply.items.length > 0) return reply.items;
      const remaining = deadline - performance.now();
      if (remaining <= 0) return [];
      // Sleep in BLMOVE until an item arrives, or until a claim elsewhere may have lapsed.
      const slice = reply.wakeMs >= 0 ? Math.min(remaining, reply.wakeMs + 5) : remaining;
      moved = await this.blockingMove(consumerId, slice);
      if (this.closed) return [];
    }
  }

  /** Remove the item if its claim still holds (atomic check in Lua). */
  async ack(item: ClaimedItem): Promise<boolean> {
    return this.settle(item, 'ack');
  }

  /** Put the item back at the head of the queue if its claim still holds. */
  async release(item: ClaimedItem): Promise<boolean> {
    return this.settle(item, 'release');
  }

  /** Items enqueued and not yet acked: the ready list plus every processing list. */
  async depth(): Promise<number> {
    this.assertOpen();
    return this.call(() => this.client.hlen(this.keys[1] as string), 'depth');
  }

  /**
   * Stop: waiting claims resolve `[]`, held producers reject QUEUE_CLOSED, connections close.
   * Claims still held are not released; like after a crash they return to the queue when this
   * process's liveness keys lapse (consumerLivenessMs) or when a consumer restarts with the same id.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeat);
    for (const wake of this.spaceWaiters) wake();
    this.spaceWaiters.clear();
    for (const blocker of [...this.idleBlockers, ...this.activeBlockers]) blocker.disconnect();
    this.idleBlockers.length = 0;
    this.activeBlockers.clear();
    this.subscriber?.disconnect();
    await quitOrDisconnect(this.client);
  }

  private assertOpen(): void {
    if (this.closed) throw new NexusError('QUEUE_CLOSED', `queue ${this.topic} is closed`);
  }

  /** Run a Redis call, mapping failures: QUEUE_CLOSED once closed, BACKEND_UNAVAILABLE otherwise. */
  private async call<T>(fn: () => Promise<T>, what: string): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (this.closed) throw new NexusError('QUEUE_CLOSED', `queue ${this.topic} closed during ${what}`);
      const down = this.client.status === 'ready' ? '' : ' (connection to Redis is down)';
      throw toNexusError(error, `Redis ${what} on ${this.topic} failed${down}`);
    }
  }

  private async tryEnqueue(bytes: Buffer): Promise<string | undefined> {
    const reply = await this.call(
      () => ENQUEUE.run(this.client, this.keys, [this.topic, '', this.maxDepth, bytes]),
      'enqueue',
    );
    return Buffer.isBuffer(reply) ? reply.toString('utf8') : undefined;
  }

  private async enqueueWhenFree(bytes: Buffer): Promise<string> {
    await this.subscribeFreed();
    for (;;) {
      this.assertOpen();
      // Register before checking so an ack between the check and the wait is not missed.
      let wake: () => void = () => undefined;
      const freed = new Promise<void>((resolve) => (wake = resolve));
      this.spaceWaiters.add(wake);
      try {
        const id = await this.tryEnqueue(bytes);
        if (id !== undefined) return id;
        const timer = setTimeout(wake, BACKPRESSURE_RECHECK_MS);
        await freed;
        clearTimeout(timer);
      } finally {
        this.spaceWaiters.delete(wake);
      }
    }
  }

  private subscribeFreed(): Promise<void> {
    if (this.subscribed === undefined) {
      const subscriber = this.client.duplicate();
      subscriber.on('error', () => undefined);
      subscriber.on('message', () => {
        for (const wake of this.spaceWaiters) wake();
      });
      this.subscriber = subscriber;
      this.subscribed = this.call(async () => {
        await subscriber.subscribe(freedChannel(this.topic));
      }, 'subscribe');
      // A failed subscribe is retried by the next held producer.
      this.subscribed.catch(() => {
        subscriber.disconnect();
        this.subscribed = undefined;
      });
    }
    return this.subscribed;
  }

  private adoptConsumer(consumerId: string): Promise<void> {
    let adopted = this.consumers.get(consumerId);
    if (adopted === undefined) {
      adopted = this.call(async () => {
        await RECOVER.run(this.client, this.keys, [this.topic, consumerId]);
      }, 'recover');
      this.consumers.set(consumerId, adopted);
      adopted.catch(() => this.consumers.delete(consumerId));
    }
    return adopted;
  }

  private async runClaim(consumerId: string, max: number, moved: string): Promise<ClaimReply> {
    const nonce = randomBytes(6).toString('hex');
    const reply = await this.call(
      () =>
        CLAIM.run(this.client, this.keys, [
          this.topic,
          consumerId,
          max,
          this.claimTtlMs,
          this.livenessMs,
          nonce,
          moved,
        ]),
      'claim',
    );
    return parseClaimReply(reply);
  }

  /** BLMOVE one id into the consumer's processing list; '' on timeout or close. */
  private async blockingMove(consumerId: string, waitMs: number): Promise<string> {
    const blocker = this.idleBlockers.pop() ?? this.newBlocker();
    this.activeBlockers.add(blocker);
    try {
      const seconds = (Math.max(1, Math.ceil(waitMs)) / 1000).toFixed(3);
      const id = await this.call(
        () => blocker.blmove(this.topic, processingKey(this.topic, consumerId), 'LEFT', 'RIGHT', seconds),
        'blocking claim',
      );
      return id ?? '';
    } catch (error) {
      if (this.closed) return '';
      throw error;
    } finally {
      this.activeBlockers.delete(blocker);
      if (!this.closed) this.idleBlockers.push(blocker);
    }
  }

  private newBlocker(): Redis {
    const blocker = this.client.duplicate();
    blocker.on('error', () => undefined);
    return blocker;
  }

  private async settle(item: ClaimedItem, mode: 'ack' | 'release'): Promise<boolean> {
    this.assertOpen();
    const reply = await this.call(
      () =>
        SETTLE.run(this.client, this.keys, [
          this.topic,
          '',
          item.id,
          item.claimToken,
          mode,
          freedChannel(this.topic),
        ]),
      mode,
    );
    return reply === 1;
  }

  private async refreshLiveness(): Promise<void> {
    if (this.closed || this.consumers.size === 0) return;
    const pipeline = this.client.pipeline();
    for (const consumerId of this.consumers.keys()) {
      pipeline.set(aliveKey(this.topic, consumerId), '1', 'PX', this.livenessMs);
    }
    // A missed beat is harmless unless it lasts consumerLivenessMs; then the claims are lost and
    // ack reports it.
    await pipeline.exec().catch(() => undefined);
  }
}

async function quitOrDisconnect(client: Redis): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, 1000).unref());
  await Promise.race([client.quit().then(() => undefined), timeout]).catch(() => undefined);
  client.disconnect();
}

/**
 * Connect to Redis at `options.url` and open the queue `options.topic` there.
 * Rejects with BACKEND_UNAVAILABLE when the server cannot be reached or is older than 6.2,
 * CONFIG_INVALID on a bad URL or option.
 */
export async function createRedisQueue(options: RedisQueueOptions): Promise<RedisQueue> {
  checkRedisUrl(options.url);
  normalizeQueueOptions(options);
  const client = newRedisClient(options.url, { caFile: options.tlsCaFile });
  await connectRedis(client, options.url);
  try {
    return new RedisQueue(client, options);
  } catch (error) {
    client.disconnect();
    throw error;
  }
}
