/**
 * Embedded coordination adapter: the in-process reference implementation of the Coordination port.
 * An MVCC-lite store: one map of current key-values, a global revision counter, a bounded event
 * history for watches from past revisions (trimmed by compaction and by an automatic bound), leases
 * with TTL timers, and transactions with compares. Everything runs on the event loop, so each
 * operation is atomic; watch events are delivered asynchronously (microtasks) but in revision order.
 */
import { NexusError } from '../../errors.js';
import { RevisionLog } from '../../util/revision-log.js';
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

/** Options of {@link createEmbeddedCoordination}. */
export interface EmbeddedCoordinationOptions {
  /**
   * Most watch-history events kept; older ones are compacted automatically (whole revisions at a
   * time), so a watch from before them fails with COMPACTED. Default 100 000.
   */
  historyLimit?: number;
  /** Most ops in one txn branch, as etcd's `--max-txn-ops` (default 128). */
  maxTxnOps?: number;
  /** Largest request (keys plus values) in bytes, as etcd's `--max-request-bytes` (default 1.5 MiB). */
  maxRequestBytes?: number;
  /** Called when a watch `onEvent` callback throws; delivery goes on. Default: `process.emitWarning`. */
  onListenerError?: (error: unknown) => void;
}

const DEFAULT_HISTORY_LIMIT = 100_000;
const DEFAULT_MAX_TXN_OPS = 128;
const DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;

/**
 * Compare two strings in UTF-8 byte order (= code point order), which is etcd's key order.
 * Plain `<` on JS strings compares UTF-16 code units and misorders astral characters against
 * U+E000..U+FFFF; remapping the two code unit ranges fixes that without encoding.
 */
