/**
 * Cross-cluster state sync: mirrors one cluster's live hierarchy (`/telemetry/clusters/{id}` and
 * everything under `/telemetry/clusters/{id}/`) from a source coordination store to a target one,
 * one way, puts and deletes, so an API server on the shared target lists every mirrored cluster.
 *
 * Source changes arrive through {@link watchWithResync} (no silent gap across compactions). Each
 * target txn carries a run of mirrored changes (the last write per key) together with the
 * checkpoint `/telemetry/sync/{id}/revision`: the source revision the target is complete through.
 * A restarted sync resumes from the checkpoint, or lists the source again when that revision was
 * compacted. Every txn is guarded on the checkpoint's mod revision, so two syncs of the same
 * cluster cannot interleave writes: the loser restarts from the winner's checkpoint.
 *
 * Failures of either store restart the mirror from the checkpoint after a backoff; nothing is
 * written twice in a harmful way because every mirrored write is idempotent (same key, same value).
 */
import { NexusError } from '../errors.js';
import { watchWithResync, type ResyncSnapshot, type ResyncWatcher } from '../coordination/resync-watch.js';
import { clusterKey } from '../hierarchy/paths.js';
import type { Coordination, TxnOp, WatchEvent } from '../ports/coordination.js';
import { backoffDelay } from '../util/backoff.js';
import type { Logger } from '../util/logger.js';

/** Root of the sync checkpoints in the target store. */
export const SYNC_PREFIX = '/telemetry/sync/';

/** The key holding the source revision the target is complete through, for cluster `clusterId`. */
export const syncCheckpointKey = (clusterId: string): string =>
  `${SYNC_PREFIX}${encodeURIComponent(clusterId)}/revision`;

/** The value of a checkpoint key. */
export interface SyncCheckpoint {
  /** Source revision whose changes (and all before) are in the target. */
  revision: number;
  /** Which source (e.g. its endpoints), for operators. */
  source: string;
  /** When it was written, RFC 3339. */
  at: string;
}

/** True when `key` belongs to cluster `clusterId`'s hierarchy (not to a cluster whose id merely starts alike). */
export function inClusterTree(clusterId: string, key: string): boolean {
  const root = clusterKey(clusterId);
  return key === root || key.startsWith(`${root}/`);
}

/** Options of {@link ClusterSync}. */
export interface ClusterSyncOptions {
  source: Coordination;
  target: Coordination;
  clusterId: string;
  logger: Logger;
  /** Names the source in the checkpoint and logs (e.g. its endpoints). Default `source`. */
  sourceName?: string;
  /** Most writes per target txn, checkpoint included (default 64; etcd allows 128). */
  maxOpsPerTxn?: number;
  /** Source events buffered for a slow target before the source watch pauses (default 10 000). */
  maxPending?: number;
  /** Longest backoff between restarts after a failure, ms (default 5 000). */
  maxBackoffMs?: number;
  /** Interval of the "applied through" progress log line, ms (default 10 000). */
  progressLogMs?: number;
}

/** Counters of one {@link ClusterSync} since start. */
export interface ClusterSyncStats {
  /** Source revision the target is complete through (the checkpoint value). */
  appliedRevision: number;
  /** Snapshots applied, the initial one included. */
  snapshots: number;
  /** Snapshots taken because the needed history had been compacted (or the source was reset). */
  resyncs: number;
  /** Source events mirrored. */
  events: number;
  /** Target txns written. */
  txns: number;
  /** Restarts after a failure of either store (or a checkpoint conflict). */
  restarts: number;
}

/** Parse a checkpoint value; undefined when it is not one. A bare number is accepted too. */
export function parseCheckpoint(value: string): SyncCheckpoint | undefined {
  const bare = Number(value);
  if (value.trim() !== '' && Number.isSafeInteger(bare) && bare >= 0) {
    return { revision: bare, source: '', at: '' };
  }
  try {
    const parsed = JSON.parse(value) as Partial<SyncCheckpoint>;
    if (
      typeof parsed.revision !== 'number' ||
      !Number.isSafeInteger(parsed.revision) ||
      parsed.revision < 0
    ) {
      return undefined;
    }
    return { revision: parsed.revision, source: String(parsed.source ?? ''), at: String(parsed.at ?? '') };
  } catch {
    return undefined;
  }
}

