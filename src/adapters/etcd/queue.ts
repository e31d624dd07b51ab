/**
 * etcd queue adapter (nexus mode): one key per batch under `/telemetry/queue/{clusterId}/{topic}/`
 * (layout in queue-keys.ts), FIFO by key order, claims as txn-guarded keys bound to the consumer's
 * lease, consumers woken by Watch (queue-watch.ts) rather than a poll timer.
 *
 * Every write is a txn whose retry after a lost response is harmless, so a member crash neither
 * loses nor duplicates an item:
 * - enqueue puts the item only if neither the item nor its ack tombstone exists;
 * - claim is guarded on the item's createRevision and on the claim key being absent (or its expired
 *   predecessor unchanged); a retry recognises its own earlier write by the claim's nonce;
 * - ack is guarded on the claim key's mod revision (the claim token) and leaves a tombstone
 *   `acked:{rev}` in the deliveries key on a short-lived lease, which a retry recognises.
 *
 * A claim ends at ack, release, `claimTtlMs`, or when the claimer's lease ends (process crashed or
 * paused longer than `leaseTtlSeconds`, or close()), whichever comes first.
 *
 * etcd keeps every revision until compacted, and every batch is a revision: call
 * {@link EtcdQueue.compactHistory} from one process (the leader), or run etcd with
 * `--auto-compaction-mode=revision --auto-compaction-retention=N`, or the database fills its quota.
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3, ICompare, IKeyValue, IRequestOp, ITxnResponse, Lease } from 'etcd3';
import { Range } from 'etcd3';
import { ProducerLine } from '../producer-line.js';
import { NexusError } from '../../errors.js';
import {
  normalizeClaimOptions,
  normalizeQueueOptions,
  type ClaimedItem,
  type ClaimOptions,
  type Queue,
  type QueueOptions,
} from '../../ports/queue.js';
import { createEtcdClient, toNexusError, withRetry, type EtcdClientOptions } from './client.js';
import {
  IdGenerator,
  ackMarker,
  formatToken,
  isItemId,
  parseClaim,
  parseToken,
  queueKeys,
  type ClaimRecord,
  type QueueKeys,
} from './queue-keys.js';
import { DepthTracker, QueueWatch, Signal } from './queue-watch.js';

/** Default TTL of the lease that holds a queue instance's claims. */
export const DEFAULT_LEASE_TTL_SECONDS = 10;
/** Default polling interval when watch is off (POLL_INTERVAL). */
export const DEFAULT_POLL_INTERVAL_MS = 1000;
/**
 * Largest payload accepted: etcd's default request limit (1.5 MiB, `--max-request-bytes`) minus
 * room for keys and the txn envelope.
 */
export const MAX_PAYLOAD_BYTES = 1.5 * 1024 * 1024 - 8 * 1024;

/** How long an ack tombstone lives at least: longer than any retry of enqueue or ack. */
const TOMBSTONE_TTL_SECONDS = 20;
/** A tombstone lease is reused for this long, so tombstones live 15 to 20 s. */
const TOMBSTONE_ROTATE_MS = 5_000;
/** Upper bound on how long a held producer or waiting claimer goes without re-checking. */
const RECHECK_MS = 5_000;
/** Most claim txns one claim call runs at once. */
const CLAIM_CONCURRENCY = 32;
/**
 * How long claim scans may start after this instance's newest claim instead of at the queue's head.
 * Collectors keep many claims open (acked after their hierarchy round), so a scan from the head
 * read page after page of claimed items (about five round trips per claim at 128 open claims). An
 * item before the hint that became claimable again (another consumer's claim expired, or an item of
 * a producer whose clock lags) waits at most this long for a scan from the head.
 */
const FULL_SCAN_INTERVAL_MS = 1000;

/** Options of {@link createEtcdQueue}. */
export interface EtcdQueueOptions extends QueueOptions {
  /** ETCD_ENDPOINTS: `host:port,host:port` or a list. */
  endpoints: string | string[];
  /** CLUSTER_ID: the second segment of every key. */
  clusterId: string;
  /** TTL of this instance's lease; a crashed consumer's claims come back after it (default 10). */
  leaseTtlSeconds?: number;
  /** ENABLE_WATCH_API: wake waiting calls from an etcd watch (default true). */
  watch?: boolean;
  /** POLL_INTERVAL: how often waiting calls re-check when `watch` is false (default 1000 ms). */
  pollIntervalMs?: number;
  /** How long reads and idempotent writes are retried across member failures (default 10 000 ms). */
  retryDeadlineMs?: number;
  /** Per-call deadline, auth: passed to the etcd client. */
  client?: Omit<EtcdClientOptions, 'endpoints'>;
}

