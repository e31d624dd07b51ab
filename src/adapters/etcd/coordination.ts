/**
 * etcd adapter of the Coordination port (etcd v3 API through the npm etcd3 client).
 *
 * KV, txn and compaction map one-to-one onto etcd RPCs. Watches and lease keep-alives use etcd3's
 * raw gRPC streams rather than its high-level helpers, so that a compacted start revision reports
 * its `compact_revision`, a reconnecting watch resumes right after the last delivered event, and a
 * lease is reported lost as soon as its TTL may have run out (etcd3 waits twice the TTL). Errors
 * are mapped to NexusError codes at this edge (see client.ts).
 */
import {
  Range,
  type Etcd3,
  type ICompare,
  type IKeyValue,
  type IRequestOp,
  type IWatchResponse,
} from 'etcd3';
import { NexusError } from '../../errors.js';
import type {
  Compare,
  Coordination,
  KeyValue,
  RangeResult,
  ReleasableLease,
  TxnOp,
  TxnResult,
  WatchEvent,
  WatchOptions,
  Watcher,
} from '../../ports/coordination.js';
import { createEtcdClient, toNexusError, withRetry, type EtcdClientOptions } from './client.js';

/** Options of {@link createEtcdCoordination}: a client to share, or endpoints to create one. */
export type EtcdCoordinationOptions = (
  { client: Etcd3; endpoints?: undefined } | ({ client?: undefined } & EtcdClientOptions)
) & {
  /** How long reads (and writes that never reached etcd) are retried, in ms. Default 10 000. */
  retryDeadlineMs?: number;
  /** How long a broken watch keeps reconnecting before `onError(BACKEND_UNAVAILABLE)`. Default 60 000. */
  watchRetryDeadlineMs?: number;
  /** Called when a watch `onEvent` or lease `onLost` callback throws. Default: `process.emitWarning`. */
  onListenerError?: (error: unknown) => void;
};

type KeepAliveStream = Awaited<ReturnType<Etcd3['leaseClient']['leaseKeepAlive']>>;
type WatchStream = Awaited<ReturnType<Etcd3['watchClient']['watch']>>;

const compareOps: Record<Compare['op'], NonNullable<ICompare['result']>> = {
  '=': 'Equal',
  '!=': 'NotEqual',
  '<': 'Less',
  '>': 'Greater',
};

function closedError(): NexusError {
  return new NexusError('COORDINATION_CLOSED', 'coordination store is closed');
}

function prefixRange(prefix: string): { key: Buffer; range_end: Buffer } {
  const range = Range.prefix(prefix);
  return { key: range.start, range_end: range.end };
}

function toKeyValue(kv: IKeyValue, keysOnly = false): KeyValue {
  const out: KeyValue = {
    key: kv.key.toString('utf8'),
    value: keysOnly ? '' : kv.value.toString('utf8'),
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
    version: Number(kv.version),
  };
  if (kv.lease && kv.lease !== '0') out.lease = String(kv.lease);
  return out;
}

function toCompare(c: Compare): ICompare {
  const base: ICompare = { key: Buffer.from(c.key), result: compareOps[c.op] };
  switch (c.target) {
    case 'createRevision':
      return { ...base, target: 'Create', create_revision: Number(c.value) };
    case 'modRevision':
      return { ...base, target: 'Mod', mod_revision: Number(c.value) };
    case 'version':
      return { ...base, target: 'Version', version: Number(c.value) };
    case 'value':
      return { ...base, target: 'Value', value: Buffer.from(String(c.value)) };
  }
}

function toRequestOp(op: TxnOp): IRequestOp {
  switch (op.type) {
    case 'put':
      return {
        request_put: { key: Buffer.from(op.key), value: Buffer.from(op.value), lease: op.lease ?? 0 },
      };
    case 'delete':
      return { request_delete_range: { key: Buffer.from(op.key) } };
    case 'deletePrefix':
      return { request_delete_range: prefixRange(op.prefix) };
    case 'get':
      return { request_range: { key: Buffer.from(op.key) } };
  }
}

