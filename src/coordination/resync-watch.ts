/**
 * A prefix watch that survives compaction without a silent gap: `watchWithResync` lists the prefix
 * (a snapshot at the revision the read saw), hands it to `onSnapshot`, then watches from the next
 * revision and hands every change to `onEvent`, in revision order, one at a time (awaited). When
 * the watch cannot go on because the revisions it still needs were compacted (the watcher was
 * paused, slow or disconnected while the leader compacted), it lists the prefix again and calls
 * `onSnapshot` with reason `compacted`: the consumer replaces what it holds with the snapshot, so
 * keys deleted during the gap disappear too. A store that went back in time (fromRevision beyond
 * its current revision, e.g. etcd was recreated) is re-listed as well (reason `unknown_cursor`).
 * The event hub's shared watch and its replays (src/events/hub.ts) and the cross-cluster sync
 * (src/sync/cluster-sync.ts) are built on it.
 *
 * Memory stays bounded: when `maxPending` events wait for a slow handler, the underlying watch is
 * cancelled and re-opened from the first undelivered revision once the handler caught up (which
 * may in turn find that revision compacted and re-list). Transient store trouble is retried with
 * backoff forever; only a handler failure or a closed store stops the watcher.
 */
import { NexusError, hasCode } from '../errors.js';
import type { Coordination, KeyValue, WatchEvent, Watcher } from '../ports/coordination.js';
import { backoffDelay } from '../util/backoff.js';

/**
 * Why a consumer must drop what it holds and start over from a fresh snapshot instead of following
 * changes. One type for every resync in the project: {@link watchWithResync} snapshots, the event
 * hub's RESYNC events, /ws `resync` messages (`reason`, as is) and GraphQL's `ResyncReason` enum
 * (upper case), so the values are part of the wire protocols.
 */
export type ResyncReason =
  /** The history after the position was compacted away. */
  | 'compacted'
  /** The position is ahead of the store: the store was replaced or reset, or the cursor is bogus. */
  | 'unknown_cursor'
  /** The event hub's shared watch failed internally and started over; changes in between may be missing. */
  | 'restarted'
  /** Too many resuming subscribers already replay old history; this one got a snapshot. */
  | 'replay_limit';

/** Every key under the prefix at one revision: the state to replace the consumer's copy with. */
export interface ResyncSnapshot {
  /** Keys under the prefix (passing `filter`) in key order. */
  kvs: KeyValue[];
  /** Store revision the listing was read at; events after it follow. */
  revision: number;
  /** `initial`: the first listing (no `fromRevision`); otherwise why the watcher had to list again. */
  reason: 'initial' | Extract<ResyncReason, 'compacted' | 'unknown_cursor'>;
  /** For `compacted`: the first revision the watcher still needed. */
  missedFrom?: number;
  /** For `compacted`: the store's compact revision when the watch failed. */
  compactRevision?: number;
}

/** What a {@link watchWithResync} consumer implements. Handlers run one at a time, never concurrently. */
export interface ResyncHandlers {
  /** Replace everything held for the prefix with `snapshot` (initial listing, or after a gap). */
  onSnapshot(snapshot: ResyncSnapshot): void | Promise<void>;
  /** One change after the latest snapshot (or after `fromRevision`), in revision order. */
  onEvent(event: WatchEvent): void | Promise<void>;
  /** Called when no further event is waiting after a run of events: a good moment to flush. */
  onIdle?(revision: number): void | Promise<void>;
  /**
   * The watcher stopped for good: a handler threw or rejected (that error), or the store was
   * closed (COORDINATION_CLOSED). Not called on `cancel()`.
   */
  onError?(error: unknown): void;
  /** A transient store problem; the watcher retries after backoff (for logs). */
  onRetry?(error: unknown, attempt: number): void;
}

/** Options of {@link watchWithResync}. */
export interface ResyncWatchOptions {
  /**
   * Resume: deliver events from this revision on, without an initial snapshot (a snapshot still
   * comes if this revision was compacted). Default: start with a snapshot.
   */
  fromRevision?: number;
  /** Only keys passing this are listed and delivered (e.g. to cut a prefix at a path segment). */
  filter?: (key: string) => boolean;
  /** Events buffered for a slow handler before the watch is paused (default 10 000). */
  maxPending?: number;
  /** Cap of the retry backoff in ms (default 5 000). */
  maxBackoffMs?: number;
}

/** A running {@link watchWithResync}. */
export interface ResyncWatcher {
  /**
   * Resolves once the first snapshot was handled or the first watch is established; rejects if
   * the watcher stopped before that (fatal error or cancel).
   */
  readonly ready: Promise<void>;
  /** Resolves when the watcher has stopped (cancel or fatal error); never rejects. */
  readonly done: Promise<void>;
  /** Revision of the latest snapshot or event handed to the consumer (0 before any). */
  readonly revision: number;
  /** Snapshots taken after the initial one (compactions or resets survived). */
  readonly resyncs: number;
  /** Stop: waits for a running handler to return. Idempotent. */
  cancel(): Promise<void>;
}

