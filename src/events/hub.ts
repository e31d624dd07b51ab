/**
 * The event stream shared by GraphQL subscriptions and /ws: one watch on the live hierarchy (etcd
 * Watch in nexus mode, the in-process store's watch in embedded mode) fans out to every subscriber,
 * and keeps a bounded ring of recent events for resuming ones.
 *
 * A subscriber starts in one of four ways:
 * - fresh: live events from now on;
 * - `snapshot`: one SNAPSHOT event per GPU record (read at revision R), then live events after R;
 * - `after` a cursor the ring still covers: the missed events from the ring, then live;
 * - `after` an older cursor: a watch of its own from the cursor's revision replays the store's history
 *   and hands over to the shared stream once it reaches what the ring holds. If that history was
 *   compacted (or the cursor is ahead of the store), a RESYNC marker, a snapshot, then live events.
 * Events reach each subscriber in cursor order (revision, then index within it), each once.
 * Delivery is synchronous; a subscriber that cannot keep up must buffer within its own bound (the
 * transports drop slow clients).
 */
import { hasCode, NexusError } from '../errors.js';
import { CLUSTERS_PREFIX } from '../hierarchy/paths.js';
import type { Coordination, WatchEvent, Watcher } from '../ports/coordination.js';
import type { Logger } from '../util/logger.js';
import {
  beforeRevision,
  type Cursor,
  formatCursor,
  isAfter,
  RevisionIndexer,
  WHOLE_REVISION as WHOLE,
  wholeRevision,
} from './cursor.js';
import { decodeWatchEvent, snapshotEvents } from './decode.js';
import type { CompiledFilter } from './filter.js';
import { EventRing } from './ring.js';
import type { ResyncReason, TelemetryEvent } from './types.js';

/** Options of {@link EventHub}. */
export interface EventHubOptions {
  coordination: Coordination;
  /** Events kept for resuming subscribers (default 10 000). */
  historyLimit?: number;
  /** Most subscribers replaying old history on watches of their own at once (default 64). */
  maxReplayWatches?: number;
  /** Wait before restarting a broken shared watch (default 1000 ms, doubled per failure up to 30 s). */
  restartDelayMs?: number;
  logger?: Logger;
  now?: () => number;
}

/** What a subscriber gets. */
export interface SubscribeOptions {
  filter: CompiledFilter;
  /** Resume after this cursor (see cursor.ts): later events follow. */
  after?: Cursor;
  /** Start with a snapshot of the current GPU records (ignored with `after`). */
  snapshot?: boolean;
  /** Called once the start position is fixed, before any event: the cursor the stream starts after. */
  onReady?: (cursor: Cursor) => void;
  /** Each matching event, in revision order. Throwing ends the subscription. */
  onEvent: (event: TelemetryEvent) => void;
  /** Called once when the stream ends on its own (error) or the hub closes; not after `close()`. */
  onEnd?: (error?: Error) => void;
}

/** A running subscription. */
export interface EventSubscription {
  /** Stop delivering. Idempotent. */
  close(): void;
}

/** Counters for metrics and tests. */
export interface EventHubStats {
  subscribers: number;
  replaying: number;
  /** Replays started since the hub opened. */
  replays: number;
  events: number;
  resyncs: number;
  restarts: number;
}

type State = 'setup' | 'live' | 'replay' | 'closed';

interface Subscriber {
  filter: CompiledFilter;
  onEvent: (event: TelemetryEvent) => void;
  onEnd: ((error?: Error) => void) | undefined;
  onReady: ((cursor: Cursor) => void) | undefined;
  ready: boolean;
  /** Events at or before this cursor are not delivered (the resume boundary). */
  after: Cursor;
  state: State;
  replay?: Watcher;
}

/** Whether a subscriber was closed (a function, so checks after an await are not narrowed away). */
const isClosed = (sub: Subscriber): boolean => sub.state === 'closed';

const MAX_RESYNC_ATTEMPTS = 3;
const MAX_RESTART_DELAY_MS = 30_000;

