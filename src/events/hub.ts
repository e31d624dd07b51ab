/**
 * The event stream shared by GraphQL subscriptions and /ws: one compaction-safe watch on the live
 * hierarchy ({@link watchWithResync} over the coordination port: etcd Watch in nexus mode, the
 * in-process store's watch in embedded mode) fans out to every subscriber, and keeps a bounded ring
 * of recent events for resuming ones.
 *
 * A subscriber starts in one of four ways:
 * - fresh: live events from now on;
 * - `snapshot`: one SNAPSHOT event per GPU record (read at revision R), then live events after R;
 * - `after` a cursor the ring still covers: the missed events from the ring, then live;
 * - `after` an older cursor: a watch of its own ({@link watchWithResync} from the cursor's revision)
 *   replays the store's history and hands over to the shared stream once it reaches what the ring
 *   holds. If that history was compacted (or the cursor is ahead of the store), a RESYNC marker, a
 *   snapshot, then live events.
 * Events reach each subscriber in cursor order (revision, then index within it), each once.
 * Delivery is synchronous; a subscriber that cannot keep up must buffer within its own bound (the
 * transports drop slow clients).
 *
 * The shared watch outlives store trouble. A lost connection is retried with backoff and resumes at
 * the first change not yet delivered: no gap, no RESYNC. If the hub's own position was compacted
 * meanwhile (or the store went back in time), the fresh listing goes to every live and replaying
 * subscriber as a RESYNC marker (`compacted` / `unknown_cursor`) and SNAPSHOT events, and live events
 * follow. A closed store ends every subscription; an internal failure of the hub's handling restarts
 * the shared watch after a delay, and its live subscribers get RESYNC `restarted`.
 */
import {
  watchWithResync,
  type ResyncHandlers,
  type ResyncReason,
  type ResyncSnapshot,
  type ResyncWatcher,
  type ResyncWatchOptions,
} from '../coordination/resync-watch.js';
import { hasCode, NexusError } from '../errors.js';
import { CLUSTERS_PREFIX } from '../hierarchy/paths.js';
import type { Coordination, WatchEvent } from '../ports/coordination.js';
import { backoffDelay } from '../util/backoff.js';
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
import type { TelemetryEvent } from './types.js';

/** Options of {@link EventHub}. */
export interface EventHubOptions {
  coordination: Coordination;
  /** Events kept for resuming subscribers (default 10 000). */
  historyLimit?: number;
  /** Most subscribers replaying old history on watches of their own at once (default 64). */
  maxReplayWatches?: number;
  /**
   * Base wait before restarting the shared watch after an internal failure (default 1000 ms; the
   * wait grows per consecutive failure up to 30 s, with jitter). Store outages do not restart it:
   * the watch resumes on its own.
   */
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
  /** RESYNC markers sent to subscribers. */
  resyncs: number;
  /** Times the shared watch resumed after a store failure or restarted after an internal one. */
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
  /** The subscriber's own watch while it replays history (state `replay`). */
  replay?: ResyncWatcher;
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
  private uuidByKey = new Map<string, string>();
  /** The shared watch; handlers of any other (stopped) watcher are ignored. */
  private watcher: ResyncWatcher | undefined;
  private starting: Promise<void> | undefined;
  /** The shared watch has taken its listing and feeds the ring. */
  private healthy = false;
  private closed = false;
  /** Consecutive internal failures of the shared watch (for the restart delay). */
  private failures = 0;
  /** Set after an internal failure: what the next listing tells the live subscribers. */
  private liveResync: ResyncReason | undefined;
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

  /**
   * Open the shared watch (idempotent; subscribe() calls it too). Resolves once the hierarchy was
   * listed; rejects if the store cannot be reached (a later call tries again).
   */
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
    await watcher?.cancel();
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

  /**
   * A {@link watchWithResync} of the hierarchy whose first store failure is reported instead of
   * retried: `opened` rejects with it (and the watcher stops) if it comes before the watch is ready.
   */
  private watchHierarchy(
    handlers: ResyncHandlers,
    options: ResyncWatchOptions = {},
  ): { watcher: ResyncWatcher; opened: Promise<void> } {
    let isOpen = false;
    let failed!: (error: unknown) => void;
    const failure = new Promise<never>((_, reject) => (failed = reject));
    failure.catch(() => undefined);
    const watcher = watchWithResync(
      this.coordination,
      CLUSTERS_PREFIX,
      {
        ...handlers,
        onRetry: (error, attempt) => {
          if (isOpen) {
            handlers.onRetry?.(error, attempt);
            return;
          }
          failed(error);
          void watcher.cancel();
        },
      },
      options,
    );
    const opened = Promise.race([watcher.ready, failure]).then(() => {
      isOpen = true;
    });
    return { watcher, opened };
  }

