/**
 * Leader election over any Coordination store, with fencing.
 *
 * A candidate wins by creating the leader key `/telemetry/election/{name}` in a txn guarded by
 * `createRevision == 0`, bound to its own lease; the others watch the key and retry when it is
 * deleted (resign, revoke or lease expiry). The winner's term is identified by the key's
 * createRevision (`leaderRevision`). `fencedTxn` adds `leaderKey.createRevision == leaderRevision`
 * to a txn, so a leader that lost its lease without noticing (GC pause, SIGSTOP, partition) cannot
 * write as leader: the store itself rejects the write. etcd3's own election helper is not used
 * (microsoft/etcd3 issues 158 and 176).
 */
import { NexusError } from '../errors.js';
import type {
  Compare,
  Coordination,
  KeyValue,
  Lease,
  TxnOp,
  TxnResult,
  Watcher,
} from '../ports/coordination.js';

/** Key prefix of all elections. */
export const ELECTION_PREFIX = '/telemetry/election/';

/** The leader key of election `name`. */
export const electionKey = (name: string): string => `${ELECTION_PREFIX}${encodeURIComponent(name)}`;

/** Options of an {@link Election}. */
export interface ElectionOptions {
  /** TTL of the candidate's lease: how long a dead leader blocks the others. Default 10 s. */
  ttlSeconds?: number;
}

/** The current leader as the store sees it. */
export interface LeaderInfo {
  candidateId: string;
  /** createRevision of the leader key: the term's fencing token. */
  revision: number;
}

type State = 'idle' | 'campaigning' | 'leader' | 'closed';

function abortError(reason: unknown): Error {
  if (reason instanceof Error) return reason;
  const error = new Error(typeof reason === 'string' ? reason : 'campaign aborted');
  error.name = 'AbortError';
  return error;
}

/**
 * One participant in election `name`. Use one instance per candidate process; an instance campaigns
 * for one candidate at a time and can campaign again after resigning or losing.
 */
export class Election {
  /** The leader key this election contends for. */
  readonly key: string;
  private readonly ttlSeconds: number;
  private state: State = 'idle';
  private lease: Lease | undefined;
  private revision: number | undefined;
  private candidate: string | undefined;
  private monitor: Watcher | undefined;
  private campaignAbort: AbortController | undefined;
  private readonly lostCallbacks = new Set<() => void>();

  constructor(
    private readonly coordination: Coordination,
    readonly name: string,
    options: ElectionOptions = {},
  ) {
    this.key = electionKey(name);
    this.ttlSeconds = options.ttlSeconds ?? 10;
  }

  /** True while this instance believes it leads. Only `fencedTxn` proves it to the store. */
  get isLeader(): boolean {
    return this.state === 'leader';
  }

  /** createRevision of the leader key while leading (the fencing token), else undefined. */
  get leaderRevision(): number | undefined {
    return this.state === 'leader' ? this.revision : undefined;
  }

  /** The candidate id this instance campaigns or leads for, if any. */
  get candidateId(): string | undefined {
    return this.state === 'campaigning' || this.state === 'leader' ? this.candidate : undefined;
  }

  /**
   * Run `callback` whenever leadership is lost without `resign()` (lease expired or revoked, leader
   * key deleted or replaced, a fenced txn rejected, store closed). Returns an unsubscribe function.
   */
  onLost(callback: () => void): () => void {
    this.lostCallbacks.add(callback);
    return () => this.lostCallbacks.delete(callback);
  }