/** One shared watch over the hierarchy, fanned out to filtered, resumable subscribers. */
export class EventHub {
  private readonly coordination: Coordination;
  private readonly maxReplays: number;
  private readonly restartDelayMs: number;
  private readonly log: Logger | undefined;
  private readonly now: () => number;
  private readonly ring: EventRing;
  private readonly live = new Set<Subscriber>();
  private readonly all = new Set<Subscriber>();
  /** UUID of every GPU key seen, so a removal can say which GPU went. */
  private readonly uuidByKey = new Map<string, string>();
  private watcher: Watcher | undefined;
  private starting: Promise<void> | undefined;
  private healthy = false;
  private closed = false;
  private failures = 0;
  /** Incremented per shared watch opened or broken; events of older watches are ignored. */
  private generation = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Numbers the shared watch's changes within each revision. */
  private indexer = new RevisionIndexer();
  private readonly counters = { events: 0, resyncs: 0, restarts: 0, replaying: 0, replays: 0 };

  constructor(options: EventHubOptions) {
    this.coordination = options.coordination;
    this.maxReplays = options.maxReplayWatches ?? 64;
    this.restartDelayMs = options.restartDelayMs ?? 1000;
    this.log = options.logger;
    this.now = options.now ?? Date.now;
    this.ring = new EventRing(options.historyLimit ?? 10_000, 1);
  }

  /** Revision of the newest event the shared watch delivered (the live position). */
  get head(): number {
    return this.ring.head;
  }

  /** Current counters. */
  get stats(): EventHubStats {
    return {
      subscribers: this.all.size,
      replaying: this.counters.replaying,
      replays: this.counters.replays,
      events: this.counters.events,
      resyncs: this.counters.resyncs,
      restarts: this.counters.restarts,
    };
  }

