// Leader election on the embedded adapter: takeover on resign, revoke and lease expiry, and fencing
// of a stalled leader (simulated SIGSTOP: its keep-alive stops and it sees no events) by the store.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createEmbeddedCoordination,
  type EmbeddedCoordination,
} from '../../src/adapters/embedded/coordination.js';
import { Election, electionKey } from '../../src/coordination/election.js';
import { hasCode } from '../../src/errors.js';
import type { Coordination } from '../../src/ports/coordination.js';
import { PausableClient, expectCode, sleep, waitUntil } from '../conformance/coordination.js';

describe('Election (embedded coordination)', () => {
  let store: EmbeddedCoordination;
  let elections: Election[];
  const election = (client: Coordination, ttlSeconds = 1): Election => {
    const e = new Election(client, 'collector', { ttlSeconds });
    elections.push(e);
    return e;
  };

  beforeEach(() => {
    store = createEmbeddedCoordination();
    elections = [];
  });
  afterEach(async () => {
    for (const e of elections) await e.close().catch(() => undefined);
    await store.close();
  });

  it('elects exactly one leader; the key names it and is bound to its lease', async () => {
    const a = election(store);
    const b = election(store);
    await a.campaign('a');
    let bLeads = false;
    const bCampaign = b.campaign('b').then(() => (bLeads = true));
    await sleep(50);
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    expect(bLeads).toBe(false);
    expect(b.candidateId).toBe('b');
    const kv = await store.get(electionKey('collector'));
    expect(kv).toMatchObject({ key: '/telemetry/election/collector', value: 'a', version: 1 });
    expect(kv?.lease).toEqual(expect.any(String));
    expect(a.leaderRevision).toBe(kv!.createRevision);
    expect(b.leaderRevision).toBeUndefined();
    expect(await b.leader()).toEqual({ candidateId: 'a', revision: kv!.createRevision });
    await a.resign();
    await bCampaign;
    expect(b.isLeader).toBe(true);
  });

  it('hands over on resign; the old leader can no longer run fenced txns', async () => {
    const a = election(store);
    const b = election(store);
    let aLost = 0;
    a.onLost(() => aLost++);
    await a.campaign('a');
    const aRevision = a.leaderRevision!;
    const bCampaign = b.campaign('b');
    await a.resign();
    await a.resign(); // idempotent
    await bCampaign;
    expect(a.isLeader).toBe(false);
    expect(b.leaderRevision).toBeGreaterThan(aRevision);
    expect(await b.leader()).toMatchObject({ candidateId: 'b' });
    await expectCode(a.fencedTxn([], [{ type: 'put', key: '/jobs/owner', value: 'a' }]), 'LEASE_LOST');
    expect(aLost).toBe(0); // resigning is not losing
    expect((await b.fencedTxn([], [{ type: 'put', key: '/jobs/owner', value: 'b' }])).succeeded).toBe(true);
    expect((await store.get('/jobs/owner'))?.value).toBe('b');
  });

  it('hands over when the leader lease is revoked; the old leader learns it lost', async () => {
    const client = new PausableClient(store);
    const a = election(client);
    const b = election(store);
    let aLost = 0;
    a.onLost(() => aLost++);
    await a.campaign('a');
    const bCampaign = b.campaign('b');
    // Revoke a's lease behind its back (an operator, or etcd after a partition).
    const kv = await store.get(a.key);
    await client.leases.find((l) => l.id === kv!.lease)!.revoke();
    await bCampaign;
    await waitUntil(() => aLost === 1, 'a.onLost');
    expect(a.isLeader).toBe(false);
    expect(b.isLeader).toBe(true);
    await expectCode(a.fencedTxn([], [{ type: 'put', key: '/x', value: 'a' }]), 'LEASE_LOST');
  });

  it('fences a stalled leader: after its lease expired, its fenced txn is rejected by the store', async () => {
    const stalled = new PausableClient(store);
    const a = election(stalled, 1);
    const b = election(store, 1);
    let aLost = 0;
    a.onLost(() => aLost++);
    await a.campaign('a');
    await a.fencedTxn([], [{ type: 'put', key: '/jobs/owner', value: 'a' }]);
    const bCampaign = b.campaign('b');

    stalled.pause(); // SIGSTOP: keep-alive stops, nothing is delivered to a
    await bCampaign; // a's lease expires after its TTL; b takes over
    expect(b.isLeader).toBe(true);
    expect(b.leaderRevision).toBeGreaterThan(0);
    // a still believes it leads: it has not seen the expiry yet.
    expect(a.isLeader).toBe(true);
    expect(aLost).toBe(0);

    // a wakes up and acts as leader before processing anything: the store rejects it.
    const err = await expectCode(
      a.fencedTxn(
        [{ key: '/jobs/owner', target: 'value', op: '=', value: 'a' }],
        [{ type: 'put', key: '/jobs/owner', value: 'a-after-pause' }],
      ),
      'LEASE_LOST',
    );
    expect(hasCode(err, 'LEASE_LOST') && err.details.leaderRevision).toBeLessThan(b.leaderRevision!);
    expect((await store.get('/jobs/owner'))?.value).toBe('a');
    expect(a.isLeader).toBe(false);
    expect(aLost).toBe(1);

    stalled.resume(); // the held-back events and lease loss must not fire onLost twice
    await sleep(20);
    expect(aLost).toBe(1);
    expect(b.isLeader).toBe(true);
    expect((await b.fencedTxn([], [{ type: 'put', key: '/jobs/owner', value: 'b' }])).succeeded).toBe(true);
  });

  it("returns succeeded:false (not LEASE_LOST) when only the caller's compares fail", async () => {
    const a = election(store);
    await a.campaign('a');
    await store.put('/cfg', 'v1');
    const res = await a.fencedTxn(
      [{ key: '/cfg', target: 'value', op: '=', value: 'v0' }],
      [{ type: 'put', key: '/cfg', value: 'v2' }],
      [{ type: 'get', key: '/cfg' }],
    );
    expect(res.succeeded).toBe(false);
    expect(res.gets).toEqual([expect.objectContaining({ key: '/cfg', value: 'v1' })]);
    expect(a.isLeader).toBe(true);
  });

  it('loses leadership when the leader key is deleted or replaced', async () => {
    const a = election(store);
    let lost = 0;
    a.onLost(() => lost++);
    await a.campaign('a');
    await store.delete(a.key);
    await waitUntil(() => lost === 1, 'onLost after key delete');
    expect(a.isLeader).toBe(false);
    // It can campaign again and win a new term.
    await a.campaign('a');
    expect(a.isLeader).toBe(true);
  });

  it('campaign can be aborted, and a second concurrent campaign is refused', async () => {
    const a = election(store);
    const b = election(store);
    await a.campaign('a');
    const ac = new AbortController();
    const pending = b.campaign('b', { signal: ac.signal });
    await expectCode(b.campaign('b2'), 'BAD_REQUEST');
    ac.abort();
    await expect(pending).rejects.toThrow();
    expect(b.isLeader).toBe(false);
    expect(b.candidateId).toBeUndefined();
    await a.resign();
    await sleep(20);
    expect(await a.leader()).toBeUndefined(); // the aborted candidate did not take over
    // b's aborted campaign left no lease-bound key behind.
    expect((await store.range('/telemetry/election/')).kvs).toEqual([]);
  });

  it('campaign rejects with COORDINATION_CLOSED when the store closes', async () => {
    const a = election(store);
    const b = election(store);
    await a.campaign('a');
    const pending = b.campaign('b');
    await sleep(10);
    await store.close();
    await expectCode(pending, 'COORDINATION_CLOSED');
  });
});