type Outcome =
  | { kind: 'stopped' }
  | { kind: 'suspended' }
  | { kind: 'compacted'; missedFrom: number; compactRevision?: number }
  | { kind: 'broken'; error: unknown };

/** Wraps a consumer handler's failure so it is never mistaken for a store error. */
class HandlerFailure {
  constructor(readonly error: unknown) {}
}

class ResyncWatch implements ResyncWatcher {
  readonly ready: Promise<void>;
  readonly done: Promise<void>;
  revision = 0;
  resyncs = 0;

  private readyResolve!: () => void;
  private readyReject!: (error: unknown) => void;
  private isReady = false;
  private stopped = false;
  private readonly maxPending: number;
  private readonly maxBackoffMs: number;
  /** Accepted, not yet delivered events (a FIFO read from `head`). */
  private pending: WatchEvent[] = [];
  private head = 0;
  /** Revision of the newest accepted event (or snapshot), and which keys of it were accepted. */
  private lastRevision = 0;
  private keysAtLast = new Set<string>();
  private ended: unknown;
  private suspended = false;
  private current: Watcher | undefined;
  /** Set once a watch opened since the last failure: the next failure starts a fresh backoff. */
  private opened = false;
  private wake: (() => void) | undefined;
  private sleeper: { timer: NodeJS.Timeout; resolve: () => void } | undefined;

  constructor(
    private readonly coordination: Coordination,
    private readonly prefix: string,
    private readonly handlers: ResyncHandlers,
    private readonly options: ResyncWatchOptions,
  ) {
    this.maxPending = Math.max(1, options.maxPending ?? 10_000);
    this.maxBackoffMs = options.maxBackoffMs ?? 5_000;
    this.ready = new Promise<void>((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => undefined); // observed through `done` / onError when nobody awaits it
    this.done = this.run();
  }

  async cancel(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.markUnready(new NexusError('COORDINATION_CLOSED', 'watch cancelled'));
      this.poke();
      if (this.sleeper) {
        clearTimeout(this.sleeper.timer);
        this.sleeper.resolve();
      }
      await this.current?.cancel().catch(() => undefined);
    }
    await this.done;
  }

  private markReady(): void {
    if (this.isReady) return;
    this.isReady = true;
    this.readyResolve();
  }