  /** Open the shared watch (idempotent; subscribe() calls it too). */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new NexusError('COORDINATION_CLOSED', 'event stream is closed'));
    if (!this.starting) {
      this.starting = this.open().catch((error: unknown) => {
        this.starting = undefined;
        throw error;
      });
    }
    return this.starting;
  }

  /** Subscribe; resolves once the start position is fixed (events may already have been delivered). */
  async subscribe(options: SubscribeOptions): Promise<EventSubscription> {
    await this.start();
    const sub: Subscriber = {
      filter: options.filter,
      onEvent: options.onEvent,
      onEnd: options.onEnd,
      onReady: options.onReady,
      ready: false,
      after: wholeRevision(0),
      state: 'setup',
    };
    this.all.add(sub);
    const subscription: EventSubscription = { close: () => this.drop(sub) };
    try {
      await this.place(sub, options);
    } catch (error) {
      this.drop(sub);
      throw error;
    }
    return subscription;
  }

  /** Stop the shared watch and every replay; subscribers get `onEnd()`. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.healthy = false;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const watcher = this.watcher;
    this.watcher = undefined;
    for (const sub of [...this.all]) this.end(sub);
    await watcher?.cancel().catch(() => undefined);
  }

  // --- placement of a new subscriber ---

  private async place(sub: Subscriber, options: SubscribeOptions): Promise<void> {
    const after = options.after;
    if (after === undefined) {
      if (options.snapshot) await this.resync(sub, undefined);
      else if (!this.attachLive(sub, wholeRevision(this.ring.head))) await this.resync(sub, 'restarted');
      return;
    }
    if (!Number.isSafeInteger(after.revision) || after.revision < 0)
      throw new NexusError('BAD_REQUEST', `cursor ${formatCursor(after)} is not a revision`, {
        details: { parameter: 'after' },
      });
    if (after.revision > this.ring.head && after.revision > (await this.coordination.revision())) {
      await this.resync(sub, 'unknown_cursor');
    } else if (this.attachLive(sub, after)) {
      return;
    } else if (this.counters.replaying < this.maxReplays) {
      await this.startReplay(sub, after);
    } else {
      await this.resync(sub, 'replay_limit');
    }
  }

  /** Mark the start position (once) and tell the subscriber. */
  private ready(sub: Subscriber, cursor: Cursor): void {
    sub.after = cursor;
    if (sub.ready) return;
    sub.ready = true;
    sub.onReady?.(cursor);
  }

  /** Serve `sub` from the ring and the shared watch after `after`; false if the ring cannot. */
  private attachLive(sub: Subscriber, after: Cursor): boolean {
    if (isClosed(sub)) return true;
    if (!this.healthy || !this.ring.covers(after)) return false;
    this.ready(sub, after);
    sub.state = 'live';
    this.live.add(sub);
    for (const event of this.ring.since(after)) {
      if (sub.state !== 'live') break;
      this.deliver(sub, event);
    }
    return true;
  }

  /** Replay the store's history after `after` on a watch of the subscriber's own. */
  private async startReplay(sub: Subscriber, after: Cursor): Promise<void> {
    sub.state = 'replay';
    this.counters.replaying += 1;
    this.counters.replays += 1;
    this.ready(sub, after);
    let handedOver = false;
    const stopReplay = (): void => {
      if (handedOver) return;
      handedOver = true;
      this.counters.replaying -= 1;
      const watcher = sub.replay;
      sub.replay = undefined;
      void watcher?.cancel().catch(() => undefined);
    };
    const indexer = new RevisionIndexer();
    const onEvent = (we: WatchEvent): void => {
      if (handedOver || sub.state !== 'replay') return;
      const index = indexer.next(we.revision);
      // At a revision boundary everything before has been delivered: hand over when the ring has the rest.
      if (index === 0 && this.healthy && this.ring.covers(beforeRevision(we.revision))) {
        stopReplay();
        sub.state = 'setup';
        this.attachLive(sub, beforeRevision(we.revision));
        return;
      }
      const event = decodeWatchEvent(we, this.now(), index);
      if (event) this.deliver(sub, event);
    };
    const onError = (error: Error): void => {
      if (handedOver || sub.state !== 'replay') return;
      stopReplay();
      sub.state = 'setup';
      if (hasCode(error, 'COMPACTED')) {
        this.resync(sub, 'compacted').catch((e: unknown) => this.fail(sub, e));
      } else {
        this.fail(sub, error);
      }
    };
    try {
      sub.replay = await this.coordination.watch(CLUSTERS_PREFIX, {
        // A cursor inside a revision replays that revision; deliver() skips what was seen.
        fromRevision: after.index === WHOLE ? after.revision + 1 : after.revision,
        onEvent,
        onError,
      });
      if (handedOver || isClosed(sub)) stopReplay();
    } catch (error) {
      stopReplay();
      throw error;
    }
  }

  /**
   * Read the current GPU records, send them as SNAPSHOT events (after a RESYNC marker when `reason`
   * is given), then serve live events after the read's revision.
   */
  private async resync(sub: Subscriber, reason: ResyncReason | undefined): Promise<void> {
    for (let attempt = 0; attempt < MAX_RESYNC_ATTEMPTS; attempt++) {
      await this.start();
      if (isClosed(sub)) return;
      const { kvs, revision } = await this.coordination.range(CLUSTERS_PREFIX);
      if (isClosed(sub)) return;
      if (!this.healthy || !this.ring.covers(wholeRevision(revision))) continue;
      const snapshot = snapshotEvents(kvs, revision).filter((e) => sub.filter.matches(e));
      sub.state = 'setup';
      this.ready(sub, wholeRevision(revision));
      if (reason) {
        this.counters.resyncs += 1;
        this.emit(sub, {
          eventType: 'RESYNC',
          revision,
          clusterId: '',
          timestampMs: this.now(),
          observedAtMs: 0,
          metrics: {},
          resync: { reason, snapshotSize: snapshot.length },
        });
      }
      for (const event of snapshot) {
        if (isClosed(sub)) return;
        this.emit(sub, event);
      }
      if (this.attachLive(sub, wholeRevision(revision))) return;
    }
    throw new NexusError('BACKEND_UNAVAILABLE', 'could not take a consistent snapshot of the hierarchy');
  }

  // --- delivery ---

  private deliver(sub: Subscriber, event: TelemetryEvent): void {
    if (!isAfter(event, sub.after) || !sub.filter.matches(event)) return;
    this.emit(sub, event);
  }

  private emit(sub: Subscriber, event: TelemetryEvent): void {
    if (isClosed(sub)) return;
    try {
      sub.onEvent(event);
    } catch (error) {
      this.fail(sub, error);
    }
  }

  /** End a subscription with an error, telling the subscriber. */
  private fail(sub: Subscriber, error: unknown): void {
    if (isClosed(sub)) return;
    this.log?.warn({ err: error }, 'event subscription ended');
    this.end(sub, error instanceof Error ? error : new Error(String(error)));
  }

  private end(sub: Subscriber, error?: Error): void {
    if (isClosed(sub)) return;
    const onEnd = sub.onEnd;
    this.drop(sub);
    onEnd?.(error);
  }

  /** Remove a subscriber without telling it (it asked to go). */
  private drop(sub: Subscriber): void {
    if (isClosed(sub)) return;
    if (sub.replay) {
      this.counters.replaying -= 1;
      void sub.replay.cancel().catch(() => undefined);
      sub.replay = undefined;
    }
    sub.state = 'closed';
    this.live.delete(sub);
    this.all.delete(sub);
  }

  // --- the shared watch ---

  private async open(): Promise<void> {
    const generation = ++this.generation;
    const current = await this.coordination.revision();
    this.ring.reset(current + 1);
    this.indexer = new RevisionIndexer();
    const watcher = await this.coordination.watch(CLUSTERS_PREFIX, {
      fromRevision: current + 1,
      // Events and errors of an earlier (broken) watch are ignored.
      onEvent: (we) => {
        if (generation === this.generation) this.onWatchEvent(we);
      },
      onError: (error) => {
        if (generation === this.generation) this.onWatchError(error);
      },
    });
    if (this.closed) {
      await watcher.cancel().catch(() => undefined);
      return;
    }
    this.watcher = watcher;
    this.healthy = true;
    this.failures = 0;
  }

  private onWatchEvent(we: WatchEvent): void {
    if (!this.healthy) return;
    const event = decodeWatchEvent(we, this.now(), this.indexer.next(we.revision));
    if (!event) return;
    const key = we.type === 'put' ? we.kv.key : we.key;
    if (event.eventType === 'GPU_UPDATE' && event.uuid) this.uuidByKey.set(key, event.uuid);
    else if (event.eventType === 'GPU_REMOVED') {
      const uuid = this.uuidByKey.get(key);
      if (uuid !== undefined) event.uuid = uuid;
      this.uuidByKey.delete(key);
    }
    this.counters.events += 1;
    this.ring.push(event);
    for (const sub of this.live) this.deliver(sub, event);
  }

  private onWatchError(error: Error): void {
    this.healthy = false;
    this.generation += 1;
    const broken = this.watcher;
    this.watcher = undefined;
    void broken?.cancel().catch(() => undefined);
    if (this.closed) return;
    if (hasCode(error, 'COORDINATION_CLOSED')) {
      for (const sub of [...this.all]) this.end(sub, error);
      return;
    }
    this.log?.warn({ err: error }, 'event watch broke; restarting it, subscribers will resync');
    const waiting = [...this.live];
    for (const sub of waiting) {
      this.live.delete(sub);
      sub.state = 'setup';
    }
    this.starting = undefined;
    this.scheduleRestart(waiting);
  }

  private scheduleRestart(waiting: Subscriber[]): void {
    const delay = Math.min(MAX_RESTART_DELAY_MS, this.restartDelayMs * 2 ** this.failures);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closed) return;
      this.start().then(
        () => {
          this.counters.restarts += 1;
          for (const sub of waiting) {
            if (!isClosed(sub)) this.resync(sub, 'restarted').catch((e: unknown) => this.fail(sub, e));
          }
        },
        (error: unknown) => {
          this.failures += 1;
          this.log?.warn({ err: error }, 'restarting the event watch failed; retrying');
          this.scheduleRestart(waiting);
        },
      );
    }, delay);
    this.restartTimer.unref();
  }
}