export function compareBytes(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

function closedError(): NexusError {
  return new NexusError('COORDINATION_CLOSED', 'coordination store is closed');
}

function leaseLost(id: string): NexusError {
  return new NexusError('LEASE_LOST', `lease ${id} not found (expired or revoked)`, {
    details: { lease: id },
  });
}

function copyKv(kv: KeyValue, keysOnly = false): KeyValue {
  const out: KeyValue = {
    key: kv.key,
    value: keysOnly ? '' : kv.value,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
  };
  if (kv.lease !== undefined) out.lease = kv.lease;
  return out;
}

function copyEvent(event: WatchEvent): WatchEvent {
  return event.type === 'put'
    ? { type: 'put', kv: copyKv(event.kv), revision: event.revision }
    : { ...event };
}

interface LeaseState {
  id: string;
  ttlSeconds: number;
  keys: Set<string>;
  timer: NodeJS.Timeout | undefined;
  lostCallbacks: (() => void)[];
  alive: boolean;
  /** Ended by expiry (not by a local revoke). */
  lost: boolean;
}

interface WatchState {
  prefix: string;
  onEvent: (event: WatchEvent) => void;
  onError: ((error: Error) => void) | undefined;
  pending: WatchEvent[];
  scheduled: boolean;
  active: boolean;
}

/** Evaluate one compare against the current value of its key (undefined = absent). */
function holds(compare: Compare, kv: KeyValue | undefined): boolean {
  let cmp: number;
  if (compare.target === 'value') {
    // As in etcd: a value compare on a missing key always fails, whatever the operator.
    if (!kv) return false;
    cmp = compareBytes(kv.value, String(compare.value));
  } else {
    const actual = kv ? kv[compare.target] : 0;
    cmp = actual - Number(compare.value);
  }
  switch (compare.op) {
    case '=':
      return cmp === 0;
    case '!=':
      return cmp !== 0;
    case '<':
      return cmp < 0;
    case '>':
      return cmp > 0;
  }
}

/** In-process Coordination adapter; see the module comment. Create it with {@link createEmbeddedCoordination}. */
export class EmbeddedCoordination implements Coordination {
  private readonly historyLimit: number;
  private readonly maxTxnOps: number;
  private readonly maxRequestBytes: number;
  private readonly onListenerError: (error: unknown) => void;
  private readonly kvs = new Map<string, KeyValue>();
  /** All current keys in byte order, for prefix ranges. */
  private readonly sortedKeys: string[] = [];
  /** Watch history: events in revision order, at most `historyLimit`. */
  private readonly history = new RevisionLog<WatchEvent>();
  /** Smallest revision a watch may start from; 0 until the first compaction. */
  private compactRevision = 0;
  private currentRevision = 1;
  private nextLeaseId = 1;
  private readonly leases = new Map<string, LeaseState>();
  private readonly watchers = new Set<WatchState>();
  private closed = false;

  constructor(options: EmbeddedCoordinationOptions = {}) {
    const limit = options.historyLimit ?? DEFAULT_HISTORY_LIMIT;
    if (!Number.isInteger(limit) || limit < 1) {
      throw new NexusError('BAD_REQUEST', `historyLimit must be a positive integer, got ${limit}`);
    }
    this.historyLimit = limit;
    this.maxTxnOps = options.maxTxnOps ?? DEFAULT_MAX_TXN_OPS;
    this.maxRequestBytes = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
    this.onListenerError =
      options.onListenerError ??
      ((error) => process.emitWarning(error instanceof Error ? error : new Error(String(error))));
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.assertOpen();
    const kv = this.kvs.get(key);
    return kv && copyKv(kv);
  }

  async range(prefix: string, options: { limit?: number; keysOnly?: boolean } = {}): Promise<RangeResult> {
    this.assertOpen();
    const limit = options.limit && options.limit > 0 ? options.limit : Infinity;
    const kvs: KeyValue[] = [];
    for (let i = this.lowerBound(prefix); i < this.sortedKeys.length && kvs.length < limit; i++) {
      const key = this.sortedKeys[i]!;
      if (!key.startsWith(prefix)) break;
      kvs.push(copyKv(this.kvs.get(key)!, options.keysOnly));
    }
    return { kvs, revision: this.currentRevision };
  }

  async put(key: string, value: string, options: { lease?: string } = {}): Promise<number> {
    this.assertOpen();
    this.assertSize(Buffer.byteLength(key) + Buffer.byteLength(value));
    this.assertLease(options.lease);
    const events: WatchEvent[] = [];
    this.applyPut(key, value, options.lease, this.currentRevision + 1, events);
    this.commit(events);
    return this.currentRevision;
  }

  async delete(key: string): Promise<number> {
    this.assertOpen();
    const events: WatchEvent[] = [];
    this.applyDelete(key, this.currentRevision + 1, events);
    this.commit(events);
    return events.length;
  }

  async deletePrefix(prefix: string): Promise<number> {
    this.assertOpen();
    const events: WatchEvent[] = [];
    const revision = this.currentRevision + 1;
    for (const key of this.keysWithPrefix(prefix)) this.applyDelete(key, revision, events);
    this.commit(events);
    return events.length;
  }

  async txn(compares: Compare[], success: TxnOp[], failure: TxnOp[] = []): Promise<TxnResult> {
    this.assertOpen();
    checkTxnOps(success);
    checkTxnOps(failure);
    if (Math.max(success.length, failure.length) > this.maxTxnOps) {
      throw new NexusError('BAD_REQUEST', `too many operations in txn (limit ${this.maxTxnOps})`, {
        details: { limit: this.maxTxnOps },
      });
    }
    this.assertSize(requestBytes(compares, success, failure));
    const succeeded = compares.every((c) => holds(c, this.kvs.get(c.key)));
    const ops = succeeded ? success : failure;
    for (const op of ops) if (op.type === 'put') this.assertLease(op.lease);
    const revision = this.currentRevision + 1;
    const events: WatchEvent[] = [];
    const gets: (KeyValue | undefined)[] = [];
    for (const op of ops) {
      switch (op.type) {
        case 'put':
          this.applyPut(op.key, op.value, op.lease, revision, events);
          break;
        case 'delete':
          this.applyDelete(op.key, revision, events);
          break;
        case 'deletePrefix':
          for (const key of this.keysWithPrefix(op.prefix)) this.applyDelete(key, revision, events);
          break;
        case 'get': {
          const kv = this.kvs.get(op.key);
          gets.push(kv && copyKv(kv));
          break;
        }
      }
    }
    this.commit(events);
    return { succeeded, revision: this.currentRevision, gets };
  }

  async watch(prefix: string, options: WatchOptions): Promise<Watcher> {
    this.assertOpen();
    const state: WatchState = {
      prefix,
      onEvent: options.onEvent,
      onError: options.onError,
      pending: [],
      scheduled: false,
      active: true,
    };
    const cancel = async (): Promise<void> => {
      state.active = false;
      state.pending = [];
      this.watchers.delete(state);
    };
    const from =
      options.fromRevision && options.fromRevision > 0 ? options.fromRevision : this.currentRevision + 1;
    if (from < this.compactRevision) {
      const compactRevision = this.compactRevision;
      state.active = false;
      queueMicrotask(() =>
        state.onError?.(
          new NexusError(
            'COMPACTED',
            `revision ${from} has been compacted (compact revision ${compactRevision})`,
            {
              details: { compactRevision, fromRevision: from },
            },
          ),
        ),
      );
      return { cancel };
    }
    for (let i = this.history.firstIndex((event) => event.revision >= from); i < this.history.size; i++) {
      const event = this.history.at(i);
      if (eventKey(event).startsWith(prefix)) state.pending.push(event);
    }
    this.watchers.add(state);
    if (state.pending.length > 0) this.schedule(state);
    return { cancel };
  }

  async grantLease(ttlSeconds: number): Promise<ReleasableLease> {
    this.assertOpen();
    if (!(ttlSeconds > 0))
      throw new NexusError('BAD_REQUEST', `lease TTL must be positive, got ${ttlSeconds}`);
    const ttl = Math.ceil(ttlSeconds);
    const state: LeaseState = {
      id: String(this.nextLeaseId++),
      ttlSeconds: ttl,
      keys: new Set(),
      timer: undefined,
      lostCallbacks: [],
      alive: true,
      lost: false,
    };
    this.leases.set(state.id, state);
    return {
      id: state.id,
      ttlSeconds: ttl,
      revoke: async () => {
        this.assertOpen();
        if (state.alive) this.endLease(state, false);
      },
      onLost: (callback) => {
        if (state.alive) state.lostCallbacks.push(callback);
        else if (state.lost) queueMicrotask(callback);
      },
      // Keep-alive in-process never fails, so a lease only expires once its keep-alive stops.
      release: () => {
        if (!state.alive || state.timer || this.closed) return;
        state.timer = setTimeout(() => {
          state.timer = undefined;
          if (state.alive && !this.closed) this.endLease(state, true);
        }, ttl * 1000);
        state.timer.unref();
      },
    };
  }

  async revision(): Promise<number> {
    this.assertOpen();
    return this.currentRevision;
  }

  async compact(revision: number): Promise<void> {
    this.assertOpen();
    if (revision > this.currentRevision) {
      throw new NexusError('BAD_REQUEST', `cannot compact to future revision ${revision}`, {
        details: { revision, currentRevision: this.currentRevision },
      });
    }
    if (revision <= this.compactRevision) return;
    this.history.dropBelow(revision);
    this.compactRevision = revision;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const lease of this.leases.values()) {
      if (lease.timer) clearTimeout(lease.timer);
      lease.alive = false;
    }
    this.leases.clear();
    const watchers = [...this.watchers];
    this.watchers.clear();
    for (const w of watchers) {
      w.active = false;
      w.pending = [];
      if (w.onError) {
        const onError = w.onError;
        queueMicrotask(() => onError(closedError()));
      }
    }
    this.kvs.clear();
    this.sortedKeys.length = 0;
    this.history.clear();
  }

  // --- internals ---

  private assertOpen(): void {
    if (this.closed) throw closedError();
  }

  private assertSize(bytes: number): void {
    if (bytes > this.maxRequestBytes) {
      throw new NexusError(
        'BAD_REQUEST',
        `request of ${bytes} bytes is too large (limit ${this.maxRequestBytes})`,
        {
          details: { bytes, limit: this.maxRequestBytes },
        },
      );
    }
  }

  private assertLease(id: string | undefined): void {
    if (id !== undefined && !this.leases.get(id)?.alive) throw leaseLost(id);
  }

  /** Index of the first key >= `key` in byte order. */
  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.sortedKeys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(this.sortedKeys[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private keysWithPrefix(prefix: string): string[] {
    const keys: string[] = [];
    for (let i = this.lowerBound(prefix); i < this.sortedKeys.length; i++) {
      const key = this.sortedKeys[i]!;
      if (!key.startsWith(prefix)) break;
      keys.push(key);
    }
    return keys;
  }

  private applyPut(
    key: string,
    value: string,
    lease: string | undefined,
    revision: number,
    events: WatchEvent[],
  ): void {
    const prev = this.kvs.get(key);
    if (!prev) this.sortedKeys.splice(this.lowerBound(key), 0, key);
    if (prev?.lease !== undefined && prev.lease !== lease) this.leases.get(prev.lease)?.keys.delete(key);
    const kv: KeyValue = {
      key,
      value,
      createRevision: prev ? prev.createRevision : revision,
      modRevision: revision,
      version: prev ? prev.version + 1 : 1,
    };
    if (lease !== undefined) {
      kv.lease = lease;
      this.leases.get(lease)!.keys.add(key);
    }
    this.kvs.set(key, kv);
    events.push({ type: 'put', kv, revision });
  }

  private applyDelete(key: string, revision: number, events: WatchEvent[]): void {
    const prev = this.kvs.get(key);
    if (!prev) return;
    this.kvs.delete(key);
    this.sortedKeys.splice(this.lowerBound(key), 1);
    if (prev.lease !== undefined) this.leases.get(prev.lease)?.keys.delete(key);
    events.push({ type: 'delete', key, revision });
  }

  /** Close a write: bump the revision if anything changed, record history, notify watchers. */
  private commit(events: WatchEvent[]): void {
    if (events.length === 0) return;
    this.currentRevision = events[0]!.revision;
    for (const event of events) this.history.push(event);
    this.trimHistory();
    for (const w of this.watchers) {
      let added = false;
      for (const event of events) {
        if (eventKey(event).startsWith(w.prefix)) {
          w.pending.push(event);
          added = true;
        }
      }
      if (added) this.schedule(w);
    }
  }

  /** Keep at most `historyLimit` events, dropping whole revisions so a replay never starts mid-txn. */
  private trimHistory(): void {
    const dropped = this.history.trimTo(this.historyLimit);
    if (dropped !== undefined) this.compactRevision = dropped + 1;
  }

  private schedule(w: WatchState): void {
    if (w.scheduled) return;
    w.scheduled = true;
    queueMicrotask(() => {
      w.scheduled = false;
      const batch = w.pending;
      w.pending = [];
      for (const event of batch) {
        if (!w.active) return;
        try {
          w.onEvent(copyEvent(event));
        } catch (error) {
          this.onListenerError(error);
        }
      }
    });
  }

  /** Revoke or expire a lease: its keys go in one revision; `lost` runs the onLost callbacks. */
  private endLease(state: LeaseState, lost: boolean): void {
    state.alive = false;
    state.lost = lost;
    if (state.timer) clearTimeout(state.timer);
    state.timer = undefined;
    this.leases.delete(state.id);
    const events: WatchEvent[] = [];
    const revision = this.currentRevision + 1;
    for (const key of [...state.keys].sort(compareBytes)) this.applyDelete(key, revision, events);
    state.keys.clear();
    this.commit(events);
    const callbacks = state.lostCallbacks;
    state.lostCallbacks = [];
    if (lost) {
      for (const cb of callbacks) {
        try {
          cb();
        } catch (error) {
          this.onListenerError(error);
        }
      }
    }
  }
}

/** Approximate wire size of a txn: every key, value and compare operand. */
function requestBytes(compares: Compare[], success: TxnOp[], failure: TxnOp[]): number {
  let bytes = 0;
  for (const c of compares) bytes += Buffer.byteLength(c.key) + Buffer.byteLength(String(c.value));
  for (const op of [...success, ...failure]) {
    bytes += Buffer.byteLength(op.type === 'deletePrefix' ? op.prefix : op.key);
    if (op.type === 'put') bytes += Buffer.byteLength(op.value);
  }
  return bytes;
}

function eventKey(event: WatchEvent): string {
  return event.type === 'put' ? event.kv.key : event.key;
}

/**
 * Reject a txn branch that writes one key twice (two puts, or a put inside a delete's range), as
 * etcd does ("duplicate key given in txn request"); the result of such a txn would be ambiguous.
 */
export function checkTxnOps(ops: TxnOp[]): void {
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.type !== 'put') continue;
    if (puts.has(op.key)) {
      throw new NexusError('BAD_REQUEST', `duplicate key in txn: ${op.key}`, { details: { key: op.key } });
    }
    puts.add(op.key);
  }
  for (const op of ops) {
    const clash =
      op.type === 'delete'
        ? puts.has(op.key)
        : op.type === 'deletePrefix' && [...puts].some((k) => k.startsWith(op.prefix));
    if (clash) throw new NexusError('BAD_REQUEST', 'txn puts a key it also deletes', { details: { op } });
  }
}

/** Create an in-process Coordination store (the embedded mode's coordination and live state). */
export function createEmbeddedCoordination(options?: EmbeddedCoordinationOptions): EmbeddedCoordination {
  return new EmbeddedCoordination(options);
}
