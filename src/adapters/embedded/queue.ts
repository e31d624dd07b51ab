/**
 * Embedded queue adapter: the in-process reference implementation of the queue port.
 * FIFO by enqueue order, claims that expire after `claimTtlMs`, waiting claims woken by events
 * (enqueue, release, expiry) rather than a poll timer, and backpressure that parks producers
 * until an ack frees space. Nothing survives the process: durability is "in memory".
 */
import { performance } from 'node:perf_hooks';
import { NexusError } from '../../errors.js';
import {
  normalizeClaimOptions,
  normalizeQueueOptions,
  type ClaimedItem,
  type ClaimOptions,
  type Queue,
  type QueueOptions,
} from '../../ports/queue.js';

interface Claim {
  token: string;
  consumerId: string;
  /** performance.now() time at which the claim lapses. */
  deadline: number;
}

interface Entry {
  id: string;
  /** Enqueue order; ready items are kept sorted by it so redeliveries keep their place. */
  seq: number;
  payload: Uint8Array;
  deliveries: number;
  claim: Claim | undefined;
}

interface ClaimWaiter {
  consumerId: string;
  max: number;
  resolve: (items: ClaimedItem[]) => void;
  timer: NodeJS.Timeout;
}

interface SpaceWaiter {
  payload: Uint8Array;
  resolve: (id: string) => void;
  reject: (error: unknown) => void;
}

function closedError(topic: string): NexusError {
  return new NexusError('QUEUE_CLOSED', `queue ${topic} is closed`, { details: { topic } });
}

/** In-process implementation of {@link Queue}; see the port for the delivery contract. */
export class EmbeddedQueue implements Queue {
  readonly topic: string;
  private readonly maxDepth: number;
  private readonly claimTtlMs: number;
  private readonly items = new Map<string, Entry>();
  /** Unclaimed items, sorted by seq. */
  private ready: Entry[] = [];
  /**
   * Claimed items in claim order. Every claim lasts the same TTL, so insertion order is also
   * deadline order and the first entry is always the next to expire.
   */
  private readonly claimed = new Map<string, Entry>();
  private claimWaiters: ClaimWaiter[] = [];
  private spaceWaiters: SpaceWaiter[] = [];
  private expiryTimer: NodeJS.Timeout | undefined;
  private expiryAt = Infinity;
  private seq = 0;
  private tokenSeq = 0;
  private closed = false;

  constructor(options: QueueOptions) {
    const normalized = normalizeQueueOptions(options);
    this.topic = normalized.topic;
    this.maxDepth = normalized.maxDepth;
    this.claimTtlMs = normalized.claimTtlMs;
  }

  /** Add one item (the bytes are copied); waits while `depth() >= maxDepth`. */
  async enqueue(payload: Uint8Array): Promise<string> {
    this.assertOpen();
    const copy = new Uint8Array(payload);
    // Producers already parked keep their turn: a newcomer never overtakes them.
    if (this.items.size < this.maxDepth && this.spaceWaiters.length === 0) return this.add(copy);
    return new Promise<string>((resolve, reject) => {
      this.spaceWaiters.push({ payload: copy, resolve, reject });
    });
  }

  /** Claim up to `max` oldest ready items, waiting up to `waitMs` for the first. */
  async claim(consumerId: string, options?: ClaimOptions): Promise<ClaimedItem[]> {
    this.assertOpen();
    const { max, waitMs } = normalizeClaimOptions(options);
    this.expireDue();
    // Invariant: ready items and parked claimers never coexist (serveWaiters drains one or the other).
    if (this.ready.length > 0 || waitMs === 0) return this.take(consumerId, max);
    return new Promise<ClaimedItem[]>((resolve) => {
      const waiter: ClaimWaiter = {
        consumerId,
        max,
        resolve,
        timer: setTimeout(() => {
          this.claimWaiters = this.claimWaiters.filter((w) => w !== waiter);
          resolve([]);
        }, waitMs),
      };
      this.claimWaiters.push(waiter);
    });
  }

  /** Remove the item if `item.claimToken` still holds it. */
  async ack(item: ClaimedItem): Promise<boolean> {
    this.assertOpen();
    const entry = this.heldEntry(item);
    if (entry === undefined) return false;
    this.claimed.delete(entry.id);
    this.items.delete(entry.id);
    this.admitProducers();
    return true;
  }