/** etcd-backed Coordination; see the module comment. Create it with {@link createEtcdCoordination}. */
export class EtcdCoordination implements Coordination {
  /** The underlying etcd3 client (shared with other etcd adapters when passed in). */
  readonly client: Etcd3;
  private readonly ownsClient: boolean;
  private readonly retryDeadlineMs: number;
  /** @internal */
  readonly watchRetryDeadlineMs: number;
  /** @internal */
  readonly onListenerError: (error: unknown) => void;
  private readonly leases = new Set<EtcdLease>();
  private readonly watchers = new Set<EtcdWatch>();
  private closed = false;

  constructor(options: EtcdCoordinationOptions) {
    if (options.client) {
      this.client = options.client;
      this.ownsClient = false;
    } else {
      this.client = createEtcdClient(options);
      this.ownsClient = true;
    }
    this.retryDeadlineMs = options.retryDeadlineMs ?? 10_000;
    this.watchRetryDeadlineMs = options.watchRetryDeadlineMs ?? 60_000;
    this.onListenerError =
      options.onListenerError ??
      ((error) => process.emitWarning(error instanceof Error ? error : new Error(String(error))));
  }

  /** True once close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const res = await this.call('get', true, () => this.client.kv.range({ key: Buffer.from(key) }));
    const kv = res.kvs[0];
    return kv && toKeyValue(kv);
  }

  async range(prefix: string, options: { limit?: number; keysOnly?: boolean } = {}): Promise<RangeResult> {
    const res = await this.call('range', true, () =>
      this.client.kv.range({
        ...prefixRange(prefix),
        limit: options.limit && options.limit > 0 ? options.limit : 0,
        keys_only: options.keysOnly === true,
      }),
    );
    return {
      kvs: res.kvs.map((kv) => toKeyValue(kv, options.keysOnly)),
      revision: Number(res.header.revision),
    };
  }

  async put(key: string, value: string, options: { lease?: string } = {}): Promise<number> {
    const res = await this.call('put', false, () =>
      this.client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), lease: options.lease ?? 0 }),
    );
    return Number(res.header.revision);
  }

  async delete(key: string): Promise<number> {
    const res = await this.call('delete', false, () => this.client.kv.deleteRange({ key: Buffer.from(key) }));
    return Number(res.deleted);
  }

  async deletePrefix(prefix: string): Promise<number> {
    const res = await this.call('deletePrefix', false, () => this.client.kv.deleteRange(prefixRange(prefix)));
    return Number(res.deleted);
  }

  async txn(compares: Compare[], success: TxnOp[], failure: TxnOp[] = []): Promise<TxnResult> {
    const readOnly = [...success, ...failure].every((op) => op.type === 'get');
    const res = await this.call('txn', readOnly, () =>
      this.client.kv.txn({
        compare: compares.map(toCompare),
        success: success.map(toRequestOp),
        failure: failure.map(toRequestOp),
      }),
    );
    const ops = res.succeeded ? success : failure;
    const gets: (KeyValue | undefined)[] = [];
    ops.forEach((op, i) => {
      if (op.type !== 'get') return;
      const kv = res.responses[i]?.response_range?.kvs[0];
      gets.push(kv && toKeyValue(kv));
    });
    return { succeeded: res.succeeded, revision: Number(res.header.revision), gets };
  }

  async watch(prefix: string, options: WatchOptions): Promise<Watcher> {
    this.assertOpen();
    if (!(options.fromRevision && options.fromRevision > 0)) {
      // "From now" must mean after every write this client has seen. etcd would start at the serving
      // member's revision, and a member that lags the quorum would replay writes already acknowledged.
      options = { ...options, fromRevision: (await this.revision()) + 1 };
    }
    const watcher = new EtcdWatch(this, prefixRange(prefix), options, (w) => this.watchers.delete(w));
    this.watchers.add(watcher);
    try {
      await watcher.start(this.retryDeadlineMs);
    } catch (error) {
      this.watchers.delete(watcher);
      throw this.closed ? closedError() : toNexusError(error, 'watch');
    }
    return watcher;
  }

  async grantLease(ttlSeconds: number): Promise<ReleasableLease> {
    if (!(ttlSeconds > 0))
      throw new NexusError('BAD_REQUEST', `lease TTL must be positive, got ${ttlSeconds}`);
    const sentAt = Date.now();
    const res = await this.call('grantLease', true, () =>
      this.client.leaseClient.leaseGrant({ TTL: Math.max(1, Math.ceil(ttlSeconds)) }),
    );
    const lease = new EtcdLease(this, String(res.ID), Number(res.TTL), sentAt, (l) => this.leases.delete(l));
    if (this.closed) {
      await lease.revoke().catch(() => undefined);
      throw closedError();
    }
    this.leases.add(lease);
    return lease;
  }

  async revision(): Promise<number> {
    // A point read of a key that cannot exist: cheapest way to learn the store revision.
    const res = await this.call('revision', true, () =>
      this.client.kv.range({ key: Buffer.from([0]), keys_only: true, limit: 1 }),
    );
    return Number(res.header.revision);
  }

  async compact(revision: number): Promise<void> {
    try {
      await this.call('compact', true, () => this.client.kv.compact({ revision, physical: false }));
    } catch (error) {
      // Compacting at or below the current compact revision: nothing left to drop.
      if (error instanceof NexusError && error.code === 'COMPACTED') return;
      throw error;
    }
  }

  /**
   * Close: revoke this client's leases (best effort, so their keys go at once), end watchers
   * with COORDINATION_CLOSED, and close the etcd3 client if this adapter created it. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const leases = [...this.leases];
    this.leases.clear();
    await Promise.all(leases.map((l) => l.shutdown()));
    const watchers = [...this.watchers];
    this.watchers.clear();
    for (const w of watchers) w.fail(closedError());
    if (this.ownsClient) this.client.close();
  }

  /** @internal Throw COORDINATION_CLOSED after close(). */
  assertOpen(): void {
    if (this.closed) throw closedError();
  }

