import { describe, expect, it } from 'vitest';
import { readDcgm, type RowResult } from '../../src/ingest/dcgm-reader.js';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';
import { createReadStream } from 'node:fs';

describe('--timestamps now', () => {
  it('shifts every row by one offset so the first lands on now and rows keep their spacing', async () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const rows: RowResult[] = [];
    for await (const chunk of readDcgm(createReadStream(bundledSamplePath()), {
      source: 's',
      clusterId: 'c',
      timestamps: 'now',
      now: () => now,
    }))
      rows.push(...chunk);
    const times = rows.flatMap((r) => (r.ok ? [r.sample.timestampMs] : []));
    expect(times).toHaveLength(2470);
    expect(times[0]).toBe(now);
    // The sample spans four seconds (20:42:34..37); the restamped rows span the same four instants.
    expect([...new Set(times)].sort()).toEqual([now, now + 1000, now + 2000, now + 3000]);
  });
});
