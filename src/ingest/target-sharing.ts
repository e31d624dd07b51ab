/**
 * Scrape target sharing: several streamers configured with the same target list split it through
 * the coordination store, so each target is scraped by one live streamer.
 *
 * Each streamer (a member) holds a lease and a member key `{prefix}members/{id}` bound to it. The
 * owner of a target is chosen by rendezvous (highest-random-weight) hashing of the target URL over
 * the live members, so a join or a death moves only the targets that must move. A member claims a
 * target by creating its owner key `{prefix}owners/{sha256(url)}` with its lease in a txn guarded by
 * "key absent": the store lets exactly one member hold a target at a time. A member that must give
 * a target up (another member joined) stops scraping it first, then deletes the key (compared on its
 * value); the new owner claims it when it sees the delete. A dead member's lease expires: its member
 * key and owner keys vanish in one revision, the others see the deletes and claim what now hashes
 * to them, within the lease TTL. Claims are also retried on a periodic re-check.
 *
 * `onTargets` gets the targets whose owner key this member holds (always a subset of the store's
 * view, and never a target another member was told it holds, as far as the store orders them).
 * When the lease is lost, every target is dropped at once (its keys are gone) and the member
 * rejoins with a new lease. A stalled member (GC pause, SIGSTOP) may scrape its old targets until it
 * notices the loss: sharing avoids duplicate scrapes in normal operation, it does not fence them.
 */
import { createHash } from 'node:crypto';
import { NexusError, hasCode } from '../errors.js';
import type { Coordination, Lease, WatchEvent } from '../ports/coordination.js';
import { watchWithResync, type ResyncSnapshot, type ResyncWatcher } from '../coordination/resync-watch.js';
import { backoffDelay, sleep } from '../util/backoff.js';
import type { Logger } from '../util/logger.js';

/** Key prefix of all target sharing groups. */
export const SCRAPE_SHARING_PREFIX = '/telemetry/scrape/';

/** Default TTL of a member's lease, seconds. */
export const DEFAULT_SHARING_TTL_SECONDS = 10;

/** The key prefix of sharing group `group` (the streamers of one cluster). */
export const sharingPrefix = (group: string): string =>
  `${SCRAPE_SHARING_PREFIX}${encodeURIComponent(group)}/`;

/** The member key of streamer `memberId` in `group`. */
export const memberKey = (group: string, memberId: string): string =>
  `${sharingPrefix(group)}members/${encodeURIComponent(memberId)}`;

/** The owner key of target `url` in `group`: the URL's SHA-256 (a URL can be longer than a sane key). */
export const ownerKey = (group: string, url: string): string =>
  `${sharingPrefix(group)}owners/${createHash('sha256').update(url).digest('hex')}`;

/** The rendezvous weight of `url` for `member`: compared as strings (same-length hex). */
function weight(member: string, url: string): string {
  return createHash('sha256').update(`${member}\u0000${url}`).digest('hex');
}

/**
 * The member that owns `url` among `members` by rendezvous hashing (highest weight; ties, which
 * SHA-256 makes theoretical, go to the greater id), or undefined when there is no member.
 */
export function rendezvousOwner(url: string, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = '';
  for (const member of members) {
    const w = weight(member, url);
    if (best === undefined || w > bestWeight || (w === bestWeight && member > best)) {
      best = member;
      bestWeight = w;
    }
  }
  return best;
}

/** The value of an owner key. */
interface OwnerValue {
  url: string;
  owner: string;
  lease: string;
}

function parseOwner(value: string): OwnerValue | undefined {
  try {
    const v = JSON.parse(value) as Partial<OwnerValue>;
    return typeof v.url === 'string' && typeof v.owner === 'string' && typeof v.lease === 'string'
      ? { url: v.url, owner: v.owner, lease: v.lease }
      : undefined;
  } catch {
    return undefined;
  }
}

