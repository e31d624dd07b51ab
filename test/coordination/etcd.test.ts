// etcd adapter specifics on real servers: endpoint parsing, error mapping when etcd is down, watch
// resumption across a member restart and a member crash, and fenced leader election over etcd.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEndpoints, toNexusError } from '../../src/adapters/etcd/client.js';
import { createEtcdCoordination, type EtcdCoordination } from '../../src/adapters/etcd/coordination.js';
import { Election } from '../../src/coordination/election.js';
import { hasCode, isRetryable } from '../../src/errors.js';
import { PausableClient, expectCode, recorder, sleep } from '../conformance/coordination.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';

/** Retry a write the way a caller does when the outcome is unknown (BACKEND_UNAVAILABLE). */
async function persist<T>(fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await fn();
    } catch (error) {
      if (!hasCode(error, 'BACKEND_UNAVAILABLE') || i > 50) throw error;
      await sleep(100);
    }
  }
}

describe('etcd endpoints and errors', () => {
  it('parses ETCD_ENDPOINTS lists', () => {
    expect(parseEndpoints('127.0.0.1:2379, 10.0.0.2:2379')).toEqual([
      'http://127.0.0.1:2379',
      'http://10.0.0.2:2379',
    ]);
    expect(parseEndpoints(['http://etcd-0:2379/', 'https://etcd-1:2379'])).toEqual([
      'http://etcd-0:2379',
      'https://etcd-1:2379',
    ]);
    for (const bad of ['', ' , ', 'etcd-0', 'http://etcd-0']) {
      expect(() => parseEndpoints(bad)).toThrow(/ETCD_ENDPOINTS/);
    }
  });

  it('maps etcd errors to codes', () => {
    expect(toNexusError(new Error('etcdserver: requested lease not found'), 'put').code).toBe('LEASE_LOST');
    expect(toNexusError(new Error('etcdserver: mvcc: required revision has been compacted'), 'x').code).toBe(
      'COMPACTED',
    );
    expect(toNexusError(new Error('etcdserver: duplicate key given in txn request'), 'txn').code).toBe(
      'BAD_REQUEST',
    );
    const quota = toNexusError(new Error('etcdserver: mvcc: database space exceeded'), 'put');
    expect([quota.code, quota.retryable, quota.details.reason]).toEqual([
      'BACKEND_UNAVAILABLE',
      true,
      'quota',
    ]);
    expect(toNexusError(new Error('etcdserver: leader changed'), 'put').code).toBe('BACKEND_UNAVAILABLE');
    expect(toNexusError(new Error('something odd'), 'put').code).toBe('INTERNAL');
  });
});

describe('etcd adapter, one member: outage and restart', () => {
  let etcd: EtcdHandle;
  let c: EtcdCoordination;
  beforeAll(async () => {
    etcd = await startEtcd({ members: 1 });
    c = createEtcdCoordination({ endpoints: etcd.endpointList, retryDeadlineMs: 1_500 });
  });
  afterAll(async () => {
    await c?.close();
    await etcd?.stop();
  });

  it('reports BACKEND_UNAVAILABLE (retryable) while etcd is down; a watch resumes after restart without gaps', async () => {
    const rec = recorder();
    const w = await c.watch('/outage/', rec);
    const r1 = await c.put('/outage/a', '1');
    await rec.until(() => rec.events.length === 1, 'first event');

    await etcd.killMember(0);
    const err = await expectCode(c.get('/outage/a'), 'BACKEND_UNAVAILABLE');
    expect(isRetryable(err)).toBe(true);
    await expectCode(c.put('/outage/b', 'lost?'), 'BACKEND_UNAVAILABLE');

    await etcd.restartMember(0);
    const r2 = await persist(() => c.put('/outage/c', '3'));
    await rec.until(() => rec.events.some((e) => e.revision === r2), 'the event written after the restart');
    const revisions = rec.events.map((e) => e.revision);
    expect(revisions[0]).toBe(r1);
    expect(revisions.at(-1)).toBe(r2);
    expect([...revisions].sort((x, y) => x - y)).toEqual(revisions);
    expect(new Set(revisions).size).toBe(revisions.length);
    expect(rec.errors).toEqual([]);
    expect((await c.get('/outage/a'))?.value).toBe('1');
    await w.cancel();
  });
});

describe('etcd adapter, three members', () => {
  let etcd: EtcdHandle;
  const clients: EtcdCoordination[] = [];
  const client = (): EtcdCoordination => {
    const c = createEtcdCoordination({ endpoints: etcd.endpointList });
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    etcd = await startEtcd({ members: 3 });
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await etcd?.stop();
  });

  it('fences a stalled leader over etcd: its lease expires, the other takes over, its fenced txn is rejected', async () => {
    const stalled = new PausableClient(client());
    const cb = client();
    const a = new Election(stalled, 'etcd-fencing', { ttlSeconds: 1 });
    const b = new Election(cb, 'etcd-fencing', { ttlSeconds: 1 });
    let aLost = 0;
    a.onLost(() => aLost++);
    await a.campaign('a');
    expect(await b.leader()).toEqual({ candidateId: 'a', revision: a.leaderRevision });
    const bLeads = b.campaign('b');
    stalled.pause(); // SIGSTOP: keep-alive stops, a sees nothing
    await bLeads;
    expect(b.leaderRevision).toBeGreaterThan(0);
    expect(a.isLeader).toBe(true); // a has not noticed
    await expectCode(
      a.fencedTxn([], [{ type: 'put', key: '/etcd-fencing/owner', value: 'a' }]),
      'LEASE_LOST',
    );
    expect(await cb.get('/etcd-fencing/owner')).toBeUndefined();
    expect([a.isLeader, aLost]).toEqual([false, 1]);
    stalled.resume();
    await sleep(20);
    expect(aLost).toBe(1);
    expect((await b.fencedTxn([], [{ type: 'put', key: '/etcd-fencing/owner', value: 'b' }])).succeeded).toBe(
      true,
    );
    await b.resign();
    expect(await b.leader()).toBeUndefined();
  });

  it('keeps serving and watching when a member crashes', async () => {
    const c = client();
    const rec = recorder();
    const w = await c.watch('/crash/', rec);
    const revisions: number[] = [];
    for (let i = 0; i < 5; i++) revisions.push(await c.put(`/crash/${i}`, String(i)));
    await etcd.killMember(0);
    for (let i = 5; i < 25; i++) revisions.push(await persist(() => c.put(`/crash/${i}`, String(i))));
    await rec.until(() => rec.events.length >= revisions.length, 'all events', 20_000);
    const seen = rec.events.map((e) => e.revision);
    // In order, nothing repeated, and every acknowledged write delivered.
    expect([...seen].sort((x, y) => x - y)).toEqual(seen);
    expect(new Set(seen).size).toBe(seen.length);
    for (const r of revisions) expect(seen).toContain(r);
    expect(rec.errors).toEqual([]);
    expect((await c.range('/crash/')).kvs).toHaveLength(25);
    await w.cancel();
    await etcd.restartMember(0);
  });
});