  private markUnready(error: unknown): void {
    if (this.isReady) return;
    this.isReady = true;
    this.readyReject(error);
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async run(): Promise<void> {
    let snapshotReason: ResyncSnapshot['reason'] | undefined;
    let missed: { missedFrom?: number; compactRevision?: number } = {};
    if (this.options.fromRevision !== undefined && this.options.fromRevision > 0) {
      this.lastRevision = this.options.fromRevision - 1;
    } else {
      snapshotReason = 'initial';
    }
    let attempt = 0;
    while (!this.stopped) {
      try {
        if (snapshotReason === undefined && (await this.storeWentBack())) snapshotReason = 'unknown_cursor';
        if (snapshotReason !== undefined) {
          await this.snapshot(snapshotReason, missed);
          snapshotReason = undefined;
          missed = {};
        }
        const outcome = await this.watchOnce();
        if (outcome.kind === 'stopped') break;
        if (outcome.kind === 'suspended') continue;
        if (outcome.kind === 'compacted') {
          snapshotReason = 'compacted';
          missed = { missedFrom: outcome.missedFrom, compactRevision: outcome.compactRevision };
          attempt = 0;
          continue;
        }
        throw outcome.error;
      } catch (error) {
        if (this.stopped) break;
        if (error instanceof HandlerFailure) {
          this.fatal(error.error);
          break;
        }
        if (hasCode(error, 'COORDINATION_CLOSED')) {
          this.fatal(error);
          break;
        }
        if (this.opened) attempt = 0;
        this.opened = false;
        attempt += 1;
        this.handlers.onRetry?.(error, attempt);
        await this.sleep(backoffDelay(attempt, 100, this.maxBackoffMs));
      }
    }
    this.stopped = true;
    this.markUnready(new NexusError('COORDINATION_CLOSED', 'watch stopped'));
  }

  private fatal(error: unknown): void {
    this.stopped = true;
    this.markUnready(error);
    this.handlers.onError?.(error);
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleeper = undefined;
        resolve();
      }, ms);
      this.sleeper = { timer, resolve };
    });
  }

  /** The revision the next watch starts at: re-read the newest revision if only part of it was seen. */
  private resumeRevision(): number {
    return this.keysAtLast.size > 0 ? this.lastRevision : this.lastRevision + 1;
  }

  /** True when the store's revision is below where we resume, i.e. it was reset or replaced. */
  private async storeWentBack(): Promise<boolean> {
    const current = await this.coordination.revision();
    return this.resumeRevision() > current + 1;
  }

  private async snapshot(
    reason: ResyncSnapshot['reason'],
    missed: { missedFrom?: number; compactRevision?: number },
  ): Promise<void> {
    const listing = await this.coordination.range(this.prefix);
    if (this.stopped) return;
    const filter = this.options.filter;
    const kvs = filter ? listing.kvs.filter((kv) => filter(kv.key)) : listing.kvs;
    await this.call(() => this.handlers.onSnapshot({ kvs, revision: listing.revision, reason, ...missed }));
    if (reason !== 'initial') this.resyncs += 1;
    this.lastRevision = listing.revision;
    this.keysAtLast = new Set();
    this.revision = listing.revision;
    this.markReady();
  }

  private async call(fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      throw new HandlerFailure(error);
    }
  }

  /** Take an event from the store's watch: drop what was already accepted, pause on overflow. */
  private accept(event: WatchEvent): void {
    if (this.stopped || this.suspended) return;
    const key = event.type === 'put' ? event.kv.key : event.key;
    if (this.options.filter && !this.options.filter(key)) return;
    if (event.revision < this.lastRevision) return;
    if (event.revision === this.lastRevision) {
      if (this.keysAtLast.has(key)) return;
      this.keysAtLast.add(key);
    } else {
      this.lastRevision = event.revision;
      this.keysAtLast = new Set([key]);
    }
    this.pending.push(event);
    if (this.pending.length - this.head >= this.maxPending) {
      // Stop reading; resume from the first revision not accepted once the handler caught up.
      this.suspended = true;
      void this.current?.cancel().catch(() => undefined);
    }
    this.poke();
  }

  /** One watch from the resume revision: deliver until it ends, is suspended, or we stop. */
  private async watchOnce(): Promise<Outcome> {
    this.pending = [];
    this.head = 0;
    this.ended = undefined;
    this.suspended = false;
    const from = this.resumeRevision();
    const watcher = await this.coordination.watch(this.prefix, {
      fromRevision: from,
      onEvent: (event) => this.accept(event),
      onError: (error) => {
        this.ended = error;
        this.poke();
      },
    });
    this.current = watcher;
    this.opened = true;
    if (this.stopped) await watcher.cancel();
    try {
      let delivered = 0;
      for (;;) {
        if (this.stopped) return { kind: 'stopped' };
        if (this.head < this.pending.length) {
          const event = this.pending[this.head]!;
          this.pending[this.head] = undefined as never;
          this.head += 1;
          if (this.head > 1024 && this.head * 2 > this.pending.length) {
            this.pending = this.pending.slice(this.head);
            this.head = 0;
          }
          await this.call(() => this.handlers.onEvent(event));
          this.revision = event.revision;
          delivered += 1;
          continue;
        }
        if (delivered > 0) {
          delivered = 0;
          const onIdle = this.handlers.onIdle;
          if (onIdle) {
            await this.call(() => onIdle.call(this.handlers, this.revision));
            continue; // events may have arrived meanwhile
          }
        }
        if (this.ended !== undefined) return this.classify(this.ended, from);
        if (this.suspended) return { kind: 'suspended' };
        // Nothing compacted can be reported before the watch is confirmed, so we are live now.
        this.markReady();
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if (this.stopped || this.head < this.pending.length || this.ended !== undefined || this.suspended) {
            this.poke();
          }
        });
      }
    } finally {
      this.current = undefined;
      await watcher.cancel().catch(() => undefined);
    }
  }

  private classify(error: unknown, from: number): Outcome {
    if (hasCode(error, 'COMPACTED')) {
      const compactRevision = Number(error.details.compactRevision);
      return {
        kind: 'compacted',
        missedFrom: Number(error.details.fromRevision ?? from),
        compactRevision: Number.isFinite(compactRevision) ? compactRevision : undefined,
      };
    }
    return { kind: 'broken', error };
  }
}

/**
 * Watch every key under `prefix` with no silent gap: an initial snapshot (unless resuming from
 * `options.fromRevision`), then events; after a compaction (or a reset store) a fresh snapshot
 * replaces the consumer's state and events continue after it. See the module comment.
 */
export function watchWithResync(
  coordination: Coordination,
  prefix: string,
  handlers: ResyncHandlers,
  options: ResyncWatchOptions = {},
): ResyncWatcher {
  return new ResyncWatch(coordination, prefix, handlers, options);
}

/**
 * Apply a snapshot or an event to an in-memory copy of the prefix (key -> value): the simplest
 * consumer, used by tests and by tools that keep a local mirror.
 */
export function applyToMap(state: Map<string, string>, change: ResyncSnapshot | WatchEvent): void {
  if ('kvs' in change) {
    state.clear();
    for (const kv of change.kvs) state.set(kv.key, kv.value);
  } else if (change.type === 'put') {
    state.set(change.kv.key, change.kv.value);
  } else {
    state.delete(change.key);
  }
}