  /** @internal Run one etcd call with retries and error mapping; COORDINATION_CLOSED once closed. */
  async call<T>(what: string, idempotent: boolean, fn: () => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      return await withRetry(fn, {
        what,
        idempotent,
        deadlineMs: this.retryDeadlineMs,
        stopped: () => this.closed,
      });
    } catch (error) {
      if (this.closed) throw closedError();
      throw error;
    }
  }
}

/**
 * A lease kept alive over one gRPC keep-alive stream (re-opened on failure). Its local deadline is
 * the send time of the last acknowledged keep-alive plus the TTL etcd returned, which is never later
 * than etcd's own expiry; when the deadline passes the lease counts as lost.
 */
class EtcdLease implements ReleasableLease {
  private state: 'alive' | 'released' | 'revoked' | 'lost' | 'closed' = 'alive';
  private stream: KeepAliveStream | undefined;
  private connecting = false;
  /** Send times of keep-alives not yet answered (responses come in order). */
  private sent: number[] = [];
  private deadline: number;
  private readonly interval: NodeJS.Timeout;
  private expiry: NodeJS.Timeout | undefined;
  private lostCallbacks: (() => void)[] = [];

  constructor(
    private readonly owner: EtcdCoordination,
    readonly id: string,
    readonly ttlSeconds: number,
    grantSentAt: number,
    private readonly forget: (lease: EtcdLease) => void,
  ) {
    this.deadline = grantSentAt + ttlSeconds * 1000;
    this.armExpiry();
    this.interval = setInterval(() => this.tick(), Math.max(100, (ttlSeconds * 1000) / 3));
    this.interval.unref();
  }

  onLost(callback: () => void): void {
    if (this.state === 'alive' || this.state === 'released') this.lostCallbacks.push(callback);
    else if (this.state === 'lost') queueMicrotask(callback);
  }