  /** Replay the store's history after `after` on a watch of the subscriber's own. */
  private async startReplay(sub: Subscriber, after: Cursor): Promise<void> {
    sub.state = 'replay';
    this.counters.replaying += 1;
    this.counters.replays += 1;
    this.ready(sub, after);
    const indexer = new RevisionIndexer();
    const { watcher, opened } = this.watchHierarchy(
      {
        // The history after the cursor is gone (or the cursor is ahead of the store): start over.
        onSnapshot: (snapshot) => {
          if (sub.replay !== watcher) return;
          const reason = snapshot.reason === 'initial' ? undefined : snapshot.reason;
          this.sendSnapshot(sub, reason, snapshotEvents(snapshot.kvs, snapshot.revision), snapshot.revision);
          this.handOver(sub, wholeRevision(snapshot.revision));
        },
        onEvent: (we) => {
          if (sub.replay !== watcher) return;
          const index = indexer.next(we.revision);
          // At a revision boundary everything before has been delivered: hand over when the ring has the rest.
          if (index === 0 && this.handOver(sub, beforeRevision(we.revision))) return;
          const event = decodeWatchEvent(we, this.now(), index);
          if (event) this.deliver(sub, event);
        },
        onError: (error) => {
          if (sub.replay !== watcher) return;
          this.stopReplay(sub);
          this.fail(sub, error);
        },
      },
      // A cursor inside a revision replays that revision; deliver() skips what was seen.
      { fromRevision: Math.max(1, after.index === WHOLE ? after.revision + 1 : after.revision) },
    );
    sub.replay = watcher;
    try {
      await opened;
    } catch (error) {
      if (sub.replay !== watcher) return; // handed over or closed meanwhile
      this.stopReplay(sub);
      throw error;
    }
  }

  /** Move a replaying subscriber to the shared stream if the ring holds every event after `at`. */
  private handOver(sub: Subscriber, at: Cursor): boolean {
    if (isClosed(sub)) return true;
    if (!this.healthy || !this.ring.covers(at)) return false;
    this.stopReplay(sub);
    sub.state = 'setup';
    // Never move the boundary back (a cursor inside the revision `at` ends before).
    this.attachLive(sub, sub.after.revision > at.revision ? sub.after : at);
    return true;
  }