/** Options of {@link TargetSharing.start}. */
export interface TargetSharingOptions {
  coordination: Coordination;
  /** This streamer's id (SERVICE_ID): unique among the streamers of the group. */
  memberId: string;
  /** The streamers sharing one target list (the cluster id). Default `default`. */
  group?: string;
  /** The full target list (the same on every member). */
  targets: readonly string[];
  /** Called with the targets this member now scrapes, in target-list order, whenever they change. */
  onTargets: (owned: readonly string[]) => void;
  /** Lease TTL, seconds: how long a dead member's targets stay unscraped at most. Default 10. */
  ttlSeconds?: number;
  /** Period of the re-check that retries claims, ms. Default half the TTL. */
  recheckMs?: number;
  logger?: Logger;
}

/** What this member knows of one key: its value (undefined once deleted) as of `revision`. */
interface Known {
  value: string | undefined;
  revision: number;
}

/**
 * One streamer's share of the targets; see the module comment. Create with {@link TargetSharing.start},
 * stop with {@link TargetSharing.close} (which hands its targets to the others at once).
 */
export class TargetSharing {
  private readonly coordination: Coordination;
  private readonly group: string;
  private readonly prefix: string;
  private readonly ttlSeconds: number;
  private readonly logger: Logger | undefined;
  private readonly onTargets: (owned: readonly string[]) => void;
  private targets: string[];
  /** Every key under the prefix as last seen (watch events and this member's own txns). */
  private readonly view = new Map<string, Known>();
  private lease: Lease | undefined;
  private held: string[] = [];
  private watcher: ResyncWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private dirty = false;
  private pass: Promise<void> | undefined;
  private rejoining: Promise<void> | undefined;

  private constructor(
    options: TargetSharingOptions,
    readonly memberId: string,
  ) {
    this.coordination = options.coordination;
    this.group = options.group ?? 'default';
    this.prefix = sharingPrefix(this.group);
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_SHARING_TTL_SECONDS;
    this.logger = options.logger;
    this.onTargets = options.onTargets;
    this.targets = [...new Set(options.targets)];
  }

  /**
   * Join the group (lease, member key), follow the other members and claim this member's share.
   * Resolves once joined and watching; the first claims follow (see {@link idle}).
   * @throws NexusError BAD_REQUEST for a TTL under one second; a coordination error when the store
   *   cannot be reached.
   */
  static async start(options: TargetSharingOptions): Promise<TargetSharing> {
    if (options.ttlSeconds !== undefined && !(options.ttlSeconds >= 1))
      throw new NexusError('BAD_REQUEST', `scrape lease TTL must be at least 1 s, got ${options.ttlSeconds}`);
    const sharing = new TargetSharing(options, options.memberId);
    await sharing.join();
    const watcher = watchWithResync(options.coordination, sharing.prefix, {
      onSnapshot: (snapshot) => sharing.applySnapshot(snapshot),
      onEvent: (event) => sharing.applyEvent(event),
      onIdle: () => sharing.schedule(),
      onError: (error) => {
        if (!sharing.closed)
          sharing.logger?.error({ err: error }, 'scrape target sharing: watch stopped for good');
      },
      onRetry: (error, attempt) =>
        sharing.logger?.warn({ err: error, attempt }, 'scrape target sharing: watch retry'),
    });
    sharing.watcher = watcher;
    try {
      await watcher.ready;
    } catch (error) {
      await sharing.close();
      throw error;
    }
    const recheckMs = options.recheckMs ?? (sharing.ttlSeconds * 1000) / 2;
    sharing.timer = setInterval(() => sharing.schedule(), recheckMs);
    sharing.timer.unref();
    sharing.schedule();
    return sharing;
  }

  /** The targets this member scrapes now (the last `onTargets` set). */
  get owned(): readonly string[] {
    return this.held;
  }

  /** The live members as this member sees them (itself included while it holds a lease), sorted. */
  get members(): string[] {
    const ids = new Set<string>();
    const members = `${this.prefix}members/`;
    for (const [key, known] of this.view) {
      if (known.value !== undefined && key.startsWith(members))
        ids.add(decodeURIComponent(key.slice(members.length)));
    }
    if (this.lease !== undefined) ids.add(this.memberId);
    else ids.delete(this.memberId);
    return [...ids].sort();
  }

  /** Replace the full target list (a reloaded targets file): claims and releases follow. */
  setTargets(urls: readonly string[]): void {
    this.targets = [...new Set(urls)];
    this.schedule();
  }

