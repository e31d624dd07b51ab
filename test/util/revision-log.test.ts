// RevisionLog: bounded by whole revisions, and a dropped item is released at once (the event ring
// and the embedded store's watch history kept up to twice their bound alive before).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { RevisionLog } from '../../src/util/revision-log.js';

interface Item {
  revision: number;
  n: number;
}

const fill = (log: RevisionLog<Item>, revisions: number[]): void => {
  revisions.forEach((revision, n) => log.push({ revision, n }));
};
const held = (log: RevisionLog<Item>): number[] => log.sliceFrom(0).map((item) => item.n);

describe('RevisionLog', () => {
  it('trims to the bound by whole revisions and says the newest revision it dropped', () => {
    const log = new RevisionLog<Item>();
    fill(log, [1, 2, 2, 3, 3, 3, 4]);
    expect(log.trimTo(10)).toBeUndefined();
    expect(log.size).toBe(7);
    // The newest 3 of 7 would start inside revision 3: all of it goes (revision 4 alone stays).
    expect(log.trimTo(3)).toBe(3);
    expect(held(log)).toEqual([6]);
    expect(log.last).toEqual({ revision: 4, n: 6 });
    expect(log.at(0)).toEqual({ revision: 4, n: 6 });
  });

  it('finds the first item after a point and drops below a revision', () => {
    const log = new RevisionLog<Item>();
    fill(log, [1, 2, 2, 3, 5, 5, 8]);
    expect(log.firstIndex((item) => item.revision >= 5)).toBe(4);
    expect(log.firstIndex((item) => item.revision > 8)).toBe(7);
    log.dropBelow(3);
    expect(held(log)).toEqual([3, 4, 5, 6]);
    expect(log.firstIndex((item) => item.revision >= 5)).toBe(1);
    expect(log.sliceFrom(1).map((item) => item.revision)).toEqual([5, 5, 8]);
    log.dropBelow(2);
    expect(log.size).toBe(4);
    log.clear();
    expect(log.size).toBe(0);
    expect(log.last).toBeUndefined();
  });

  it('keeps order and its bound over many pushes', () => {
    const log = new RevisionLog<Item>();
    for (let n = 0; n < 50_000; n++) {
      log.push({ revision: Math.floor(n / 3), n });
      log.trimTo(1_000);
      expect(log.size).toBeLessThanOrEqual(1_000);
    }
    const items = log.sliceFrom(0);
    // The last 1,000 would start inside revision 16,333 (items 48,999-49,001): it goes whole.
    expect(items).toHaveLength(998);
    expect(items[0]).toEqual({ revision: 16_334, n: 49_002 });
    expect(items.at(-1)!.n).toBe(49_999);
    for (let i = 1; i < items.length; i++) expect(items[i]!.n).toBe(items[i - 1]!.n + 1);
  });

  it('releases dropped items at once', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const log = new RevisionLog<Item>();
    // Below the array's reclaim threshold (1,024 dead items): only the cleared slot can release it.
    const refs: WeakRef<Item>[] = [];
    for (let n = 0; n < 100; n++) {
      const item = { revision: n, n };
      refs.push(new WeakRef(item));
      log.push(item);
    }
    log.trimTo(10);
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(refs.filter((ref) => ref.deref() !== undefined)).toHaveLength(10);
    expect(held(log)).toEqual([90, 91, 92, 93, 94, 95, 96, 97, 98, 99]);
  });
});
