// Embedded-adapter specifics beyond the port contract: the bounded watch history, compaction
// limits, byte-order key comparison and listener isolation.
import { describe, expect, it } from 'vitest';
import { compareBytes, createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { hasCode } from '../../src/errors.js';
import { expectCode, recorder } from '../conformance/coordination.js';

describe('EmbeddedCoordination', () => {
  it('keeps at most historyLimit events, compacting whole revisions automatically', async () => {
    const c = createEmbeddedCoordination({ historyLimit: 10 });
    const first = await c.put('/h/0', '0');
    for (let i = 1; i < 30; i++) await c.put(`/h/${i % 4}`, String(i));
    // A txn of 3 events must never be split by the trim.
    const t = await c.txn(
      [],
      ['a', 'b', 'c'].map((k) => ({ type: 'put' as const, key: `/h/t/${k}`, value: k })),
    );
    const old = recorder();
    await c.watch('/h/', { ...old, fromRevision: first });
    await old.until(() => old.errors.length === 1, 'COMPACTED');
    const err = old.errors[0]!;
    expect(hasCode(err, 'COMPACTED')).toBe(true);
    const compactRevision = hasCode(err, 'COMPACTED') ? Number(err.details.compactRevision) : NaN;
    expect(compactRevision).toBeGreaterThan(first);
    const replay = recorder();
    await c.watch('/h/', { ...replay, fromRevision: compactRevision });
    await replay.until(() => replay.events.length > 0, 'replay');
    expect(replay.events.length).toBeLessThanOrEqual(10);
    expect(replay.events[0]!.revision).toBe(compactRevision);
    expect(replay.events.at(-1)!.revision).toBe(t.revision);
    expect(replay.events.filter((e) => e.revision === t.revision)).toHaveLength(3);
    await c.close();
  });

  it('refuses to compact a future revision; compacting an old one again is a no-op', async () => {
    const c = createEmbeddedCoordination();
    const r = await c.put('/k', 'v');
    await expectCode(c.compact(r + 1), 'BAD_REQUEST');
    await c.compact(r);
    await c.compact(r - 1);
    await c.close();
  });

  it('orders keys by UTF-8 bytes', () => {
    const keys = ['b', 'a', '\uFFFD', '\u{1F600}', 'é', 'A', '', 'ab', '\uE000', '\u{10000}'];
    const bytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...keys].sort(compareBytes)).toEqual(bytes);
  });

  it('keeps delivering when a listener throws, reporting the error', async () => {
    const reported: unknown[] = [];
    const c = createEmbeddedCoordination({ onListenerError: (e) => reported.push(e) });
    const seen: string[] = [];
    await c.watch('/l/', {
      onEvent: (e) => {
        seen.push(e.type);
        if (seen.length === 1) throw new Error('listener bug');
      },
    });
    await c.put('/l/1', 'a');
    await c.delete('/l/1');
    await recorder().until(() => seen.length === 2, 'both events');
    expect(reported).toHaveLength(1);
    await c.close();
  });

  it('returns copies: mutating a result does not change the store', async () => {
    const c = createEmbeddedCoordination();
    await c.put('/m', 'v');
    const kv = (await c.get('/m'))!;
    kv.value = 'changed';
    expect((await c.get('/m'))?.value).toBe('v');
    await c.close();
  });
});