  /** Put the item back at its place in line if `item.claimToken` still holds it. */
  async release(item: ClaimedItem): Promise<boolean> {
    this.assertOpen();
    const entry = this.heldEntry(item);
    if (entry === undefined) return false;
    this.claimed.delete(entry.id);
    entry.claim = undefined;
    this.insertReady(entry);
    this.serveWaiters();
    return true;
  }

  /** Items enqueued and not yet acked, claimed ones included. */
  async depth(): Promise<number> {
    this.assertOpen();
    return this.items.size;
  }

  /** Resolve parked claims with `[]`, reject parked producers with QUEUE_CLOSED, drop all items. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    for (const waiter of this.claimWaiters) {
      clearTimeout(waiter.timer);
      waiter.resolve([]);
    }
    this.claimWaiters = [];
    const producers = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const producer of producers) producer.reject(closedError(this.topic));
    this.items.clear();
    this.claimed.clear();
    this.ready = [];
  }

  private assertOpen(): void {
    if (this.closed) throw closedError(this.topic);
  }

  private add(payload: Uint8Array): string {
    const seq = ++this.seq;
    const entry: Entry = { id: String(seq), seq, payload, deliveries: 0, claim: undefined };
    this.items.set(entry.id, entry);
    this.ready.push(entry);
    this.serveWaiters();
    return entry.id;
  }

  /** The entry `item` refers to, if its claim is current and unexpired. */
  private heldEntry(item: ClaimedItem): Entry | undefined {
    this.expireDue();
    const entry = this.items.get(item.id);
    if (entry?.claim === undefined || entry.claim.token !== item.claimToken) return undefined;
    return entry;
  }

  private take(consumerId: string, max: number): ClaimedItem[] {
    const taken = this.ready.splice(0, max);
    if (taken.length === 0) return [];
    const deadline = performance.now() + this.claimTtlMs;
    const out = taken.map((entry): ClaimedItem => {
      entry.deliveries += 1;
      entry.claim = { token: `${entry.id}.${++this.tokenSeq}`, consumerId, deadline };
      this.claimed.set(entry.id, entry);
      return {
        id: entry.id,
        payload: new Uint8Array(entry.payload),
        deliveries: entry.deliveries,
        claimToken: entry.claim.token,
      };
    });
    this.scheduleExpiry();
    return out;
  }

  private insertReady(entry: Entry): void {
    let lo = 0;
    let hi = this.ready.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.ready[mid] as Entry).seq < entry.seq) lo = mid + 1;
      else hi = mid;
    }
    this.ready.splice(lo, 0, entry);
  }

  private serveWaiters(): void {
    while (this.ready.length > 0 && this.claimWaiters.length > 0) {
      const waiter = this.claimWaiters.shift() as ClaimWaiter;
      clearTimeout(waiter.timer);
      waiter.resolve(this.take(waiter.consumerId, waiter.max));
    }
  }

  private admitProducers(): void {
    while (this.spaceWaiters.length > 0 && this.items.size < this.maxDepth) {
      const producer = this.spaceWaiters.shift() as SpaceWaiter;
      producer.resolve(this.add(producer.payload));
    }
  }

  /** Return every lapsed claim's item to the ready line and wake claimers. */
  private expireDue(): void {
    const now = performance.now();
    let expired = false;
    for (const entry of this.claimed.values()) {
      if ((entry.claim as Claim).deadline > now) break;
      this.claimed.delete(entry.id);
      entry.claim = undefined;
      this.insertReady(entry);
      expired = true;
    }
    if (expired) this.serveWaiters();
  }

  private scheduleExpiry(): void {
    const first = this.claimed.values().next();
    if (first.done === true) return;
    const deadline = (first.value.claim as Claim).deadline;
    if (this.expiryTimer !== undefined && this.expiryAt <= deadline) return;
    if (this.expiryTimer !== undefined) clearTimeout(this.expiryTimer);
    this.expiryAt = deadline;
    // +1 ms so the timer never fires a hair before the deadline and finds nothing due.
    this.expiryTimer = setTimeout(() => this.onExpiryTimer(), Math.max(0, deadline - performance.now()) + 1);
    // Housekeeping alone must not keep the process alive.
    this.expiryTimer.unref();
  }

  private onExpiryTimer(): void {
    this.expiryTimer = undefined;
    this.expiryAt = Infinity;
    if (this.closed) return;
    this.expireDue();
    this.scheduleExpiry();
  }
}

/** Create an in-process queue for `options.topic`. Each call returns an independent queue. */
export function createEmbeddedQueue(options: QueueOptions): EmbeddedQueue {
  return new EmbeddedQueue(options);
}