  release(): void {
    if (this.state !== 'alive') return;
    this.state = 'released';
    this.stopKeepAlive();
  }

  async revoke(): Promise<void> {
    this.owner.assertOpen();
    if (this.state !== 'alive' && this.state !== 'released') return;
    this.state = 'revoked';
    this.stop();
    await this.revokeRemote();
  }

  /** @internal On close of the adapter: stop keep-alive and revoke, best effort. */
  async shutdown(): Promise<void> {
    const live = this.state === 'alive' || this.state === 'released';
    this.state = 'closed';
    this.stop();
    if (live) await this.revokeRemote().catch(() => undefined);
  }

  private async revokeRemote(): Promise<void> {
    try {
      await withRetry(() => this.owner.client.leaseClient.leaseRevoke({ ID: this.id }), {
        what: 'revoke',
        idempotent: true,
        deadlineMs: 2_000,
      });
    } catch (error) {
      if (error instanceof NexusError && error.code === 'LEASE_LOST') return; // already gone
      throw error;
    }
  }

  private tick(): void {
    if (this.state !== 'alive') return;
    if (!this.stream) {
      this.connect();
      return;
    }
    this.sent.push(Date.now());
    this.stream.write({ ID: this.id });
  }

  private connect(): void {
    if (this.connecting) return;
    this.connecting = true;
    this.owner.client.leaseClient.leaseKeepAlive().then(
      (stream) => {
        this.connecting = false;
        if (this.state !== 'alive') {
          stream.cancel();
          return;
        }
        this.stream = stream;
        this.sent = [];
        stream.on('data', (res) => {
          if (stream !== this.stream) return;
          const sentAt = this.sent.shift() ?? Date.now();
          const ttl = Number(res.TTL);
          if (!(ttl > 0)) {
            this.lose(); // etcd says the lease no longer exists
            return;
          }
          this.deadline = Math.max(this.deadline, sentAt + ttl * 1000);
          this.armExpiry();
        });
        const broken = (): void => {
          if (stream !== this.stream) return;
          this.stream = undefined;
          stream.cancel();
        };
        stream.on('error', broken);
        stream.on('end', broken);
        this.tick();
      },
      () => {
        this.connecting = false; // retried on the next tick
      },
    );
  }

  private armExpiry(): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = setTimeout(() => this.lose(), Math.max(0, this.deadline - Date.now()));
    this.expiry.unref();
  }

  private lose(): void {
    if (this.state !== 'alive' && this.state !== 'released') return;
    // Revoke what may survive on the server (etcd renews leases after an outage), so its keys do
    // not outlive our belief. A released lease stands for a stalled process, which cannot.
    if (this.state === 'alive') void this.revokeRemote().catch(() => undefined);
    this.state = 'lost';
    this.stop();
    const callbacks = this.lostCallbacks;
    this.lostCallbacks = [];
    for (const cb of callbacks) {
      try {
        cb();
      } catch (error) {
        this.owner.onListenerError(error);
      }
    }
  }

  private stopKeepAlive(): void {
    clearInterval(this.interval);
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
  }

  private stop(): void {
    this.stopKeepAlive();
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = undefined;
    if (this.state !== 'released') this.forget(this);
  }
}

/**
 * One watch on one gRPC watch stream. `next` is the revision of the next event to deliver; after a
 * disconnect the watch is re-created from it, so nothing is skipped or repeated.
 */
