// Scrape target sharing on the embedded coordination store: three members split 30 targets (each
// owned exactly once, by the member rendezvous hashing names); a member that leaves (revoke) or
// whose lease expires (keep-alive released) loses its targets to the others; a member that joins
// takes its share without any moment where two members scrape one target or an owner key is
// overwritten. The owner keys in the store and the onTargets callbacks are checked against each other.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmbeddedCoordination,
  type EmbeddedCoordination,
} from '../../src/adapters/embedded/coordination.js';
import {
  TargetSharing,
  memberKey,
  ownerKey,
  rendezvousOwner,
  sharingPrefix,
} from '../../src/ingest/target-sharing.js';
import type { WatchEvent, Watcher } from '../../src/ports/coordination.js';
import { PausableClient, releaseLease, sleep, waitUntil } from '../conformance/coordination.js';

const TARGETS = Array.from({ length: 30 }, (_, i) => `http://gpu-node-${i}.lab:9400/metrics`);
const GROUP = 'dgx-lab';

describe('TargetSharing (embedded coordination)', () => {
  let store: EmbeddedCoordination;
  let members: Map<string, { sharing: TargetSharing; client: PausableClient }>;
  /** What each member's onTargets said last. */
  let scraping: Map<string, Set<string>>;
  /** Every moment a target was in two members' onTargets sets at once. */
  let doubles: string[];
  /** Every callback, in order: [member, owned]. */
  let callbacks: [string, string[]][];
  let ownerEvents: WatchEvent[];
  let ownerWatch: Watcher;

  const join = async (id: string, targets: readonly string[] = TARGETS): Promise<TargetSharing> => {
    const client = new PausableClient(store);
    scraping.set(id, new Set());
    const sharing = await TargetSharing.start({
      coordination: client,
      memberId: id,
      group: GROUP,
      targets,
      ttlSeconds: 1,
      recheckMs: 200,
      onTargets(owned) {
        callbacks.push([id, [...owned]]);
        scraping.set(id, new Set(owned));
        for (const url of owned) {
          for (const [other, set] of scraping) {
            if (other !== id && set.has(url)) doubles.push(`${url}: ${id} and ${other}`);
          }
        }
      },
    });
    members.set(id, { sharing, client });
    return sharing;
  };

  /** Owner keys in the store: target URL -> member id. */
  const ownersInStore = async (): Promise<Map<string, string>> => {
    const { kvs } = await store.range(`${sharingPrefix(GROUP)}owners/`);
    return new Map(
      kvs.map((kv) => {
        const v = JSON.parse(kv.value) as { url: string; owner: string };
        expect(kv.key).toBe(ownerKey(GROUP, v.url));
        expect(kv.lease).toEqual(expect.any(String));
        return [v.url, v.owner];
      }),
    );
  };

  /** Owner per target according to the callbacks. */
  const ownersByCallbacks = (): Map<string, string> => {
    const out = new Map<string, string>();
    for (const [id, set] of scraping) for (const url of set) out.set(url, id);
    return out;
  };

  /** The owners rendezvous hashing gives over `ids`. */
  const expected = (ids: string[]): Map<string, string> =>
    new Map(TARGETS.map((url) => [url, rendezvousOwner(url, ids)!]));

  const totalScraped = (): number => [...scraping.values()].reduce((n, s) => n + s.size, 0);

  /** Wait until the callbacks and the store both say: each target owned once, as hashing over `ids` gives. */
  const settledOn = async (ids: string[], timeoutMs = 5_000): Promise<void> => {
    const want = expected(ids);
    await waitUntil(
      () =>
        totalScraped() === TARGETS.length &&
        TARGETS.every((url) => scraping.get(want.get(url)!)?.has(url) === true),
      `ownership settled on ${ids.join(', ')}`,
      timeoutMs,
    );
    for (const id of ids) await members.get(id)!.sharing.idle();
    expect(ownersByCallbacks()).toEqual(want);
    expect(await ownersInStore()).toEqual(want);
  };

  beforeEach(async () => {
    store = createEmbeddedCoordination();
    members = new Map();
    scraping = new Map();
    doubles = [];
    callbacks = [];
    ownerEvents = [];
    ownerWatch = await store.watch(`${sharingPrefix(GROUP)}owners/`, {
      onEvent: (event) => ownerEvents.push(event),
    });
  });

  afterEach(async () => {
    for (const { sharing } of members.values()) await sharing.close();
    await ownerWatch.cancel();
    await store.close();
  });

  /** No owner key was ever overwritten: every put created the key (version 1). */
  const expectNoOverwrite = (): void => {
    const puts = ownerEvents.filter((e) => e.type === 'put');
    expect(puts.length).toBeGreaterThan(0);
    expect(puts.filter((e) => e.kv.version !== 1)).toEqual([]);
  };

  it('three members share 30 targets: each owned exactly once, as rendezvous hashing says, balanced', async () => {
    await Promise.all([join('streamer-a'), join('streamer-b'), join('streamer-c')]);
    await settledOn(['streamer-a', 'streamer-b', 'streamer-c']);
    const counts = ['streamer-a', 'streamer-b', 'streamer-c'].map((id) => scraping.get(id)!.size);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(30);
    for (const n of counts) expect(n).toBeGreaterThanOrEqual(5);
    for (const id of ['streamer-a', 'streamer-b', 'streamer-c']) {
      const { sharing } = members.get(id)!;
      expect(sharing.members).toEqual(['streamer-a', 'streamer-b', 'streamer-c']);
      expect([...sharing.owned]).toEqual(TARGETS.filter((url) => scraping.get(id)!.has(url)));
      const kv = await store.get(memberKey(GROUP, id));
      expect(JSON.parse(kv!.value)).toMatchObject({ id });
    }
    expect(doubles).toEqual([]);
    expectNoOverwrite();
  });

  it('a member that leaves (close: lease revoked) hands its targets to the others; theirs stay put', async () => {
    await Promise.all([join('streamer-a'), join('streamer-b'), join('streamer-c')]);
    await settledOn(['streamer-a', 'streamer-b', 'streamer-c']);
    const before = ownersByCallbacks();
    const leaving = [...scraping.get('streamer-c')!];
    expect(leaving.length).toBeGreaterThan(0);

    await members.get('streamer-c')!.sharing.close();
    members.delete('streamer-c');
    expect(scraping.get('streamer-c')!.size).toBe(0);
    expect(await store.get(memberKey(GROUP, 'streamer-c'))).toBeUndefined();
    scraping.delete('streamer-c');
    await settledOn(['streamer-a', 'streamer-b']);
    // Rendezvous hashing moves only the leaver's targets.
    for (const [url, owner] of before)
      if (owner !== 'streamer-c') expect(ownersByCallbacks().get(url)).toBe(owner);
    expect(leaving.every((url) => ownersByCallbacks().get(url) !== 'streamer-c')).toBe(true);
    expect(doubles).toEqual([]);
    expectNoOverwrite();
  });

  it('a lease lost while the member runs: it drops everything at once, rejoins with a new lease, gets its share back', async () => {
    await Promise.all([join('streamer-a'), join('streamer-b'), join('streamer-c')]);
    await settledOn(['streamer-a', 'streamer-b', 'streamer-c']);
    const share = [...scraping.get('streamer-c')!];
    const { client, sharing } = members.get('streamer-c')!;
    const firstLease = client.leases.at(-1)!;
    const callbacksBefore = callbacks.length;
    releaseLease(firstLease);

    await waitUntil(() => client.leases.length === 2, 'a new lease', 5_000);
    expect(client.leases[1]!.id).not.toBe(firstLease.id);
    await settledOn(['streamer-a', 'streamer-b', 'streamer-c']);
    // The lease loss emptied its set first (its keys were gone), then it claimed its share again.
    const mine = callbacks.slice(callbacksBefore).filter(([id]) => id === 'streamer-c');
    expect(mine[0]![1]).toEqual([]);
    expect([...sharing.owned].sort()).toEqual([...share].sort());
    const { kvs } = await store.range(`${sharingPrefix(GROUP)}owners/`);
    for (const kv of kvs)
      if (share.includes((JSON.parse(kv.value) as { url: string }).url))
        expect(kv.lease).toBe(client.leases[1]!.id);
    expect(doubles).toEqual([]);
    expectNoOverwrite();
  });

  it('a stalled member (keep-alive stops, sees nothing): the others own its targets within the TTL; awake, it rejoins', async () => {
    await Promise.all([join('streamer-a'), join('streamer-b'), join('streamer-c')]);
    await settledOn(['streamer-a', 'streamer-b', 'streamer-c']);
    const stalled = [...scraping.get('streamer-c')!];
    const { client, sharing } = members.get('streamer-c')!;
    const pausedAt = Date.now();
    client.pause();

    await waitUntil(
      () =>
        stalled.every((url) => scraping.get('streamer-a')!.has(url) || scraping.get('streamer-b')!.has(url)),
      "the stalled member's targets owned by the others",
      5_000,
    );
    const handoverMs = Date.now() - pausedAt;
    // TTL 1 s; the others react to the lease expiry's deletes at once (generous bound: loaded machine).
    expect(handoverMs).toBeGreaterThanOrEqual(900);
    expect(handoverMs).toBeLessThan(1_000 + 3_000);
    expect(await ownersInStore()).toEqual(expected(['streamer-a', 'streamer-b']));
    // Only the stalled member, which has not noticed yet, overlaps with the new owners.
    expect(doubles.every((d) => d.includes('streamer-c'))).toBe(true);
    doubles = [];

    client.resume();
    await waitUntil(() => client.leases.length === 2, 'a new lease after waking', 5_000);
    await settledOn(['streamer-a', 'streamer-b', 'streamer-c']);
    expect([...sharing.owned].sort()).toEqual([...stalled].sort());
    expect(doubles).toEqual([]);
    expectNoOverwrite();
  });

  it('a member that joins takes its share with no moment of two owners, and only its share moves', async () => {
    await Promise.all([join('streamer-a'), join('streamer-b')]);
    await settledOn(['streamer-a', 'streamer-b']);
    const before = ownersByCallbacks();
    const eventsBefore = ownerEvents.length;

    await join('streamer-c');
    await settledOn(['streamer-a', 'streamer-b', 'streamer-c']);
    const moved = TARGETS.filter((url) => ownersByCallbacks().get(url) === 'streamer-c');
    expect(moved.length).toBeGreaterThan(0);
    for (const url of TARGETS)
      if (!moved.includes(url)) expect(ownersByCallbacks().get(url)).toBe(before.get(url));

    // In the store, each moved key was deleted by its old owner before the new one created it.
    const handover = ownerEvents.slice(eventsBefore);
    for (const url of moved) {
      const key = ownerKey(GROUP, url);
      const mine = handover.filter((e) => (e.type === 'put' ? e.kv.key : e.key) === key);
      expect(mine.map((e) => e.type)).toEqual(['delete', 'put']);
      const put = mine[1] as Extract<WatchEvent, { type: 'put' }>;
      expect(JSON.parse(put.kv.value)).toMatchObject({ url, owner: 'streamer-c' });
    }
    // No other key changed.
    expect(handover.length).toBe(2 * moved.length);
    expect(doubles).toEqual([]);
    expectNoOverwrite();
  });

  it('a new target list: removed targets are released, added ones claimed', async () => {
    await Promise.all([join('streamer-a'), join('streamer-b')]);
    await settledOn(['streamer-a', 'streamer-b']);
    const next = [...TARGETS.slice(5), 'http://gpu-node-new.lab:9400/metrics'];
    for (const { sharing } of members.values()) sharing.setTargets(next);
    const want = new Map(next.map((url) => [url, rendezvousOwner(url, ['streamer-a', 'streamer-b'])!]));
    await waitUntil(
      () => totalScraped() === next.length && next.every((url) => scraping.get(want.get(url)!)!.has(url)),
      'the new target list owned',
    );
    for (const { sharing } of members.values()) await sharing.idle();
    expect(ownersByCallbacks()).toEqual(want);
    expect(await ownersInStore()).toEqual(want);
    expect(doubles).toEqual([]);
  });

  it('refuses a lease TTL under one second', async () => {
    await expect(
      TargetSharing.start({
        coordination: store,
        memberId: 'x',
        targets: TARGETS,
        ttlSeconds: 0.5,
        onTargets: () => {},
      }),
    ).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await sleep(0);
  });
});