  /**
   * Campaign as `candidateId`; resolves once this instance is the leader. Rejects if `signal`
   * aborts, `resign()`/`close()` is called meanwhile, the store fails (e.g. COORDINATION_CLOSED),
   * or a campaign is already running (BAD_REQUEST).
   */
  async campaign(candidateId: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.state === 'closed')
      throw new NexusError('COORDINATION_CLOSED', `election ${this.name} is closed`);
    if (this.state !== 'idle') {
      throw new NexusError(
        'BAD_REQUEST',
        `election ${this.name}: already ${this.state} as ${this.candidate}`,
      );
    }
    this.state = 'campaigning';
    this.candidate = candidateId;
    const abort = new AbortController();
    this.campaignAbort = abort;
    const onAbort = (): void => abort.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    let lease: Lease | undefined;
    try {
      for (;;) {
        if (abort.signal.aborted) throw abortError(abort.signal.reason);
        lease ??= await this.coordination.grantLease(this.ttlSeconds);
        let res: TxnResult;
        try {
          res = await this.coordination.txn(
            [{ key: this.key, target: 'createRevision', op: '=', value: 0 }],
            [{ type: 'put', key: this.key, value: candidateId, lease: lease.id }],
            [{ type: 'get', key: this.key }],
          );
        } catch (error) {
          // Our lease expired while we waited: take a new one and try again.
          if (error instanceof NexusError && error.code === 'LEASE_LOST') {
            lease = undefined;
            continue;
          }
          throw error;
        }
        if (abort.signal.aborted) {
          if (res.succeeded) await this.deleteIfOurs(res.revision);
          throw abortError(abort.signal.reason);
        }
        if (res.succeeded) {
          this.becomeLeader(lease, res.revision);
          lease = undefined;
          return;
        }
        const holder = res.gets[0];
        if (holder) await this.waitForDeletion(holder, res.revision + 1, abort.signal);
      }
    } catch (error) {
      if (this.state === 'campaigning') this.state = 'idle';
      throw error;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      if (this.campaignAbort === abort) this.campaignAbort = undefined;
      if (lease) await lease.revoke().catch(() => undefined);
    }
  }

  /**
   * Step down: delete the leader key (only if it is still this term's) and revoke the lease. Also
   * cancels a running campaign. Does not call the onLost callbacks. Idempotent.
   */
  async resign(): Promise<void> {
    if (this.state === 'campaigning') {
      this.campaignAbort?.abort(abortError('campaign cancelled by resign()'));
      return;
    }
    if (this.state !== 'leader') return;
    const revision = this.revision!;
    const lease = this.lease;
    this.stepDown();
    try {
      await this.deleteIfOurs(revision);
    } finally {
      await lease?.revoke().catch(() => undefined);
    }
  }

  /**
   * A txn that runs only while this instance still holds leadership in the store: `compares` plus
   * `leaderKey.createRevision == leaderRevision`. Resolves like `txn` when the caller's own compares
   * decide (`succeeded: false` runs `failure`). Rejects with LEASE_LOST, writing nothing, when this
   * instance is not the leader or the store says its term is over (then it also steps down and
   * runs the onLost callbacks).
   */
  async fencedTxn(compares: Compare[], success: TxnOp[], failure: TxnOp[] = []): Promise<TxnResult> {
    const revision = this.revision;
    if (this.state !== 'leader' || revision === undefined) {
      throw new NexusError('LEASE_LOST', `election ${this.name}: not the leader`);
    }
    const fence: Compare = { key: this.key, target: 'createRevision', op: '=', value: revision };
    const res = await this.coordination.txn([...compares, fence], success, [
      ...failure,
      { type: 'get', key: this.key },
    ]);
    if (res.succeeded) return res;
    const gets = res.gets.slice(0, -1);
    const current = res.gets[res.gets.length - 1];
    if (current?.createRevision !== revision) {
      if (this.state === 'leader' && this.revision === revision) this.lose();
      throw new NexusError('LEASE_LOST', `election ${this.name}: term ${revision} is over`, {
        details: { leaderRevision: revision, currentRevision: current?.createRevision ?? 0 },
      });
    }
    return { ...res, gets };
  }

  /** The current leader according to the store, or undefined when there is none. */
  async leader(): Promise<LeaderInfo | undefined> {
    const kv = await this.coordination.get(this.key);
    return kv && { candidateId: kv.value, revision: kv.createRevision };
  }

  /** Resign and refuse further campaigns. Does not close the Coordination store. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    await this.resign();
    this.state = 'closed';
  }

  // --- internals ---

  private becomeLeader(lease: Lease, revision: number): void {
    this.state = 'leader';
    this.lease = lease;
    this.revision = revision;
    lease.onLost(() => {
      if (this.state === 'leader' && this.revision === revision) this.lose();
    });
    void this.watchTerm(revision, revision + 1);
  }

  /** Watch the leader key; any sign that term `revision` ended makes this instance lose. */
  private async watchTerm(revision: number, fromRevision: number): Promise<void> {
    const stillOurs = (): boolean => this.state === 'leader' && this.revision === revision;
    let watcher: Watcher;
    try {
      watcher = await this.coordination.watch(this.key, {
        fromRevision,
        onEvent: (event) => {
          if (!stillOurs()) return;
          if (event.type === 'delete' && event.key === this.key) this.lose();
          else if (
            event.type === 'put' &&
            event.kv.key === this.key &&
            event.kv.createRevision !== revision
          ) {
            this.lose();
          }
        },
        onError: () => {
          // History compacted or connection gone for good: re-check the key and watch again.
          if (stillOurs()) void this.recheckTerm(revision);
        },
      });
    } catch {
      if (stillOurs()) this.lose();
      return;
    }
    if (stillOurs()) this.monitor = watcher;
    else await watcher.cancel();
  }

  private async recheckTerm(revision: number): Promise<void> {
    try {
      const res = await this.coordination.txn([], [{ type: 'get', key: this.key }]);
      if (this.state !== 'leader' || this.revision !== revision) return;
      if (res.gets[0]?.createRevision !== revision) this.lose();
      else await this.watchTerm(revision, res.revision + 1);
    } catch {
      if (this.state === 'leader' && this.revision === revision) this.lose();
    }
  }

  /** Resolve once the key's incarnation `holder` is gone (or the watch cannot tell: retry then). */
  private async waitForDeletion(holder: KeyValue, fromRevision: number, signal: AbortSignal): Promise<void> {
    let watcher: Watcher | undefined;
    let onAbort: (() => void) | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        onAbort = () => reject(abortError(signal.reason));
        signal.addEventListener('abort', onAbort, { once: true });
        this.coordination
          .watch(this.key, {
            fromRevision,
            onEvent: (event) => {
              if (event.type === 'delete' && event.key === this.key) resolve();
              else if (event.type === 'put' && event.kv.key === this.key) {
                if (event.kv.createRevision !== holder.createRevision) resolve();
              }
            },
            onError: () => resolve(),
          })
          .then((w) => {
            watcher = w;
            if (signal.aborted) void w.cancel();
          }, reject);
      });
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
      await watcher?.cancel().catch(() => undefined);
    }
  }

  private async deleteIfOurs(revision: number): Promise<void> {
    await this.coordination.txn(
      [{ key: this.key, target: 'createRevision', op: '=', value: revision }],
      [{ type: 'delete', key: this.key }],
    );
  }

  /** Leave the leader state quietly (no callbacks). */
  private stepDown(): void {
    this.state = 'idle';
    this.revision = undefined;
    this.lease = undefined;
    const monitor = this.monitor;
    this.monitor = undefined;
    void monitor?.cancel().catch(() => undefined);
  }

  /** Leadership ended without resign(): step down, drop the lease, tell the listeners. */
  private lose(): void {
    const lease = this.lease;
    this.stepDown();
    void lease?.revoke().catch(() => undefined);
    for (const callback of [...this.lostCallbacks]) {
      try {
        callback();
      } catch (error) {
        process.emitWarning(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }
}