  /** Resolve once no reconcile pass is running or pending (tests). */
  async idle(): Promise<void> {
    while (this.pass !== undefined || this.rejoining !== undefined) {
      await this.pass;
      await this.rejoining;
    }
  }

  /**
   * Leave the group: stop scraping everything, revoke the lease (its member and owner keys go at
   * once, so the others take the targets over now rather than after the TTL). Idempotent; does not
   * close the coordination store.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    await this.watcher?.cancel().catch(() => undefined);
    await this.pass?.catch(() => undefined);
    this.emit([]);
    const lease = this.lease;
    this.lease = undefined;
    await lease?.revoke().catch(() => undefined);
  }

  // --- membership ---

  /** Grant a lease and put the member key bound to it. */
  private async join(): Promise<void> {
    const lease = await this.coordination.grantLease(this.ttlSeconds);
    let lost = false;
    lease.onLost(() => {
      lost = true;
      if (this.lease === lease) this.leaseLost();
    });
    try {
      const value = JSON.stringify({ id: this.memberId, since: new Date().toISOString() });
      const revision = await this.coordination.put(memberKey(this.group, this.memberId), value, {
        lease: lease.id,
      });
      this.note(memberKey(this.group, this.memberId), value, revision);
      if (lost) throw new NexusError('LEASE_LOST', `scrape lease ${lease.id} lost while joining`);
      if (this.closed) throw new NexusError('COORDINATION_CLOSED', 'target sharing closed while joining');
    } catch (error) {
      await lease.revoke().catch(() => undefined);
      throw error;
    }
    this.lease = lease;
  }

  /** The lease expired: its keys are gone, so stop scraping everything now and rejoin. */
  private leaseLost(): void {
    this.lease = undefined;
    if (this.closed) return;
    this.logger?.warn(
      { member: this.memberId, targets: this.held.length },
      'scrape lease lost: stopped scraping every target, rejoining',
    );
    this.emit([]);
    this.rejoining ??= this.rejoin().finally(() => {
      this.rejoining = undefined;
    });
  }

  private async rejoin(): Promise<void> {
    for (let attempt = 1; !this.closed; attempt++) {
      try {
        await this.join();
        this.logger?.info({ member: this.memberId }, 'scrape target sharing: rejoined with a new lease');
        this.schedule();
        return;
      } catch (error) {
        if (this.closed || hasCode(error, 'COORDINATION_CLOSED')) return;
        this.logger?.warn({ err: error, attempt }, 'scrape target sharing: rejoin failed, retrying');
        await sleep(backoffDelay(attempt, 200, this.ttlSeconds * 1000));
      }
    }
  }

  // --- the view of the store ---

  /** Record `key` = `value` (undefined: deleted) as of `revision`, unless something newer is known. */
  private note(key: string, value: string | undefined, revision: number): void {
    const known = this.view.get(key);
    if (known !== undefined && known.revision > revision) return;
    this.view.set(key, { value, revision });
  }

  private applySnapshot(snapshot: ResyncSnapshot): void {
    const present = new Set<string>();
    for (const kv of snapshot.kvs) {
      present.add(kv.key);
      this.note(kv.key, kv.value, kv.modRevision);
    }
    for (const key of [...this.view.keys()])
      if (!present.has(key)) this.note(key, undefined, snapshot.revision);
    this.schedule();
  }

  private applyEvent(event: WatchEvent): void {
    if (event.type === 'put') this.note(event.kv.key, event.kv.value, event.revision);
    else this.note(event.key, undefined, event.revision);
  }

  // --- reconciling ---

  /** Run a reconcile pass soon (coalesced: one pass runs at a time, another follows if asked). */
  private schedule(): void {
    if (this.closed) return;
    this.dirty = true;
    if (this.pass !== undefined) return;
    this.pass = this.runPasses();
  }

