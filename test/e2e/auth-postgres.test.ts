/**
 * Tokens shared by API processes on one PostgreSQL database: a token created through one is served
 * by the other, and a revocation through one is refused by the other within about a second, its
 * open WebSocket closed with 4401. Two embedded runtimes on a real PostgreSQL (test harness).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { tokenStoreOf } from '../../src/auth/token-store.js';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';

let postgres: PostgresHarness;
const runtimes: EmbeddedRuntime[] = [];

beforeAll(async () => {
  postgres = await startPostgres();
  const url = await postgres.createDatabase('auth_shared');
  for (const id of ['a', 'b']) {
    const config = loadConfig(
      {},
      {
        DATABASE_URL: url,
        DB_SSLMODE: 'disable',
        HOST: '127.0.0.1',
        PORT: 0,
        AUTH: 'token',
        SERVICE_ID: `api-${id}`,
        COLLECTOR_ID: `collector-${id}`,
      },
    );
    runtimes.push(await startEmbedded({ config, logger: createLogger('silent') }));
  }
}, 180_000);

afterAll(async () => {
  for (const runtime of runtimes) await runtime.close();
  await postgres?.stop();
});

describe('tokens across API processes on PostgreSQL', () => {
  it('serves a token made by the other process and refuses it within about a second of its revocation', async () => {
    const [a, b] = runtimes as [EmbeddedRuntime, EmbeddedRuntime];
    const admin = (await tokenStoreOf(a.store)!.create('ops', ['admin'])).token;
    const created = await fetch(`${a.address}/api/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'grafana', scopes: ['read'] }),
    });
    expect(created.status).toBe(201);
    const { token, id } = (await created.json()) as { token: string; id: string };
    const onB = () =>
      fetch(`${b.address}/api/v1/clusters`, { headers: { authorization: `Bearer ${token}` } });
    expect((await onB()).status).toBe(200);

    const socket = new WebSocket(`${b.address!.replace(/^http/, 'ws')}/ws?subscribe=none`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const welcome = new Promise<void>((resolve) =>
      socket.on('message', (data) => {
        if ((JSON.parse(String(data)) as { type: string }).type === 'welcome') resolve();
      }),
    );
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await welcome;

    const revokedAt = Date.now();
    const revoke = await fetch(`${a.address}/api/v1/tokens/${id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(revoke.status).toBe(200);
    // Process A refuses it at once; process B once its one-second cache lapses.
    expect(
      (await fetch(`${a.address}/api/v1/clusters`, { headers: { authorization: `Bearer ${token}` } })).status,
    ).toBe(401);
    while ((await onB()).status === 200) {
      expect(Date.now() - revokedAt).toBeLessThan(10_000);
      await new Promise((r) => setTimeout(r, 25));
    }
    const restMs = Date.now() - revokedAt;
    expect((await onB()).status).toBe(401);
    expect(await closed).toBe(4401);
    const socketMs = Date.now() - revokedAt;
    console.log(
      `revocation seen by the other process: REST after ${restMs} ms, WebSocket closed after ${socketMs} ms`,
    );
    expect(socketMs).toBeLessThan(10_000);
  }, 60_000);
});
