/**
 * Coordination port: a revisioned key-value store with prefix ranges, watches from a revision,
 * leases and compare-and-swap transactions (the subset of etcd's model the pipeline relies on).
 * The live hierarchy, queue claims on etcd, service registration and leader election sit on it.
 *
 * Contract, for every adapter:
 * - Every successful write (put, delete, txn with writes) raises the store revision by one;
 *   all keys written by one txn share that revision. Revisions start at 1 and never go back.
 * - `createRevision` is the revision that created the key's current incarnation; `modRevision`
 *   the last write to it; `version` counts writes since creation (1 after create).
 * - `range(prefix)` returns keys in byte order, with the revision the read saw.
 * - `watch(prefix, fromRevision)` delivers every event with revision >= fromRevision, in revision
 *   order, without gaps. If history before `fromRevision` has been compacted, the watcher's
 *   `onError` gets a `COMPACTED` error carrying `compactRevision` and the watch ends.
 * - A key put with a lease is deleted (with a delete event) when the lease expires or is revoked.
 *   A lease expires `ttlSeconds` after its last keep-alive; `grantLease` keeps it alive
 *   automatically until `revoke()` or `close()`, and calls `onLost` if it expires anyway.
 * - Deleting a missing key and a read-only txn do not raise the revision. A value compare on a
 *   missing key fails. One txn may write a key once, hold at most 128 ops and 1.5 MiB (etcd's
 *   defaults); beyond that it is rejected with BAD_REQUEST, as is compacting to a future revision.
 * - A write that fails with BACKEND_UNAVAILABLE may still have been applied unless the error's
 *   `details.neverSent` is true: callers that must know re-read the key.
 * - After `close()` (idempotent), every method rejects with `COORDINATION_CLOSED`, leases granted
 *   through this instance are revoked, and watchers get `onError(COORDINATION_CLOSED)`.
 */

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** Lease id the key is bound to, or undefined. */
  lease?: string;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** Store revision at which the read was served. */
  revision: number;
}

export type WatchEvent =
  { type: 'put'; kv: KeyValue; revision: number } | { type: 'delete'; key: string; revision: number };

export interface Watcher {
  /** Stop delivering events. Idempotent. */
  cancel(): Promise<void>;
}

export interface WatchOptions {
  /** Deliver events with revision >= this; default: only events after the call. */
  fromRevision?: number;
  onEvent: (event: WatchEvent) => void;
  /** Called once if the watch cannot go on (compaction, closed store, lost connection for good). */
  onError?: (error: Error) => void;
}

export interface Lease {
  id: string;
  ttlSeconds: number;
  /** Revoke now: keys bound to it are deleted. Idempotent. */
  revoke(): Promise<void>;
  /** Register a callback run once if the lease is lost (expired despite keep-alive, or revoked remotely). */
  onLost(callback: () => void): void;
}

/**
 * A lease as the embedded and etcd adapters grant it: the port's Lease plus `release()`, which stops
 * the automatic keep-alive without revoking, so the lease expires `ttlSeconds` later the way it would
 * if the process were paused or cut off. Tests use it to simulate a stalled lease holder.
 */
export interface ReleasableLease extends Lease {
  /** Stop keep-alive without revoking; the lease then expires after its TTL. Idempotent. */
  release(): void;
}

/** A txn guard on one key. `createRevision` 0 means "key does not exist". */
export interface Compare {
  key: string;
  target: 'createRevision' | 'modRevision' | 'version' | 'value';
  op: '=' | '!=' | '<' | '>';
  value: number | string;
}

export type TxnOp =
  | { type: 'put'; key: string; value: string; lease?: string }
  | { type: 'delete'; key: string }
  | { type: 'deletePrefix'; prefix: string }
  | { type: 'get'; key: string };

export interface TxnResult {
  succeeded: boolean;
  /** Store revision after the txn. */
  revision: number;
  /** Results of `get` ops, in order, from the branch that ran. */
  gets: (KeyValue | undefined)[];
}

export interface Coordination {
  get(key: string): Promise<KeyValue | undefined>;
  range(prefix: string, options?: { limit?: number; keysOnly?: boolean }): Promise<RangeResult>;
  /** Put a key; resolves to the new store revision. */
  put(key: string, value: string, options?: { lease?: string }): Promise<number>;
  /** Delete a key; resolves to the number of keys deleted. */
  delete(key: string): Promise<number>;
  deletePrefix(prefix: string): Promise<number>;
  /** If every compare holds, run `success`, otherwise `failure`; atomically. */
  txn(compares: Compare[], success: TxnOp[], failure?: TxnOp[]): Promise<TxnResult>;
  watch(prefix: string, options: WatchOptions): Promise<Watcher>;
  grantLease(ttlSeconds: number): Promise<Lease>;
  /** Current store revision. */
  revision(): Promise<number>;
  /** Drop history before `revision`; watches from earlier revisions then fail with COMPACTED. */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}
