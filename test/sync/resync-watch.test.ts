/**
 * watchWithResync: a watcher that falls behind a compaction re-lists the prefix and watches on,
 * with no silent gap. On the embedded store and on real etcd: the initial listing plus events
 * mirror the prefix; a consumer paused (slow handler) across writes, deletes and a compaction
 * ends with the same state as the store; a watcher whose network path froze while etcd wrote
 * megabytes and compacted ends the same as etcd; a store that went back in time is re-listed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { createEtcdCoordination } from '../../src/adapters/etcd/coordination.js';
import {
  applyToMap,
  watchWithResync,
  type ResyncSnapshot,
  type ResyncWatcher,
} from '../../src/coordination/resync-watch.js';
import type { Coordination } from '../../src/ports/coordination.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { startTcpProxy } from './tcp-proxy.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** The store's content under `prefix` as a map. */
async function contents(c: Coordination, prefix: string): Promise<Map<string, string>> {
  const res = await c.range(prefix);
  return new Map(res.kvs.map((kv) => [kv.key, kv.value]));
}

/** A consumer that mirrors the prefix into a map, and can be paused (its handler blocks). */
function mirror(
  c: Coordination,
  prefix: string,
  options: { fromRevision?: number; maxPending?: number } = {},
) {
  const state = new Map<string, string>();
  const snapshots: ResyncSnapshot[] = [];
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  let events = 0;
  const watcher: ResyncWatcher = watchWithResync(
    c,
    prefix,
    {
      onSnapshot: (s) => {
        snapshots.push(s);
        applyToMap(state, s);
      },
      onEvent: async (e) => {
        if (gate) await gate;
        events += 1;
        applyToMap(state, e);
      },
    },
    options,
  );
  return {
    state,
    snapshots,
    watcher,
    get events() {
      return events;
    },
    pause() {
      gate = new Promise((resolve) => (open = resolve));
    },
    resume() {
      gate = undefined;
      open?.();
    },
  };
}

function sameAs(expected: Map<string, string>, actual: Map<string, string>): boolean {
  if (expected.size !== actual.size) return false;
  for (const [k, v] of expected) if (actual.get(k) !== v) return false;
  return true;
}

/** Cases that run on every store. */
function resyncCases(name: string, setup: () => Promise<{ c: Coordination; close(): Promise<void> }>): void {
  describe(`watchWithResync on ${name}`, () => {
    let c: Coordination;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ c, close } = await setup());
    });
    afterAll(async () => {
      await close?.();
    });

    it('lists, then follows puts and deletes', async () => {
      const prefix = `/rw/${name}/basic/`;
      for (let i = 0; i < 10; i++) await c.put(`${prefix}k${i}`, `v${i}`);
      await c.put(`/rw/${name}/basic-other`, 'not under the prefix');
      const m = mirror(c, prefix);
      await m.watcher.ready;
      expect(m.snapshots.map((s) => [s.reason, s.kvs.length])).toEqual([['initial', 10]]);
      await c.put(`${prefix}k3`, 'changed');
      await c.delete(`${prefix}k4`);
      await c.put(`${prefix}new`, 'n');
      const expected = await contents(c, prefix);
      await waitFor(() => sameAs(expected, m.state), 'the mirror to follow');
      expect(m.watcher.resyncs).toBe(0);
      await m.watcher.cancel();
    });

    it('a consumer paused across writes, deletes and a compaction ends with the same state as the store', async () => {
      const prefix = `/rw/${name}/paused/`;
      for (let i = 0; i < 50; i++) await c.put(`${prefix}k${String(i).padStart(3, '0')}`, `v${i}`);
      const m = mirror(c, prefix, { maxPending: 20 });
      await m.watcher.ready;
      m.pause();
      // While the handler is stuck: more than maxPending events, deletes of listed keys, then compaction.
      await c.put(`${prefix}k000`, 'first change, held by the paused handler');
      for (let i = 0; i < 200; i++) await c.put(`${prefix}n${String(i).padStart(3, '0')}`, `x${i}`);
      for (let i = 0; i < 50; i += 2) await c.delete(`${prefix}k${String(i).padStart(3, '0')}`);
      await c.deletePrefix(`${prefix}n1`);
      await c.compact(await c.revision());
      await sleep(200);
      m.resume();
      const expected = await contents(c, prefix);
      await waitFor(() => sameAs(expected, m.state), 'the mirror to catch up after the compaction');
      expect(m.watcher.resyncs).toBeGreaterThanOrEqual(1);
      const resync = m.snapshots.find((s) => s.reason === 'compacted');
      expect(resync?.missedFrom).toBeGreaterThan(0);
      expect(m.state.has(`${prefix}k000`)).toBe(false); // deleted during the gap: gone from the mirror too
      // And it keeps following after the resync.
      await c.put(`${prefix}after`, 'a');
      await waitFor(() => m.state.get(`${prefix}after`) === 'a', 'an event after the resync');
      await m.watcher.cancel();
    });

    it('resumes from a revision without a listing, and re-lists when that revision is compacted', async () => {
      const prefix = `/rw/${name}/resume/`;
      const r1 = await c.put(`${prefix}a`, '1');
      await c.put(`${prefix}b`, '2');
      const live = mirror(c, prefix, { fromRevision: r1 + 1 });
      await waitFor(() => live.state.get(`${prefix}b`) === '2', 'the resumed event');
      expect(live.snapshots).toEqual([]);
      expect(live.state.has(`${prefix}a`)).toBe(false); // before fromRevision: not replayed
      await live.watcher.cancel();

      await c.delete(`${prefix}a`);
      await c.compact(await c.revision());
      const late = mirror(c, prefix, { fromRevision: r1 + 1 });
      await waitFor(() => late.snapshots.length === 1, 'a listing after the compacted resume');
      expect(late.snapshots[0]?.reason).toBe('compacted');
      expect([...late.state.keys()]).toEqual([`${prefix}b`]);
      await late.watcher.cancel();
    });

    it('re-lists when the store is behind the resume revision (store replaced)', async () => {
      const prefix = `/rw/${name}/reset/`;
      await c.put(`${prefix}x`, '1');
      const m = mirror(c, prefix, { fromRevision: (await c.revision()) + 1_000_000 });
      await waitFor(() => m.snapshots.length === 1, 'a listing');
      expect(m.snapshots[0]?.reason).toBe('unknown_cursor');
      expect(m.state.get(`${prefix}x`)).toBe('1');
      await m.watcher.cancel();
    });

    it('stops with onError when a handler fails, and cancel() is idempotent', async () => {
      const prefix = `/rw/${name}/fail/`;
      const errors: unknown[] = [];
      const w = watchWithResync(c, prefix, {
        onSnapshot: () => undefined,
        onEvent: () => {
          throw new Error('consumer broke');
        },
        onError: (e) => errors.push(e),
      });
      await w.ready;
      await c.put(`${prefix}a`, '1');
      await w.done;
      expect(String(errors[0])).toContain('consumer broke');
      await w.cancel();
      await w.cancel();
    });
  });
}

