/**
 * The API token store on both embedded sample stores (PGlite: the SQL adapter; SQLite: its own
 * table), through `tokenStoreOf` as the API and the CLI reach it: the same answers from each.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { createSqliteSampleStore } from '../../src/adapters/sqlite/sample-store.js';
import { tokenStoreOf } from '../../src/auth/token-store.js';
import type { SampleStore } from '../../src/ports/sample-store.js';

const stores: [string, (dir: string) => Promise<SampleStore>][] = [
  ['PGlite', async () => createPgliteSampleStore({ memory: true })],
  ['SQLite', async (dir) => createSqliteSampleStore({ file: join(dir, 'samples.db') })],
];

describe.each(stores)('API tokens in the %s store', (_name, open) => {
  it('creates, looks up, lists, refuses a second valid name, revokes by name and id, and keeps them across reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nexus-tokens-'));
    let store = await open(dir);
    try {
      await store.migrate();
      let tokens = tokenStoreOf(store)!;
      expect(tokens).toBeDefined();
      const a = await tokens.create('grafana', ['read']);
      const b = await tokens.create('admin-1', ['admin', 'read']);
      expect(a.token).toMatch(/^nxt_[A-Za-z0-9_-]{43}$/);
      expect(a.record).toMatchObject({ name: 'grafana', scopes: ['read'] });
      expect(Date.parse(a.record.createdAt)).toBeGreaterThan(Date.now() - 60_000);
      expect(await tokens.lookup(a.token)).toEqual(a.record);
      expect(await tokens.lookup(`${a.token.slice(0, -1)}x`)).toBeUndefined();
      expect(await tokens.lookup('not a token')).toBeUndefined();
      await expect(tokens.create('grafana', ['read'])).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      await expect(tokens.create('bad name!', ['read'])).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      // Digits alone name ids: `revoke('1')` must never meet a token named "1".
      await expect(tokens.create('1', ['read'])).rejects.toMatchObject({ code: 'BAD_REQUEST' });
      expect(await tokens.revoke('1234567890123456789')).toBeUndefined();
      expect((await tokens.list()).map((t) => t.name)).toEqual(['admin-1', 'grafana']);

      const revoked = await tokens.revoke('grafana');
      expect(revoked?.revokedAt).toBeDefined();
      expect(await tokens.lookup(a.token)).toBeUndefined();
      expect(await tokens.revoke('grafana')).toBeUndefined();
      expect((await tokens.list()).map((t) => t.name)).toEqual(['admin-1']);
      expect((await tokens.list({ includeRevoked: true })).map((t) => t.name)).toEqual([
        'admin-1',
        'grafana',
      ]);
      // The name is free again once its token is revoked.
      const again = await tokens.create('grafana', ['read']);
      expect(again.record.id).not.toBe(a.record.id);
      expect((await tokens.revoke(b.record.id))?.name).toBe('admin-1');

      if (_name === 'SQLite') {
        await store.close();
        store = await open(dir);
        await store.migrate();
        tokens = tokenStoreOf(store)!;
        expect(await tokens.lookup(again.token)).toMatchObject({ name: 'grafana' });
        expect(await tokens.lookup(b.token)).toBeUndefined();
      }
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
