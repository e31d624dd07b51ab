import { describe, expect, it } from 'vitest';
import type { Batch } from '../../src/domain/types.js';
import type { RowResult } from '../../src/ingest/dcgm-reader.js';
import { MAX_BATCH_BYTES } from '../../src/domain/batch-codec.js';
import { BatchAssembler } from '../../src/streamer/batch-assembler.js';
import { sample } from '../support/samples.js';

const ok = (value: number, line: number): RowResult => ({ ok: true, sample: sample({ value }), line });
const bad = (line: number): RowResult => ({
  ok: false,
  deadLetter: { source: 's', line, raw: 'x', reason: 'non_numeric_value', detail: '' },
});

describe('BatchAssembler', () => {
  it('cuts batches at batchSize rows, keeps order, and carries dead letters along', async () => {
    const published: Batch[] = [];
    const assembler = new BatchAssembler('s', 3, async (b) => {
      published.push(b);
    });
    await assembler.add([ok(1, 2), bad(3), ok(2, 4), ok(3, 5), ok(4, 6)]);
    expect(published).toHaveLength(1);
    expect(published[0]!.samples.map((s) => s.value)).toEqual([1, 2]);
    expect(published[0]!.deadLetters.map((d) => d.line)).toEqual([3]);
    await assembler.flush();
    expect(published.map((b) => b.samples.map((s) => s.value))).toEqual([
      [1, 2],
      [3, 4],
    ]);
    await assembler.flush();
    expect(published).toHaveLength(2);
  });

  it('flushes a partial batch only once its oldest row is old enough', async () => {
    const published: Batch[] = [];
    const assembler = new BatchAssembler('s', 100, async (b) => {
      published.push(b);
    });
    await assembler.add([ok(1, 2)]);
    await assembler.flushIfOlderThan(60_000);
    expect(published).toHaveLength(0);
    await new Promise((r) => setTimeout(r, 30));
    await assembler.flushIfOlderThan(20);
    expect(published).toHaveLength(1);
    expect(assembler.pending).toBe(0);
  });

  it('keeps up to maxInFlight publishes outstanding, started in input order; add waits while the window is full', async () => {
    const started: number[] = [];
    const gates: Array<() => void> = [];
    const assembler = new BatchAssembler(
      's',
      1,
      (b) => {
        started.push(b.samples[0]!.value);
        return new Promise<void>((resolve) => gates.push(resolve));
      },
      3,
    );
    let added = false;
    const adding = assembler.add([1, 2, 3, 4, 5].map((v) => ok(v, v))).then(() => {
      added = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    // Three in flight; the fourth batch is cut and waits for room, the fifth row is not read yet.
    expect(started).toEqual([1, 2, 3]);
    expect(added).toBe(false);
    gates[1]!(); // the second publish finishing first makes room for the fourth
    await new Promise((r) => setTimeout(r, 20));
    expect(started).toEqual([1, 2, 3, 4]);
    expect(added).toBe(false);
    gates[0]!();
    await new Promise((r) => setTimeout(r, 20));
    expect(started).toEqual([1, 2, 3, 4, 5]);
    expect(added).toBe(false); // the fifth filled the window again
    gates[2]!();
    await adding;
    expect(added).toBe(true);
    let flushed = false;
    const flushing = assembler.flush().then(() => {
      flushed = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(flushed).toBe(false); // flush waits for every publish still outstanding
    for (const open of gates.slice(3)) open();
    await flushing;
    expect(flushed).toBe(true);
  });

  it('a failed publish rejects the next add and flush, with the first error', async () => {
    let calls = 0;
    const assembler = new BatchAssembler(
      's',
      1,
      async () => {
        calls += 1;
        if (calls === 1) throw new Error('queue down');
      },
      4,
    );
    await assembler.add([ok(1, 1), ok(2, 2)]);
    await new Promise((r) => setTimeout(r, 10));
    await expect(assembler.add([ok(3, 3)])).rejects.toThrow('queue down');
    await expect(assembler.flush()).rejects.toThrow('queue down');
    expect(calls).toBe(2);
    expect(() => new BatchAssembler('s', 1, async () => {}, 0)).toThrow(RangeError);
  });

  it('rows left after a cut in the same add are flushed by age, not held until the next add', async () => {
    const published: Batch[] = [];
    const assembler = new BatchAssembler('s', 2, async (b) => {
      published.push(b);
    });
    await assembler.add([ok(1, 1), ok(2, 2), ok(3, 3)]);
    expect(published).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 30));
    await assembler.flushIfOlderThan(20);
    expect(published.map((b) => b.samples.map((x) => x.value))).toEqual([[1, 2], [3]]);
  });

  it('after a failed publish, flush starts nothing more and rejects', async () => {
    const published: number[][] = [];
    const assembler = new BatchAssembler(
      's',
      2,
      async (b) => {
        if (b.samples[0]!.value === 1) throw new Error('queue down');
        published.push(b.samples.map((x) => x.value));
      },
      2,
    );
    await assembler.add([ok(1, 1), ok(2, 2), ok(3, 3)]); // [1, 2] publishing, 3 pending
    await new Promise((r) => setTimeout(r, 10));
    expect(assembler.pending).toBe(1);
    await expect(assembler.flush()).rejects.toThrow('queue down');
    expect(published).toEqual([]);
  });

  it('splits a batch of long dead letters into payloads under MAX_BATCH_BYTES', async () => {
    const sizes: number[] = [];
    const lines: number[] = [];
    const assembler = new BatchAssembler('s', 2000, async (b, payload) => {
      sizes.push(payload.byteLength);
      lines.push(...b.deadLetters.map((d) => d.line));
    });
    const rows: RowResult[] = Array.from({ length: 2000 }, (_, i) => ({
      ok: false,
      deadLetter: {
        source: 's',
        line: i + 2,
        raw: 'y'.repeat(1000),
        reason: 'non_numeric_value',
        detail: '',
      },
    }));
    await assembler.add(rows);
    await assembler.flush();
    expect(sizes.length).toBeGreaterThan(1);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    expect(lines).toEqual(rows.map((_, i) => i + 2));
  });
});
