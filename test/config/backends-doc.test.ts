import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { listBackends, needsText } from '../../src/runtime/registry.js';

describe('docs/configuration.md backends', () => {
  it('lists every registered backend with its needs, sharing and summary, and nothing else', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const rows = [
      ...doc.matchAll(
        /^\| (queue|coordination|sample store) \| `([a-z0-9-]+)` \| ([^|]+) \| (yes|no) \| (.+) \|$/gm,
      ),
    ].map((m) => [m[1], m[2], m[3]!.trim(), m[4] === 'yes', m[5]!.trim()]);
    const expected = listBackends().map((b) => [b.port, b.kind, needsText(b.needs), b.shared, b.summary]);
    expect(rows).toEqual(expected);
    // The built-in table, spelled out: a renamed kind or a changed need shows up here too.
    expect(rows.map((r) => `${String(r[0])}:${String(r[1])}=${String(r[2])}`)).toEqual([
      'queue:embedded=none',
      'queue:etcd=`ETCD_ENDPOINTS`',
      'queue:redis=`REDIS_URL`',
      'queue:nats=`NATS_URL`',
      'coordination:embedded=none',
      'coordination:etcd=`ETCD_ENDPOINTS`',
      'sample store:pglite=none',
      'sample store:sqlite=none',
      'sample store:postgres=`DATABASE_URL` or `DB_HOST`',
      'sample store:victoria=`REMOTE_WRITE_URL`, `DATABASE_URL` or `DB_HOST`',
    ]);
  });
});