  private stopReplay(sub: Subscriber): void {
    const replay = sub.replay;
    if (!replay) return;
    sub.replay = undefined;
    this.counters.replaying -= 1;
    void replay.cancel();
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
      sub.state = 'setup';
      this.sendSnapshot(sub, reason, snapshotEvents(kvs, revision), revision);
      if (this.attachLive(sub, wholeRevision(revision))) return;
    }
    throw new NexusError('BACKEND_UNAVAILABLE', 'could not take a consistent snapshot of the hierarchy');
  }

  /**
   * Send `sub` the matching `snapshot` events of a listing read at `revision`, after a RESYNC marker
   * when `reason` is given; its stream goes on after `revision`.
   */
  private sendSnapshot(
    sub: Subscriber,
    reason: ResyncReason | undefined,
    snapshot: TelemetryEvent[],
    revision: number,
  ): void {
    const matching = snapshot.filter((e) => sub.filter.matches(e));
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
        resync: { reason, snapshotSize: matching.length },
      });
    }
    for (const event of matching) {
      if (isClosed(sub)) return;
      this.emit(sub, event);
    }
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
    this.stopReplay(sub);
    sub.state = 'closed';
    this.live.delete(sub);
    this.all.delete(sub);
  }

  // --- the shared watch ---

  private async open(): Promise<void> {
    const { watcher, opened } = this.watchHierarchy({
      onSnapshot: (snapshot) => {
        if (watcher === this.watcher) this.onSharedSnapshot(snapshot);
      },
      onEvent: (we) => {
        if (watcher === this.watcher) this.onSharedEvent(we);
      },
      onError: (error) => {
        if (watcher === this.watcher) this.onSharedError(error);
      },
      onRetry: (error, attempt) => {
        if (watcher !== this.watcher) return;
        this.counters.restarts += 1;
        this.log?.warn({ err: error, attempt }, 'event watch interrupted; resuming where it stopped');
      },
    });
    this.watcher = watcher;
    try {
      await opened;
    } catch (error) {
      if (watcher === this.watcher) this.watcher = undefined;
      throw error;
    }
  }

  /**
   * A listing of the shared watch: the first one, or a fresh one after the watch's position was
   * compacted (or the store went back). The ring starts over after it; subscribers that may have
   * missed changes get it as RESYNC + SNAPSHOT events.
   */
  private onSharedSnapshot(snapshot: ResyncSnapshot): void {
    if (this.closed) return;
    const uuids = new Map<string, string>();
    const events = snapshotEvents(snapshot.kvs, snapshot.revision, uuids);
    this.uuidByKey = uuids;
    this.ring.reset(snapshot.revision + 1);
    this.indexer = new RevisionIndexer();
    this.healthy = true;
    const reason = snapshot.reason === 'initial' ? this.liveResync : snapshot.reason;
    this.liveResync = undefined;
    if (snapshot.reason === 'initial' && reason) {
      // Restarted after an internal failure.
      this.counters.restarts += 1;
      this.failures = 0;
    }
    if (!reason) return;
    this.log?.warn(
      {
        reason,
        revision: snapshot.revision,
        missedFrom: snapshot.missedFrom,
        compactRevision: snapshot.compactRevision,
      },
      'event watch started over from a fresh listing; subscribers get RESYNC',
    );
    for (const sub of [...this.all]) {
      // After a restart, replays are intact (their own watches); after a gap in the store's
      // history they are not (compacted too, or behind a reset store).
      if (sub.state !== 'live' && (sub.state !== 'replay' || reason === 'restarted')) continue;
      this.stopReplay(sub);
      sub.state = 'live';
      this.live.add(sub);
      this.sendSnapshot(sub, reason, events, snapshot.revision);
    }
  }

  private onSharedEvent(we: WatchEvent): void {
    const event = decodeWatchEvent(we, this.now(), this.indexer.next(we.revision));
    if (!event) return;
    const key = we.type === 'put' ? we.kv.key : we.key;
    if (event.eventType === 'GPU_REMOVED' || event.eventType === 'MIG_REMOVED') {
      const uuid = this.uuidByKey.get(key);
      if (uuid !== undefined) event.uuid = uuid;
      this.uuidByKey.delete(key);
    } else if (event.eventType === 'GPU_OUTLIER') {
      // An outlier mark's key is under its GPU's: a cleared mark is named by the GPU's UUID too.
      event.uuid ||= this.uuidByKey.get(key.slice(0, -'/outlier'.length)) ?? '';
    } else if (event.uuid && event.gpuIndex !== undefined) this.uuidByKey.set(key, event.uuid);
    this.counters.events += 1;
    this.ring.push(event);
    for (const sub of this.live) this.deliver(sub, event);
  }

  /** The shared watch stopped for good: the store closed, or a handler of ours failed. */
  private onSharedError(error: unknown): void {
    const wasOpen = this.healthy;
    this.watcher = undefined;
    this.healthy = false;
    this.starting = undefined;
    if (this.closed) return;
    if (hasCode(error, 'COORDINATION_CLOSED')) {
      const reason = error instanceof Error ? error : new Error(String(error));
      for (const sub of [...this.all]) this.end(sub, reason);
      return;
    }
    if (!wasOpen) return; // start() reports it
    this.log?.error({ err: error }, 'event watch failed; restarting it, live subscribers will resync');
    this.liveResync = 'restarted';
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.restartTimer || this.closed) return;
    this.failures += 1;
    const delay = backoffDelay(this.failures, this.restartDelayMs, MAX_RESTART_DELAY_MS);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.closed) return;
      this.start().catch((error: unknown) => {
        this.log?.warn({ err: error }, 'restarting the event watch failed; retrying');
        if (!this.watcher) this.scheduleRestart();
      });
    }, delay);
    this.restartTimer.unref();
  }
}