/** One-way mirror of one cluster's hierarchy; see the module comment. */
export class ClusterSync {
  readonly stats: ClusterSyncStats = {
    appliedRevision: 0,
    snapshots: 0,
    resyncs: 0,
    events: 0,
    txns: 0,
    restarts: 0,
  };
  private readonly log: Logger;
  private readonly checkpointKey: string;
  private readonly maxOps: number;
  private readonly sourceName: string;
  private stopping = false;
  private running: Promise<void> | undefined;
  private watcher: ResyncWatcher | undefined;
  private sleeper: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  /** Mod revision of the checkpoint key as we last wrote or read it (0: absent). */
  private fence = 0;
  /** Pending mirrored writes, last write per key. */
  private buffer = new Map<string, TxnOp>();
  /** Newest source revision received, and the newest one known to be complete. */
  private seenThrough = 0;
  private completeThrough = 0;
  private lastProgressLog = 0;
  private readonly waiters = new Set<{ revision: number; resolve: () => void }>();

  constructor(private readonly options: ClusterSyncOptions) {
    this.log = options.logger.child({ component: 'sync', clusterId: options.clusterId });
    this.checkpointKey = syncCheckpointKey(options.clusterId);
    this.maxOps = Math.min(128, Math.max(2, options.maxOpsPerTxn ?? 64));
    this.sourceName = options.sourceName ?? 'source';
  }

  /** Start mirroring in the background (restarting after failures until {@link stop}). */
  start(): void {
    this.running ??= this.supervise();
  }

  /** Resolves once the target is complete through at least source revision `revision`. */
  waitForRevision(revision: number): Promise<void> {
    if (this.stats.appliedRevision >= revision) return Promise.resolve();
    return new Promise((resolve) => this.waiters.add({ revision, resolve }));
  }

  /** Stop: cancels the source watch; unflushed changes are replayed from the checkpoint next time. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.sleeper) {
      clearTimeout(this.sleeper.timer);
      this.sleeper.resolve();
    }
    await this.watcher?.cancel();
    await this.running;
  }

  private async supervise(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      const appliedBefore = this.stats.appliedRevision;
      let failure: unknown;
      try {
        failure = await this.runOnce();
      } catch (error) {
        failure = error;
      }
      if (this.stopping) break;
      if (this.stats.appliedRevision > appliedBefore) attempt = 0;
      attempt += 1;
      this.stats.restarts += 1;
      const delay = backoffDelay(attempt, 200, this.options.maxBackoffMs ?? 5_000);
      this.log.warn(
        { err: failure, attempt, retryInMs: delay },
        'sync interrupted; resuming from the checkpoint',
      );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.sleeper = undefined;
          resolve();
        }, delay);
        this.sleeper = { timer, resolve };
      });
    }
  }

  /** Read the checkpoint, mirror until a failure; resolves with the failure (undefined when stopped). */
  private async runOnce(): Promise<unknown> {
    const { source, clusterId } = this.options;
    const kv = await this.options.target.get(this.checkpointKey);
    const checkpoint = kv && parseCheckpoint(kv.value);
    this.fence = kv?.modRevision ?? 0;
    this.buffer.clear();
    this.setApplied(checkpoint?.revision ?? 0);
    this.seenThrough = this.completeThrough = this.stats.appliedRevision;
    if (checkpoint && checkpoint.revision > 0) {
      this.log.info(
        { revision: checkpoint.revision, source: this.sourceName },
        'resuming sync after the checkpoint',
      );
    } else {
      this.log.info({ source: this.sourceName }, 'starting sync with a full listing');
    }
    let failure: unknown;
    const watcher = watchWithResync(
      source,
      clusterKey(clusterId),
      {
        onSnapshot: (snapshot) => this.applySnapshot(snapshot),
        onEvent: (event) => this.bufferEvent(event),
        onIdle: () => this.flush(this.seenThrough),
        onError: (error) => {
          failure = error;
        },
        onRetry: (error, n) =>
          this.log.warn({ err: error, attempt: n }, 'source watch interrupted; retrying'),
      },
      {
        fromRevision: checkpoint && checkpoint.revision > 0 ? checkpoint.revision + 1 : undefined,
        filter: (key) => inClusterTree(clusterId, key),
        maxPending: this.options.maxPending,
      },
    );
    this.watcher = watcher;
    if (this.stopping) await watcher.cancel();
    await watcher.done;
    this.watcher = undefined;
    return this.stopping ? undefined : (failure ?? new NexusError('INTERNAL', 'source watch ended'));
  }

