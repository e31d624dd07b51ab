/**
 * Ending an alert stream releases its watch at once. graphql-ws completes a subscription with
 * `return()`; on a bare async generator that call waits for the pending `next()`, i.e. for the next
 * alert change, so a quiet system kept every completed subscription's watch open. The iterator the
 * GraphQL resolver uses (`alertEventIterator`) aborts first: its watch is cancelled and the pending
 * `next()` resolves done. The bare generator's behaviour is checked too, so the test can tell.
 */
import { describe, expect, it } from 'vitest';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { alertEventIterator, alertEvents } from '../../src/alerting/events.js';
import type { Coordination } from '../../src/ports/coordination.js';
import { waitUntil } from '../ws/harness.js';

/** A coordination store that counts the watches open on it. */
function counting(inner: Coordination): { store: Coordination; open: () => number } {
  let open = 0;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== 'watch') return Reflect.get(target, prop, receiver) as unknown;
      return async (...args: Parameters<Coordination['watch']>) => {
        const watcher = await target.watch(...args);
        open += 1;
        let cancelled = false;
        return {
          cancel: async () => {
            if (!cancelled) open -= 1;
            cancelled = true;
            await watcher.cancel();
          },
        };
      };
    },
  });
  return { store, open: () => open };
}

const settledWithin = async (p: Promise<unknown>, ms: number): Promise<boolean> =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('alert event streams end at once', () => {
  it('alertEventIterator: return() cancels the watch and ends a pending next()', async () => {
    const inner = createEmbeddedCoordination();
    const { store, open } = counting(inner);
    const events = alertEventIterator(store, { maxQueued: 10 });
    const pending = events.next();
    await waitUntil(() => open() === 1, 'the watch to open');
    expect(await settledWithin(events.return!(), 1_000)).toBe(true);
    expect(open()).toBe(0);
    expect(await pending).toEqual({ done: true, value: undefined });
    await inner.close();
  });

  it('a bare generator waits for the next alert change (what the iterator avoids)', async () => {
    const inner = createEmbeddedCoordination();
    const { store, open } = counting(inner);
    const events = alertEvents(store, { maxQueued: 10 });
    const pending = events.next();
    await waitUntil(() => open() === 1, 'the watch to open');
    const ending = events.return(undefined);
    expect(await settledWithin(ending, 300)).toBe(false);
    expect(open()).toBe(1);
    // A change of an alert key wakes it; then it ends and cancels its watch.
    await inner.put(
      '/telemetry/alerts/c/active/a',
      JSON.stringify({
        id: 'a',
        fingerprint: 'f',
        state: 'pending',
        labels: { alertname: 'X' },
        annotations: {},
        value: 1,
        activeAt: 1,
      }),
    );
    await pending;
    await ending;
    expect(open()).toBe(0);
    await inner.close();
  });
});

describe('alert event streams and bursts', () => {
  const alert = (id: string, state: string): string =>
    JSON.stringify({
      id,
      fingerprint: `f-${id}`,
      state,
      labels: { alertname: 'X' },
      annotations: {},
      value: 1,
      activeAt: 1,
    });

  it('a burst of 30 alert changes in one transaction reaches a consumer with a bound of 10; one that stops reading is cut off', async () => {
    const store = createEmbeddedCoordination();
    let overflowed = 0;
    const events = alertEvents(store, { maxQueued: 10, onOverflow: () => overflowed++ });
    const first = events.next();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const burst = (state: string) =>
      store.txn(
        [],
        Array.from({ length: 30 }, (_, i) => ({
          type: 'put' as const,
          key: `/telemetry/alerts/c/active/a${i}`,
          value: alert(`a${i}`, state),
        })),
      );
    await burst('pending');
    const kinds = [(await first).value!.kind];
    while (kinds.length < 30) kinds.push((await events.next()).value!.kind);
    expect(kinds).toEqual(Array.from({ length: 30 }, () => 'PENDING'));
    expect(overflowed).toBe(0);
    // Unread: 30 firing changes, then one change of a held alert per turn: 10 + 2 x 30 may wait
    // (the burst, or the 30 alerts held, whichever is more), the next is one too many.
    await new Promise((resolve) => setTimeout(resolve, 5));
    await burst('firing');
    for (let i = 0; i < 40; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await store.put('/telemetry/alerts/c/active/a0', alert('a0', i % 2 === 0 ? 'pending' : 'firing'));
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(overflowed).toBe(0);
    await store.put('/telemetry/alerts/c/active/a0', alert('a0', 'pending'));
    await waitUntil(() => overflowed === 1, 'the overflow');
    // What was queued is still handed over, then the stream fails.
    await expect(
      (async () => {
        for (;;) if ((await events.next()).done) break;
      })(),
    ).rejects.toThrow(/too slow/);
    await store.close();
  });
  it('a burst of 150 changes written in three transactions (turns apart, as on etcd) reaches a reader slower than it', async () => {
    const store = createEmbeddedCoordination();
    let overflowed = 0;
    const events = alertEvents(store, { maxQueued: 10, onOverflow: () => overflowed++ });
    const got: string[] = [];
    const reading = (async () => {
      while (got.length < 150) {
        const step = await events.next();
        if (step.done) break;
        got.push(step.value.alert.id);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (let part = 0; part < 3; part++) {
      await store.txn(
        [],
        Array.from({ length: 50 }, (_, i) => ({
          type: 'put' as const,
          key: `/telemetry/alerts/c/active/s${part * 50 + i}`,
          value: alert(`s${part * 50 + i}`, 'pending'),
        })),
      );
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await reading;
    expect(overflowed).toBe(0);
    expect(got).toEqual(Array.from({ length: 150 }, (_, i) => `c/s${i}`));
    await events.return(undefined);
    await store.close();
  });
});