interface Candidate {
  id: string;
  createRevision: string;
  /** Mod revision of an expired claim to take over; undefined when the item is unclaimed. */
  expiredClaimRevision: string | undefined;
}

function closedError(topic: string): NexusError {
  return new NexusError('QUEUE_CLOSED', `queue ${topic} is closed`, { details: { topic } });
}

function key(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/** {@link Queue} on etcd; see the module comment and the port for the contract. */
export class EtcdQueue implements Queue {
  readonly topic: string;
  /** Every key of this topic lies under this prefix. */
  readonly keyPrefix: string;
  private readonly keys: QueueKeys;
  private readonly maxDepth: number;
  private readonly claimTtlMs: number;
  private readonly leaseTtlSeconds: number;
  private readonly pollIntervalMs: number;
  private readonly retryDeadlineMs: number;
  private readonly ids = new IdGenerator();
  private readonly claimable = new Signal();
  private readonly space = new Signal();
  private watcher: QueueWatch | undefined;
  private lease: Lease | undefined;
  private tombstone: { id: Promise<string>; grantedAt: number } | undefined;
  /** Enqueues past the depth check whose put has not been confirmed: counted against maxDepth. */
  private admitting = 0;
  /** Revisions of our puts that the watch-fed depth does not include yet. */
  private unseenPuts: number[] = [];
  private readonly tracker = new DepthTracker();
  /** Ids some claim call of this instance is trying to claim right now. */
  private readonly attempting = new Set<string>();
  /** Newest id this instance claimed: scans start after it between scans from the head. */
  private scanHint = '';
  /** When the last scan from the head ran (performance.now()); 0 forces one. */
  private lastFullScan = 0;
  /** Producers held by backpressure, admitted in arrival order. */
  private readonly producers = new ProducerLine();
  private closed = false;

  /** Use {@link createEtcdQueue}, which also opens the watch. */
  constructor(
    /** The etcd3 client this queue owns (closed with it). */
    readonly client: Etcd3,
    options: EtcdQueueOptions,
  ) {
    const normalized = normalizeQueueOptions(options);
    this.topic = normalized.topic;
    this.maxDepth = normalized.maxDepth;
    this.claimTtlMs = normalized.claimTtlMs;
    this.keys = queueKeys(options.clusterId, normalized.topic);
    this.keyPrefix = this.keys.prefix;
    this.leaseTtlSeconds = options.leaseTtlSeconds ?? DEFAULT_LEASE_TTL_SECONDS;
    this.pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.retryDeadlineMs = options.retryDeadlineMs ?? 10_000;
    if (!Number.isInteger(this.leaseTtlSeconds) || this.leaseTtlSeconds < 2) {
      throw new NexusError(
        'CONFIG_INVALID',
        `etcd queue leaseTtlSeconds must be an integer >= 2, got ${String(this.leaseTtlSeconds)}`,
      );
    }
    if (!Number.isFinite(this.pollIntervalMs) || this.pollIntervalMs < 10) {
      throw new NexusError(
        'CONFIG_INVALID',
        `etcd queue pollIntervalMs must be a number >= 10, got ${String(this.pollIntervalMs)}`,
      );
    }
    if (options.watch !== false) {
      this.watcher = new QueueWatch(client, this.keys, {
        claimable: this.claimable,
        space: this.space,
        depth: this.tracker,
        resync: () => {
          if (!this.closed) void this.recount().catch(() => undefined);
        },
      });
    }
  }

  /** @internal Open the watch (when enabled); resolves once etcd confirmed it. */
  async start(): Promise<void> {
    await this.watcher?.start(this.retryDeadlineMs);
  }

  /**
   * Add one item; waits while the topic holds `maxDepth` items. The bound is exact for one
   * producer instance; producers in different processes that check at the same instant may each
   * add one item past it.
   */
  async enqueue(payload: Uint8Array): Promise<string> {
    this.assertOpen();
    if (payload.byteLength > MAX_PAYLOAD_BYTES) {
      throw new NexusError(
        'BAD_REQUEST',
        `queue item of ${payload.byteLength} bytes exceeds the etcd limit of ${MAX_PAYLOAD_BYTES}`,
        { details: { bytes: payload.byteLength, limit: MAX_PAYLOAD_BYTES } },
      );
    }
    const bytes = Buffer.from(payload); // a copy: the caller may reuse its buffer
    if (this.producers.waiting === 0 && (await this.admit())) return this.put(bytes);
    return this.producers.join(async () => {
      await this.waitForSpace();
      return this.put(bytes);
    });
  }

  /**
   * Claim up to `max` of the oldest claimable items for `consumerId` (oldest after this instance's
   * newest claim, between scans from the head: see FULL_SCAN_INTERVAL_MS), waiting up to `waitMs` for
   * the first. Waits wake on an enqueue, a release or a lost lease (watch), or when a claim seen
   * while scanning reaches its `claimTtlMs` expiry.
   */
  async claim(consumerId: string, options?: ClaimOptions): Promise<ClaimedItem[]> {
    this.assertOpen();
    const { max, waitMs } = normalizeClaimOptions(options);
    if (typeof consumerId !== 'string' || consumerId.length === 0) {
      throw new NexusError('BAD_REQUEST', 'consumerId must be a non-empty string');
    }
    const deadline = performance.now() + waitMs;
    try {
      for (;;) {
        const generation = this.claimable.generation;
        const fromHint =
          this.scanHint !== '' && performance.now() - this.lastFullScan < FULL_SCAN_INTERVAL_MS;
        let { items, nextExpiry } = await this.scan(consumerId, max, fromHint ? this.scanHint : undefined);
        if (items.length === 0 && fromHint && !this.closed) {
          ({ items, nextExpiry } = await this.scan(consumerId, max, undefined));
        }
        if (this.closed) return [];
        if (items.length > 0) return items;
        const remaining = deadline - performance.now();
        if (remaining <= 0) return [];
        let wait = Math.min(remaining, this.recheckMs());
        // +5 ms so the rescan does not land a hair before the expiry it waits for.
        if (Number.isFinite(nextExpiry)) wait = Math.min(wait, nextExpiry - Date.now() + 5);
        await this.claimable.wait(generation, wait);
        if (this.closed) return [];
      }
    } catch (error) {
      if (this.closed) return [];
      throw error;
    }
  }

  /** Remove the item, if this claim still holds it (txn guarded on the claim key's mod revision). */
  async ack(item: ClaimedItem): Promise<boolean> {
    this.assertOpen();
    const token = parseToken(item.claimToken);
    if (token === undefined || !isItemId(item.id) || Date.now() >= token.expiresAt) return false;
    const claimKey = this.keys.claims + item.id;
    const deliveriesKey = this.keys.deliveries + item.id;
    const marker = ackMarker(token.revision);
    for (let attempt = 0; ; attempt++) {
      const tombstoneLease = await this.tombstoneLease();
      let sent = 0;
      let res: ITxnResponse;
      try {
        res = await this.call('ack', true, () => {
          sent += 1;
          return this.client.kv.txn({
            compare: [{ key: key(claimKey), target: 'Mod', result: 'Equal', mod_revision: token.revision }],
            success: [
              { request_delete_range: { key: key(this.keys.items + item.id) } },
              { request_delete_range: { key: key(claimKey) } },
              { request_put: { key: key(deliveriesKey), value: key(marker), lease: tombstoneLease } },
            ],
            failure: [{ request_range: { key: key(deliveriesKey) } }],
          });
        });
      } catch (error) {
        // The tombstone lease is gone (etcd lost it, or this process stalled past its TTL).
        if (error instanceof NexusError && error.code === 'LEASE_LOST' && attempt === 0) {
          this.tombstone = undefined;
          continue;
        }
        throw error;
      }
      if (res.succeeded) return true;
      // A retry after a lost response finds the tombstone an earlier attempt of this call left.
      return sent > 1 && rangeKv(res, 0)?.value.toString('utf8') === marker;
    }
  }

  /** Delete the claim key, if this claim still holds it: the item is claimable again at its place. */
  async release(item: ClaimedItem): Promise<boolean> {
    this.assertOpen();
    const token = parseToken(item.claimToken);
    if (token === undefined || !isItemId(item.id) || Date.now() >= token.expiresAt) return false;
    const claimKey = this.keys.claims + item.id;
    this.lastFullScan = 0; // the item is claimable again before the hint: scan from the head next
    // Retried after a lost response, a release that did land reports false: the claim is gone either way.
    const res = await this.call('release', true, () =>
      this.client.kv.txn({
        compare: [{ key: key(claimKey), target: 'Mod', result: 'Equal', mod_revision: token.revision }],
        success: [{ request_delete_range: { key: key(claimKey) } }],
        failure: [],
      }),
    );
    return res.succeeded;
  }

  /** Items enqueued and not yet acked (a keys-only count of `items/`). */
  async depth(): Promise<number> {
    this.assertOpen();
    return (await this.countItems()).count;
  }

  /**
   * Compact etcd's revision history up to `keepRevisions` revisions before the current one, so
   * deleted batches stop taking space. History is per cluster, so this compacts every key, not just
   * the queue's: call it from one process (the leader), with `keepRevisions` large enough for any
   * watcher that resumes from a past revision. Returns the revision compacted to, or undefined when
   * there was nothing to do. The alternative is etcd's own
   * `--auto-compaction-mode=revision --auto-compaction-retention=N`. Freed pages are reused, so the
   * file stops growing; only `etcdctl defrag` shrinks it.
   */
  async compactHistory(keepRevisions: number): Promise<number | undefined> {
    this.assertOpen();
    if (!Number.isInteger(keepRevisions) || keepRevisions < 0) {
      throw new NexusError(
        'BAD_REQUEST',
        `keepRevisions must be an integer >= 0, got ${String(keepRevisions)}`,
      );
    }
    const res = await this.call('revision', true, () =>
      this.client.kv.range({ key: key(this.keys.enqueued), keys_only: true, limit: 1 }),
    );
    const target = Number(res.header.revision) - keepRevisions;
    if (target <= 1) return undefined;
    try {
      await this.call('compact', true, () => this.client.kv.compact({ revision: target, physical: false }));
    } catch (error) {
      // Already compacted at or past target (by another caller or auto-compaction).
      if (error instanceof NexusError && error.code === 'COMPACTED') return undefined;
      throw error;
    }
    return target;
  }

  /**
   * Stop: waiting claims resolve `[]`, held producers reject QUEUE_CLOSED, later calls reject
   * QUEUE_CLOSED. The instance's lease is revoked, so items it still holds become claimable at
   * once (with `deliveries` + 1) instead of after `leaseTtlSeconds`. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.watcher?.stop();
    this.claimable.fire();
    this.space.fire();
    const lease = this.lease;
    this.lease = undefined;
    if (lease) {
      await Promise.race([
        lease.revoke().catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, 2_000).unref()),
      ]);
    }
    this.client.close();
  }

  private assertOpen(): void {
    if (this.closed) throw closedError(this.topic);
  }

  private recheckMs(): number {
    return this.watcher?.healthy === true ? RECHECK_MS : this.pollIntervalMs;
  }

  /** Run one etcd call with retries and error mapping; QUEUE_CLOSED once closed. */
  private async call<T>(what: string, idempotent: boolean, fn: () => Promise<T>): Promise<T> {
    this.assertOpen();
    try {
      return await withRetry(fn, {
        what: `${what} on queue ${this.topic}`,
        idempotent,
        deadlineMs: this.retryDeadlineMs,
        stopped: () => this.closed,
      });
    } catch (error) {
      if (this.closed) throw closedError(this.topic);
      throw toNexusError(error, `${what} on queue ${this.topic}`);
    }
  }

  private async countItems(): Promise<{ count: number; revision: number }> {
    const range = Range.prefix(this.keys.items);
    const res = await this.call('depth', true, () =>
      this.client.kv.range({ key: range.start, range_end: range.end, count_only: true }),
    );
    return { count: Number(res.count), revision: Number(res.header.revision) };
  }

  /** Count the items and rebase the watch-fed depth on the result. */
  private async recount(): Promise<number> {
    const { count, revision } = await this.countItems();
    if (this.watcher?.healthy === true) this.tracker.rebase(count, revision);
    return count;
  }

  /**
   * The depth producers are admitted against: from the watch (no round trip) while it is healthy
   * and synced, else from a count.
   */
  private async knownDepth(forceCount: boolean): Promise<number> {
    const tracked = this.tracker.depth;
    if (!forceCount && tracked !== undefined && this.watcher?.healthy === true) {
      // Our own puts the watch has not reported yet.
      this.unseenPuts = this.unseenPuts.filter((revision) => revision > this.tracker.revision);
      return tracked + this.unseenPuts.length;
    }
    return this.recount();
  }

  /** Reserve a place below maxDepth; false when the topic is full. */
  private async admit(forceCount = false): Promise<boolean> {
    // Puts already admitted here count too, even if the depth already includes some of them:
    // erring on the full side keeps one instance from overshooting the bound.
    this.admitting += 1;
    let admitted = false;
    try {
      admitted = (await this.knownDepth(forceCount)) + this.admitting <= this.maxDepth;
      return admitted;
    } finally {
      if (!admitted) this.admitting -= 1;
    }
  }

  private async waitForSpace(): Promise<void> {
    let woken = true;
    for (;;) {
      this.assertOpen();
      const generation = this.space.generation;
      // After a quiet recheck period, trust a count over the watch-fed depth.
      if (await this.admit(!woken)) return;
      woken = await this.space.wait(generation, this.recheckMs());
    }
  }

  /** Put an admitted item (releases its reservation). */
  private async put(bytes: Buffer): Promise<string> {
    try {
      const id = this.ids.next();
      const itemKey = key(this.keys.items + id);
      // The guard makes a retry after a lost response a no-op; the tombstone part covers an item
      // that landed and was already claimed and acked before the retry.
      const res = await this.call('enqueue', true, () =>
        this.client.kv.txn({
          compare: [
            { key: itemKey, target: 'Create', result: 'Equal', create_revision: 0 },
            { key: key(this.keys.deliveries + id), target: 'Create', result: 'Equal', create_revision: 0 },
          ],
          success: [
            { request_put: { key: itemKey, value: bytes } },
            { request_put: { key: key(this.keys.enqueued), value: key(id) } },
          ],
          failure: [],
        }),
      );
      const revision = Number(res.header.revision);
      if (this.tracker.depth !== undefined && revision > this.tracker.revision)
        this.unseenPuts.push(revision);
      return id;
    } finally {
      this.admitting -= 1;
      // Held producers in this instance counted this put as pending; let them re-check.
      if (this.producers.waiting > 0) this.space.fire();
    }
  }

  /** Find claimable items oldest first and claim up to `max` of them. */
  /** Claim up to `max` claimable items, in id order from the head, or from after `startAfter`. */
  private async scan(
    consumerId: string,
    max: number,
    startAfter: string | undefined,
  ): Promise<{ items: ClaimedItem[]; nextExpiry: number }> {
    if (startAfter === undefined) this.lastFullScan = performance.now();
    const items: ClaimedItem[] = [];
    let nextExpiry = Infinity;
    const itemsEnd = Range.prefix(this.keys.items).end;
    const claimsEnd = Range.prefix(this.keys.claims).end;
    const pageSize = Math.min(1000, Math.max(32, max * 2));
    let after = startAfter === undefined ? '' : `${startAfter}\0`; // id suffix the page starts at
    let failedPartly = false;
    while (items.length < max) {
      // One read-only txn, so items and claims are one snapshot. Every claim has its item, so the
      // claims of a page's items are among the first `pageSize` claims from the same id on.
      const page = await this.call('claim scan', true, () =>
        this.client.kv.txn({
          compare: [],
          success: [
            {
              request_range: {
                key: key(this.keys.items + after),
                range_end: itemsEnd,
                limit: pageSize,
                keys_only: true,
              },
            },
            { request_range: { key: key(this.keys.claims + after), range_end: claimsEnd, limit: pageSize } },
          ],
          failure: [],
        }),
      );
      const itemRange = page.responses[0]?.response_range;
      const claimRange = page.responses[1]?.response_range;
      if (!itemRange || !claimRange || itemRange.kvs.length === 0) break;
      const claimById = new Map<string, IKeyValue>();
      for (const kv of claimRange.kvs) {
        claimById.set(kv.key.toString('utf8').slice(this.keys.claims.length), kv);
      }

      const now = Date.now();
      const candidates: Candidate[] = [];
      for (const kv of itemRange.kvs) {
        const id = kv.key.toString('utf8').slice(this.keys.items.length);
        const claim = claimById.get(id);
        const record = claim && parseClaim(claim.value);
        // Another claim call of this instance is trying it already: leave it to that one.
        if (this.attempting.has(id)) continue;
        if (claim === undefined) {
          candidates.push({ id, createRevision: kv.create_revision, expiredClaimRevision: undefined });
        } else if (record === undefined || record.expiresAt <= now) {
          candidates.push({
            id,
            createRevision: kv.create_revision,
            expiredClaimRevision: claim.mod_revision,
          });
        } else {
          nextExpiry = Math.min(nextExpiry, record.expiresAt);
        }
      }
      for (let i = 0; i < candidates.length && items.length < max;) {
        const slice = candidates.slice(i, i + Math.min(max - items.length, CLAIM_CONCURRENCY));
        i += slice.length;
        const batch = slice.filter((c) => !this.attempting.has(c.id));
        const results = await Promise.allSettled(batch.map((c) => this.tryClaim(c, consumerId)));
        for (const result of results) {
          if (result.status === 'fulfilled' && result.value) items.push(result.value);
        }
        // Fail the call only if it got nothing: items already claimed must reach the caller.
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed && items.length === 0) throw failed.reason;
        if (failed) {
          failedPartly = true;
          break;
        }
      }
      if (failedPartly || !itemRange.more) break;
      after = `${(itemRange.kvs[itemRange.kvs.length - 1] as IKeyValue).key.toString('utf8').slice(this.keys.items.length)}\0`;
    }
    items.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const newest = items[items.length - 1]?.id;
    if (newest !== undefined && newest > this.scanHint) this.scanHint = newest;
    return { items, nextExpiry };
  }

  /** Claim one candidate in a guarded txn; undefined when another consumer got there first. */
  private async tryClaim(candidate: Candidate, consumerId: string): Promise<ClaimedItem | undefined> {
    this.attempting.add(candidate.id);
    try {
      return await this.claimOne(candidate, consumerId);
    } catch (error) {
      // Other claim calls here skipped this item while we tried it: let them look again.
      this.claimable.fire();
      throw error;
    } finally {
      this.attempting.delete(candidate.id);
    }
  }

  private async claimOne(candidate: Candidate, consumerId: string): Promise<ClaimedItem | undefined> {
    const { id } = candidate;
    const itemKey = key(this.keys.items + id);
    const claimKey = key(this.keys.claims + id);
    const deliveriesKey = key(this.keys.deliveries + id);
    for (let attempt = 0; ; attempt++) {
      const { lease, id: leaseId } = await this.instanceLease();
      const record: ClaimRecord = {
        consumer: consumerId,
        expiresAt: Date.now() + this.claimTtlMs,
        nonce: randomBytes(8).toString('hex'),
      };
      const claimGuard: ICompare =
        candidate.expiredClaimRevision === undefined
          ? { key: claimKey, target: 'Create', result: 'Equal', create_revision: 0 }
          : { key: claimKey, target: 'Mod', result: 'Equal', mod_revision: candidate.expiredClaimRevision };
      const success: IRequestOp[] = [
        { request_put: { key: claimKey, value: key(JSON.stringify(record)), lease: leaseId } },
        { request_put: { key: deliveriesKey, value: key(consumerId), prev_kv: true } },
        { request_range: { key: itemKey } },
      ];
      let res: ITxnResponse;
      try {
        res = await this.call('claim', true, () =>
          this.client.kv.txn({
            compare: [
              { key: itemKey, target: 'Create', result: 'Equal', create_revision: candidate.createRevision },
              claimGuard,
            ],
            success,
            failure: [{ request_range: { key: claimKey } }],
          }),
        );
      } catch (error) {
        // Our lease ended (expired while we were stalled, or etcd lost it): take a new one, once.
        if (error instanceof NexusError && error.code === 'LEASE_LOST' && attempt === 0) {
          this.dropLease(lease);
          continue;
        }
        throw error;
      }
      if (res.succeeded) {
        const prev = res.responses[1]?.response_put?.prev_kv;
        const item = rangeKv(res, 2);
        if (!item) return undefined; // cannot happen: the guard saw the item
        return {
          id,
          payload: new Uint8Array(item.value),
          deliveries: Number(prev?.version ?? 0) + 1,
          claimToken: formatToken({ revision: Number(res.header.revision), expiresAt: record.expiresAt }),
        };
      }
      const current = rangeKv(res, 0);
      if (current && parseClaim(current.value)?.nonce === record.nonce) {
        return this.recoverOwnClaim(id, current, record);
      }
      return undefined;
    }
  }

  /** A retried claim txn found its own first attempt applied: read what that attempt returned. */
  private async recoverOwnClaim(id: string, claim: IKeyValue, record: ClaimRecord): Promise<ClaimedItem> {
    const res = await this.call('claim', true, () =>
      this.client.kv.txn({
        compare: [],
        success: [
          { request_range: { key: key(this.keys.items + id) } },
          { request_range: { key: key(this.keys.deliveries + id) } },
        ],
        failure: [],
      }),
    );
    const item = rangeKv(res, 0);
    const deliveries = rangeKv(res, 1);
    if (!item || !deliveries) throw new NexusError('INTERNAL', `claimed item ${id} vanished`);
    return {
      id,
      payload: new Uint8Array(item.value),
      deliveries: Number(deliveries.version),
      claimToken: formatToken({ revision: Number(claim.mod_revision), expiresAt: record.expiresAt }),
    };
  }

  /**
   * This instance's lease, granted on first claim and kept alive by etcd3's keep-alive. A lease
   * that could not be granted, or that etcd3 reports lost, is replaced on the next claim.
   */
  private async instanceLease(): Promise<{ lease: Lease; id: string }> {
    return this.call('lease grant', true, async () => {
      let lease = this.lease;
      if (lease === undefined || lease.revoked()) {
        const fresh = this.client.lease(this.leaseTtlSeconds);
        fresh.on('lost', () => {
          if (this.lease === fresh) this.lease = undefined;
        });
        this.lease = lease = fresh;
      }
      try {
        return { lease, id: await lease.grant() };
      } catch (error) {
        this.dropLease(lease);
        throw error;
      }
    });
  }

  private dropLease(lease: Lease): void {
    if (this.lease === lease) this.lease = undefined;
    lease.release();
  }

  /** A short lease for ack tombstones, shared by acks for {@link TOMBSTONE_ROTATE_MS}. */
  private async tombstoneLease(): Promise<string> {
    const now = Date.now();
    if (this.tombstone === undefined || now - this.tombstone.grantedAt > TOMBSTONE_ROTATE_MS) {
      const id = this.call('tombstone lease', true, () =>
        this.client.leaseClient.leaseGrant({ TTL: TOMBSTONE_TTL_SECONDS }),
      ).then((res) => String(res.ID));
      const entry = { id, grantedAt: now };
      this.tombstone = entry;
      id.catch(() => {
        if (this.tombstone === entry) this.tombstone = undefined;
      });
    }
    return this.tombstone.id;
  }
}

/** The first kv of the range response at `index` of a txn response. */
function rangeKv(res: ITxnResponse, index: number): IKeyValue | undefined {
  return res.responses[index]?.response_range?.kvs[0];
}

/**
 * Open the etcd queue `options.topic` of cluster `options.clusterId`: creates an etcd client,
 * checks that etcd answers, and opens the watch (unless `watch: false`). Rejects with
 * CONFIG_INVALID for bad options and BACKEND_UNAVAILABLE when etcd cannot be reached.
 */
export async function createEtcdQueue(options: EtcdQueueOptions): Promise<EtcdQueue> {
  normalizeQueueOptions(options);
  queueKeys(options.clusterId, options.topic);
  const client = createEtcdClient({ ...options.client, endpoints: options.endpoints });
  try {
    const queue = new EtcdQueue(client, options);
    await queue.depth();
    await queue.start();
    return queue;
  } catch (error) {
    client.close();
    throw error instanceof NexusError ? error : toNexusError(error, `open queue ${options.topic}`);
  }
}
