import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COLLECTOR_DEAD_LETTER_REASONS } from '../../src/collector/collector.js';
import { EXPOSITION_DEAD_LETTER_REASONS } from '../../src/ingest/exposition.js';
import { DEAD_LETTER_REASONS } from '../../src/ingest/validate.js';
import { STORE_DEAD_LETTER_REASONS } from '../../src/ports/sample-store.js';

describe('docs/api.md dead-letter reasons', () => {
  it('lists every reason code the read paths (CSV and exposition text), the store and the collector produce, with its meaning, and nothing else', () => {
    const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `([a-z_0-9]+)` \| (read|store|collector) \| (.+) \|$/gm)].map((m) => [
      m[1],
      m[2],
      m[3],
    ]);
    const expected = [
      ...Object.entries(DEAD_LETTER_REASONS).map(([code, meaning]) => [code, 'read', meaning]),
      ...Object.entries(EXPOSITION_DEAD_LETTER_REASONS).map(([code, meaning]) => [code, 'read', meaning]),
      ...Object.entries(STORE_DEAD_LETTER_REASONS).map(([code, meaning]) => [code, 'store', meaning]),
      ...Object.entries(COLLECTOR_DEAD_LETTER_REASONS).map(([code, meaning]) => [code, 'collector', meaning]),
    ];
    expect(rows).toEqual(expected);
  });
});