  private async runPasses(): Promise<void> {
    try {
      // Let the events of one revision (a lease expiry deletes many keys) arrive before deciding.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.dirty && !this.closed) {
        this.dirty = false;
        try {
          await this.reconcile();
        } catch (error) {
          this.logger?.warn(
            { err: error },
            'scrape target sharing: reconcile failed, retrying on the next check',
          );
        }
      }
      this.prune();
    } finally {
      // Synchronously after the last check of `dirty`: a schedule() from now on starts a new pass.
      this.pass = undefined;
    }
  }

  /** Claim what hashes here and is free, release what no longer does, tell `onTargets`. */
  private async reconcile(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined) return this.emit([]);
    const members = this.members;
    const desired = new Set(this.targets.filter((url) => rendezvousOwner(url, members) === this.memberId));
    const mine = this.mine(lease);
    const release = [...mine].filter(([url]) => !desired.has(url));
    const claim = [...desired].filter(
      (url) => !mine.has(url) && this.view.get(ownerKey(this.group, url))?.value === undefined,
    );
    // Stop scraping before letting go, so the next owner never starts while this one still runs.
    this.emit(this.targets.filter((url) => desired.has(url) && mine.has(url)));
    await Promise.all([
      ...release.map(([, kv]) => this.release(kv.key, kv.value)),
      ...claim.map((url) => this.claim(url, lease)),
    ]);
    if (this.lease !== lease) return;
    const now = this.mine(lease);
    this.emit(this.targets.filter((url) => desired.has(url) && now.has(url)));
  }

  /** Owner keys held with `lease`, by target URL. */
  private mine(lease: Lease): Map<string, { key: string; value: string }> {
    const owners = `${this.prefix}owners/`;
    const out = new Map<string, { key: string; value: string }>();
    for (const [key, known] of this.view) {
      if (known.value === undefined || !key.startsWith(owners)) continue;
      const owner = parseOwner(known.value);
      if (owner?.lease === lease.id && owner.owner === this.memberId)
        out.set(owner.url, { key, value: known.value });
    }
    return out;
  }

  /** Create the owner key of `url` if absent (the one guarantee of a single owner). */
  private async claim(url: string, lease: Lease): Promise<void> {
    const key = ownerKey(this.group, url);
    const value = JSON.stringify({ url, owner: this.memberId, lease: lease.id } satisfies OwnerValue);
    try {
      const res = await this.coordination.txn(
        [{ key, target: 'createRevision', op: '=', value: 0 }],
        [{ type: 'put', key, value, lease: lease.id }],
        [{ type: 'get', key }],
      );
      if (res.succeeded) this.note(key, value, res.revision);
      else if (res.gets[0] !== undefined) this.note(key, res.gets[0].value, res.gets[0].modRevision);
    } catch (error) {
      // LEASE_LOST: onLost follows. Anything else: the re-check retries (a claim that was applied
      // after all shows up in the watch as this member's key).
      this.logger?.debug({ err: error, target: url }, 'scrape target claim failed');
    }
  }

  /** Delete this member's owner key `key` (compared on its value: never someone else's). */
  private async release(key: string, value: string): Promise<void> {
    try {
      const res = await this.coordination.txn(
        [{ key, target: 'value', op: '=', value }],
        [{ type: 'delete', key }],
      );
      if (res.succeeded) this.note(key, undefined, res.revision);
    } catch (error) {
      this.logger?.debug({ err: error, key }, 'scrape target release failed');
    }
  }

  /** Hand `owned` to `onTargets` when it differs from the last set, and log the change. */
  private emit(owned: string[]): void {
    const previous = this.held;
    if (owned.length === previous.length && owned.every((url, i) => url === previous[i])) return;
    this.held = owned;
    const added = owned.filter((url) => !previous.includes(url));
    const removed = previous.filter((url) => !owned.includes(url));
    this.logger?.info(
      {
        member: this.memberId,
        members: this.lease === undefined ? 0 : this.members.length,
        added: added.slice(0, 20),
        removed: removed.slice(0, 20),
      },
      `now scraping ${owned.length} of ${this.targets.length} targets`,
    );
    try {
      this.onTargets([...owned]);
    } catch (error) {
      this.logger?.error({ err: error }, 'scrape target sharing: onTargets failed');
    }
  }

  /** Forget deleted keys the watch has moved past (no own txn is in flight between passes). */
  private prune(): void {
    const revision = this.watcher?.revision ?? 0;
    for (const [key, known] of this.view) {
      if (known.value === undefined && known.revision <= revision) this.view.delete(key);
    }
  }
}