resyncCases('the embedded store', async () => {
  const c = createEmbeddedCoordination();
  return { c, close: () => c.close() };
});

let etcd: EtcdHandle;
beforeAll(async () => {
  etcd = await startEtcd({ members: 1 });
});
afterAll(async () => {
  await etcd?.stop();
});

resyncCases('etcd', async () => {
  const c = createEtcdCoordination({ endpoints: etcd.endpointList });
  return { c, close: () => c.close() };
});

describe('watchWithResync on etcd behind a frozen network path', () => {
  it('a watcher frozen while etcd wrote megabytes and compacted ends with the same state as etcd', async () => {
    const proxy = await startTcpProxy(etcd.endpoints[0]!);
    const direct = createEtcdCoordination({ endpoints: etcd.endpointList });
    const viaProxy = createEtcdCoordination({ endpoints: proxy.endpoint });
    try {
      const prefix = '/rw/frozen/';
      for (let i = 0; i < 50; i++) await direct.put(`${prefix}k${String(i).padStart(3, '0')}`, `v${i}`);
      const m = mirror(viaProxy, prefix);
      await m.watcher.ready;
      await waitFor(() => m.state.size === 50, 'the initial listing');

      proxy.pause();
      // Far more than the HTTP/2 window and socket buffers hold: etcd's side of the watch backs up,
      // so it must serve this watcher from history later, which the compaction removes.
      const big = 'x'.repeat(16 * 1024);
      const writes: Promise<number>[] = [];
      for (let i = 0; i < 600; i++) {
        writes.push(direct.put(`${prefix}big${String(i % 300).padStart(3, '0')}`, `${i}:${big}`));
        if (writes.length >= 16) await Promise.all(writes.splice(0));
      }
      await Promise.all(writes);
      for (let i = 0; i < 50; i += 2) await direct.delete(`${prefix}k${String(i).padStart(3, '0')}`);
      await direct.compact(await direct.revision());
      proxy.resume();

      const expected = await contents(direct, prefix);
      await waitFor(() => sameAs(expected, m.state), 'the frozen watcher to match etcd', 60_000);
      console.log(
        `frozen watcher: ${m.watcher.resyncs} resync(s), ${m.events} events delivered; snapshots: ${m.snapshots.map((s) => `${s.reason}@${s.revision}`).join(', ')}`,
      );
      expect(m.watcher.resyncs).toBeGreaterThanOrEqual(1);
      await m.watcher.cancel();
    } finally {
      await viaProxy.close();
      await direct.close();
      await proxy.close();
    }
  });
});
