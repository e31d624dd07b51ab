/**
 * Wake-ups for the etcd queue adapter: {@link Signal}, a generation counter that waiting calls
 * park on; {@link DepthTracker}, the topic's depth kept from watch events so producers need no
 * count per enqueue; and {@link QueueWatch}, one etcd watch stream that feeds both. The watch starts
 * at the current revision every time it (re)connects and then fires every signal and asks for a
 * fresh count, so nothing depends on replaying history: compaction can never break it.
 */
import { Range, type Etcd3, type IWatchResponse } from 'etcd3';
import { toNexusError } from './client.js';
import type { QueueKeys } from './queue-keys.js';

/**
 * A wake-up source. A waiter reads `generation`, checks the store, then calls `wait(generation, ms)`:
 * a fire between the check and the wait is not lost, because the generation moved.
 */
export class Signal {
  private gen = 0;
  private readonly waiters = new Set<() => void>();

  get generation(): number {
    return this.gen;
  }

  /** Wake every waiter. */
  fire(): void {
    this.gen += 1;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }

  /**
   * Resolve on the first fire after generation `since` (at once if one happened) with true, or
   * after `ms` with false.
   */
  wait(since: number, ms: number): Promise<boolean> {
    if (this.gen !== since) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const wake = (fired: boolean): void => {
        clearTimeout(timer);
        this.waiters.delete(onFire);
        resolve(fired);
      };
      const onFire = (): void => wake(true);
      const timer = setTimeout(() => wake(false), Math.max(0, ms));
      this.waiters.add(onFire);
    });
  }
}

/** Most recent depth changes kept for {@link DepthTracker.rebase}. */
const DEPTH_LOG_SIZE = 4096;

/**
 * The number of items in the topic, from a count at some revision plus the watch's changes after
 * it: +1 for each put of the `enqueued` key (every enqueue txn writes it once), -1 for each item
 * delete (only ack deletes items).
 */
export class DepthTracker {
  private base: number | undefined;
  private rev = 0;
  /** Changes seen since the stream was (re)created, so a count taken mid-stream can be caught up. */
  private log: { revision: number; delta: number }[] = [];

  /** The depth as of {@link revision}, or undefined when unknown (no count since the stream opened). */
  get depth(): number | undefined {
    return this.base;
  }

  /** Revision the depth is current to. */
  get revision(): number {
    return this.rev;
  }

  apply(revision: number, delta: number): void {
    this.log.push({ revision, delta });
    if (this.log.length > 2 * DEPTH_LOG_SIZE) this.log = this.log.slice(-DEPTH_LOG_SIZE);
    if (this.base !== undefined && revision > this.rev) {
      this.base += delta;
      this.rev = revision;
    }
  }

  /** Take a count made at `revision`, plus every change the watch has reported after it. */
  rebase(count: number, revision: number): void {
    let depth = count;
    let rev = revision;
    for (const entry of this.log) {
      if (entry.revision > revision) {
        depth += entry.delta;
        rev = Math.max(rev, entry.revision);
      }
    }
    if (this.base !== undefined && rev < this.rev) return; // an older count than what we know
    this.base = depth;
    this.rev = rev;
  }

  invalidate(): void {
    this.base = undefined;
    this.rev = 0;
    this.log = [];
  }
}

type WatchStream = Awaited<ReturnType<Etcd3['watchClient']['watch']>>;

/** What the queue wants to hear about. */
export interface QueueWatchHandlers {
  /** An item was enqueued, or a claim went away without its item (release, lease expiry). */
  claimable: Signal;
  /** An item was deleted (acked): a producer held by backpressure may proceed. */
  space: Signal;
  depth: DepthTracker;
  /** Called when the stream is (re)established: count the items and rebase `depth`. */
  resync: () => void;
}

/**
 * One watch stream with two watchers: deletes anywhere under the topic prefix (NOPUT), and puts of
 * the `enqueued` key (NODELETE). Item payloads are never streamed to watchers.
 */