class EtcdWatch implements Watcher {
  private stream: WatchStream | undefined;
  private next: number | undefined;
  private active = true;
  private failingSince: number | undefined;
  private attempt = 0;
  private ready: { resolve: () => void; reject: (error: unknown) => void } | undefined;
  private readyDeadline = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly owner: EtcdCoordination,
    private readonly range: { key: Buffer; range_end: Buffer },
    private readonly options: WatchOptions,
    private readonly forget: (watch: EtcdWatch) => void,
  ) {
    if (options.fromRevision && options.fromRevision > 0) this.next = options.fromRevision;
  }

  /** Open the stream; resolves once etcd confirmed the watch (or cancelled it for compaction). */
  start(deadlineMs: number): Promise<void> {
    this.readyDeadline = Date.now() + deadlineMs;
    return new Promise<void>((resolve, reject) => {
      this.ready = { resolve, reject };
      this.open();
    });
  }

  async cancel(): Promise<void> {
    if (!this.active) return;
    this.stop();
  }

  /** @internal End the watch and report `error` to onError (once). */
  fail(error: Error): void {
    if (!this.active) return;
    this.stop();
    if (this.ready) {
      const ready = this.ready;
      this.ready = undefined;
      if (!(error instanceof NexusError && error.code === 'COMPACTED')) {
        ready.reject(error);
        return;
      }
      ready.resolve();
    }
    const onError = this.options.onError;
    if (onError) queueMicrotask(() => onError(error));
  }

  private stop(): void {
    this.active = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    this.forget(this);
  }

  private open(): void {
    this.retryTimer = undefined;
    if (!this.active) return;
    this.owner.client.watchClient.watch().then(
      (stream) => {
        if (!this.active) {
          stream.cancel();
          return;
        }
        this.stream = stream;
        stream.on('data', (res) => this.onResponse(stream, res));
        stream.on('error', (error) => this.onBroken(stream, error));
        stream.on('end', () => this.onBroken(stream, new Error('watch stream ended')));
        stream.write({ create_request: { ...this.range, start_revision: this.next ?? 0 } });
      },
      (error: unknown) => this.onBroken(undefined, error),
    );
  }

  private onResponse(stream: WatchStream, res: IWatchResponse): void {
    if (stream !== this.stream || !this.active) return;
    const compactRevision = Number(res.compact_revision ?? 0);
    if (res.created) {
      this.next ??= Number(res.header.revision) + 1;
      this.failingSince = undefined;
      this.attempt = 0;
    }
    if (compactRevision > 0) {
      const from = this.next;
      this.fail(
        new NexusError(
          'COMPACTED',
          `revision ${from} has been compacted (compact revision ${compactRevision})`,
          {
            details: { compactRevision, fromRevision: from },
          },
        ),
      );
      return;
    }
    if (res.canceled) {
      this.fail(
        toNexusError(
          new Error(`watch cancelled by etcd: ${res.cancel_reason || 'no reason given'}`),
          'watch',
        ),
      );
      return;
    }
    if (res.created && this.ready) {
      const ready = this.ready;
      this.ready = undefined;
      ready.resolve();
    }
    for (const ev of res.events ?? []) {
      if (!this.active) return;
      const revision = Number(ev.kv.mod_revision);
      this.next = revision + 1;
      const event: WatchEvent =
        String(ev.type).toUpperCase() === 'DELETE'
          ? { type: 'delete', key: ev.kv.key.toString('utf8'), revision }
          : { type: 'put', kv: toKeyValue(ev.kv), revision };
      try {
        this.options.onEvent(event);
      } catch (error) {
        this.owner.onListenerError(error);
      }
    }
  }

  private onBroken(stream: WatchStream | undefined, error: unknown): void {
    if (stream !== this.stream || !this.active) return;
    this.stream = undefined;
    stream?.cancel();
    const now = Date.now();
    this.failingSince ??= now;
    const giveUpAt = this.ready ? this.readyDeadline : this.failingSince + this.owner.watchRetryDeadlineMs;
    if (this.owner.isClosed) return;
    if (now >= giveUpAt) {
      this.fail(toNexusError(error, 'watch'));
      return;
    }
    const backoff = Math.min(giveUpAt - now, Math.random() * Math.min(2_000, 100 * 2 ** this.attempt++));
    this.retryTimer = setTimeout(() => this.open(), backoff);
  }
}

/** Create an etcd-backed Coordination store. */
export function createEtcdCoordination(options: EtcdCoordinationOptions): EtcdCoordination {
  return new EtcdCoordination(options);
}