  /** Make the target's copy equal to the snapshot: delete what the source no longer has, put what differs. */
  private async applySnapshot(snapshot: ResyncSnapshot): Promise<void> {
    const { target, clusterId } = this.options;
    this.buffer.clear();
    const current = await target.range(clusterKey(clusterId));
    const held = new Map<string, string>();
    for (const kv of current.kvs) if (inClusterTree(clusterId, kv.key)) held.set(kv.key, kv.value);
    const ops: TxnOp[] = [];
    let puts = 0;
    let deletes = 0;
    const wanted = new Set<string>();
    for (const kv of snapshot.kvs) {
      wanted.add(kv.key);
      if (held.get(kv.key) !== kv.value) {
        ops.push({ type: 'put', key: kv.key, value: kv.value });
        puts += 1;
      }
    }
    for (const key of held.keys()) {
      if (!wanted.has(key)) {
        ops.push({ type: 'delete', key });
        deletes += 1;
      }
    }
    const chunk = this.maxOps - 1;
    // Intermediate chunks keep the old checkpoint: a crash in between lists the source again.
    for (let i = 0; i < ops.length || i === 0; i += chunk) {
      const last = i + chunk >= ops.length;
      await this.commit(ops.slice(i, i + chunk), last ? snapshot.revision : this.stats.appliedRevision);
    }
    this.seenThrough = this.completeThrough = snapshot.revision;
    this.stats.snapshots += 1;
    if (snapshot.reason !== 'initial') this.stats.resyncs += 1;
    this.log.info(
      {
        reason: snapshot.reason,
        revision: snapshot.revision,
        keys: snapshot.kvs.length,
        puts,
        deletes,
        missedFrom: snapshot.missedFrom,
        compactRevision: snapshot.compactRevision,
      },
      snapshot.reason === 'initial' ? 'applied the initial listing' : 'resynced from a fresh listing',
    );
  }

  private async bufferEvent(event: WatchEvent): Promise<void> {
    if (event.revision > this.seenThrough) {
      // Every event of the revisions before this one has been received.
      this.completeThrough = this.seenThrough;
      this.seenThrough = event.revision;
    }
    const key = event.type === 'put' ? event.kv.key : event.key;
    if (!this.buffer.has(key) && this.buffer.size >= this.maxOps - 1) {
      await this.flush(Math.max(this.completeThrough, this.stats.appliedRevision));
    }
    this.buffer.delete(key);
    this.buffer.set(
      key,
      event.type === 'put' ? { type: 'put', key, value: event.kv.value } : { type: 'delete', key },
    );
    this.stats.events += 1;
  }

  /** Write the buffered changes and the checkpoint `revision` in one guarded txn. */
  private async flush(revision: number): Promise<void> {
    if (this.buffer.size === 0 && revision <= this.stats.appliedRevision) return;
    const ops = [...this.buffer.values()];
    await this.commit(ops, revision);
    this.buffer.clear();
    const now = Date.now();
    if (now - this.lastProgressLog >= (this.options.progressLogMs ?? 10_000)) {
      this.lastProgressLog = now;
      this.log.info(
        { revision, events: this.stats.events, txns: this.stats.txns },
        'mirrored source changes through revision',
      );
    }
  }

  private async commit(ops: TxnOp[], revision: number): Promise<void> {
    const checkpoint: SyncCheckpoint = { revision, source: this.sourceName, at: new Date().toISOString() };
    const res = await this.options.target.txn(
      [{ key: this.checkpointKey, target: 'modRevision', op: '=', value: this.fence }],
      [...ops, { type: 'put', key: this.checkpointKey, value: JSON.stringify(checkpoint) }],
      [{ type: 'get', key: this.checkpointKey }],
    );
    if (!res.succeeded) {
      throw new NexusError(
        'INTERNAL',
        `sync checkpoint ${this.checkpointKey} changed under this sync: is another sync of cluster ${this.options.clusterId} running?`,
        {
          details: {
            reason: 'checkpoint-conflict',
            expected: this.fence,
            found: res.gets[0]?.modRevision ?? 0,
          },
        },
      );
    }
    this.fence = res.revision;
    this.stats.txns += 1;
    this.setApplied(revision);
  }

  private setApplied(revision: number): void {
    this.stats.appliedRevision = revision;
    for (const waiter of [...this.waiters]) {
      if (revision >= waiter.revision) {
        this.waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }
}