export class QueueWatch {
  private stream: WatchStream | undefined;
  private active = true;
  private createdCount = 0;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private firstReady: { resolve: () => void; reject: (error: unknown) => void } | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly keys: QueueKeys,
    private readonly handlers: QueueWatchHandlers,
  ) {}

  /** True while both watchers are confirmed by etcd; waiters fall back to polling otherwise. */
  get healthy(): boolean {
    return this.stream !== undefined && this.createdCount >= 2;
  }

  /** Open the stream; resolves once etcd confirmed both watchers, rejects after `deadlineMs`. */
  start(deadlineMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.firstReady = undefined;
        this.stop();
        reject(toNexusError(new Error(`watch not confirmed within ${deadlineMs} ms`), 'watch'));
      }, deadlineMs);
      this.firstReady = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.open();
    });
  }

  /** Close the stream for good. */
  stop(): void {
    this.active = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
  }

  private open(): void {
    this.retryTimer = undefined;
    if (!this.active) return;
    this.client.watchClient.watch().then(
      (stream) => {
        if (!this.active) {
          stream.cancel();
          return;
        }
        this.stream = stream;
        this.createdCount = 0;
        this.handlers.depth.invalidate();
        stream.on('data', (res: IWatchResponse) => this.onResponse(stream, res));
        stream.on('error', () => this.onBroken(stream));
        stream.on('end', () => this.onBroken(stream));
        const topic = Range.prefix(this.keys.prefix);
        stream.write({ create_request: { key: topic.start, range_end: topic.end, filters: ['Noput'] } });
        stream.write({ create_request: { key: Buffer.from(this.keys.enqueued), filters: ['Nodelete'] } });
      },
      () => this.onBroken(undefined),
    );
  }

  private onResponse(stream: WatchStream, res: IWatchResponse): void {
    if (stream !== this.stream || !this.active) return;
    if (res.canceled) {
      this.onBroken(stream);
      return;
    }
    if (res.created) {
      this.createdCount += 1;
      if (this.createdCount === 2) {
        this.attempt = 0;
        const ready = this.firstReady;
        this.firstReady = undefined;
        ready?.resolve();
        // Whatever happened while we were not watching is seen by a rescan and a recount.
        this.handlers.resync();
        this.handlers.claimable.fire();
        this.handlers.space.fire();
      }
    }
    let claimable = false;
    let space = false;
    const ackedItems = new Set<string>();
    const freedClaims: string[] = [];
    for (const event of res.events ?? []) {
      const key = event.kv.key.toString('utf8');
      const revision = Number(event.kv.mod_revision);
      if (key === this.keys.enqueued) {
        claimable = true;
        this.handlers.depth.apply(revision, 1);
      } else if (key.startsWith(this.keys.items)) {
        space = true;
        this.handlers.depth.apply(revision, -1);
        ackedItems.add(key.slice(this.keys.items.length));
      } else if (key.startsWith(this.keys.claims)) {
        freedClaims.push(key.slice(this.keys.claims.length));
      }
    }
    // A claim deleted together with its item is an ack: nothing became claimable.
    if (freedClaims.some((id) => !ackedItems.has(id))) claimable = true;
    if (claimable) this.handlers.claimable.fire();
    if (space) this.handlers.space.fire();
  }

  private onBroken(stream: WatchStream | undefined): void {
    if (stream !== this.stream || !this.active) return;
    this.stream = undefined;
    this.createdCount = 0;
    this.handlers.depth.invalidate();
    stream?.cancel();
    // Waiters notice `healthy` is false and poll until the stream is back.
    this.handlers.claimable.fire();
    this.handlers.space.fire();
    const backoff = Math.random() * Math.min(2_000, 100 * 2 ** this.attempt++);
    this.retryTimer = setTimeout(() => this.open(), backoff);
  }
}
