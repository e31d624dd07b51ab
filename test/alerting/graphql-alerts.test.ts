/**
 * Alerts over GraphQL and /ws: the `alerts` query lists the alert instances the evaluator holds, and
 * the `alertUpdates` subscription (graphql-ws) and a /ws `stream: "alerts"` subscription stream their
 * state changes in order: PENDING, FIRING, RESOLVED (on `start`, a generated overheating GPU,
 * evaluations at injected times). A /ws alert subscription opened while the alert fires gets it in
 * its snapshot. Filters an alert stream cannot apply are refused.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { loadConfig } from '../../src/config/config.js';
import { writeDcgmCsv } from '../../src/generate/generator.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { until } from '../support/until.js';
import { JsonSocket } from '../ws/harness.js';

const T0 = Date.UTC(2025, 6, 18, 20, 0, 0);
const M = 60_000;
const dir = mkdtempSync(join(tmpdir(), 'nexus-graphql-alerts-'));
let now = T0;
let runtime: EmbeddedRuntime;
let client: Client | undefined;
const sockets: JsonSocket[] = [];

/** A /ws connection with one subscription to the alert stream; resolves once it is subscribed. */
async function alertSocket(subscription: Record<string, unknown>): Promise<JsonSocket> {
  const s = new JsonSocket(`${runtime.address!.replace('http', 'ws')}/ws?subscribe=none`);
  sockets.push(s);
  await s.opened;
  s.send({ type: 'subscribe', id: 'alerts', stream: 'alerts', ...subscription });
  await s.next((m) => m.type === 'subscribed' || m.type === 'error', 'subscribed');
  return s;
}

beforeAll(async () => {
  const csv = join(dir, 'hot.csv');
  await writeDcgmCsv(csv, {
    hosts: 1,
    gpusPerHost: 2,
    intervalMs: 10_000,
    durationMs: 12 * M,
    start: T0,
    faults: [{ kind: 'overheat', host: '1', gpu: 1, fromMs: 2 * M, toMs: 6 * M }],
  });
  const config = loadConfig(
    {},
    { MEMORY: 'true', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', CLUSTER_ID: 'gql' },
  );
  runtime = await startEmbedded({ config, logger: createLogger('silent'), alertClock: () => now });
  expect((await runtime.ingest({ spec: csv })).badRows).toBe(0);
}, 120_000);

afterAll(async () => {
  for (const s of sockets) s.close();
  await client?.dispose();
  await runtime?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function query<T>(text: string): Promise<T> {
  const response = await runtime.app.inject({ method: 'POST', url: '/graphql', payload: { query: text } });
  const body = response.json() as { data: T; errors?: unknown };
  expect(body.errors).toBeUndefined();
  return body.data;
}

describe('alerts over GraphQL', () => {
  it('streams PENDING, FIRING, RESOLVED and lists the alerts', async () => {
    client = createClient({
      url: `${runtime.address!.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
    });
    const events: { kind: string; alert: { name: string; state: string; firedAt: string | null } }[] = [];
    let subscribed = false;
    client.subscribe<{ alertUpdates: (typeof events)[number] }>(
      {
        query:
          'subscription { alertUpdates(clusterId: "gql") { kind revision alert { name state firedAt } } }',
      },
      {
        next: (r) => r.data && events.push(r.data.alertUpdates),
        error: () => undefined,
        complete: () => undefined,
      },
    );
    client.on('connected', () => (subscribed = true));
    await until('the subscription connected', 10_000, async () => subscribed);
    const ws = await alertSocket({ filter: { clusterId: 'gql' }, snapshot: true });
    expect(ws.ofType('subscribed')[0]).toMatchObject({ id: 'alerts', stream: 'alerts' });
    await ws.next((m) => m.type === 'alerts', 'the (empty) snapshot');
    expect(ws.ofType('alerts')[0]!.alerts).toEqual([]);
    // Let the server register the watch before the first write.
    await new Promise((resolve) => setTimeout(resolve, 300));

    let firingList: unknown;
    let lateSnapshot: unknown;
    for (let t = 0; t <= 10 * M; t += 30_000) {
      now = T0 + t;
      await runtime.alerting.evaluator.evaluateAt();
      if (t === 5 * M) {
        const late = await alertSocket({ snapshot: true });
        lateSnapshot = (await late.next((m) => m.type === 'alerts', 'the late snapshot')).alerts;
        firingList = await query(
          '{ alerts(state: FIRING) { name state clusterId labels { name value } value activeAt firedAt } }',
        );
      }
    }
    await until(
      'three alert events',
      10_000,
      async () => events.filter((e) => e.alert.name === 'GPUOverheating').length >= 3,
    );
    const overheating = events.filter((e) => e.alert.name === 'GPUOverheating');
    expect(overheating.map((e) => `${e.kind}:${e.alert.state}`)).toEqual([
      'PENDING:PENDING',
      'FIRING:FIRING',
      'RESOLVED:INACTIVE',
    ]);
    expect(overheating[1]!.alert.firedAt).toBe(new Date(T0 + 4 * M).toISOString());
    expect(events.map((e) => e.alert.name).every((n) => n === 'GPUOverheating')).toBe(true);
    expect(firingList).toEqual({
      alerts: [
        {
          name: 'GPUOverheating',
          state: 'FIRING',
          clusterId: 'gql',
          labels: expect.arrayContaining([
            { name: 'alertname', value: 'GPUOverheating' },
            { name: 'gpu', value: '1' },
            { name: 'severity', value: 'warning' },
          ]) as unknown,
          value: 95,
          activeAt: new Date(T0 + 2 * M).toISOString(),
          firedAt: new Date(T0 + 4 * M).toISOString(),
        },
      ],
    });
    expect(await query('{ alerts { name } }')).toEqual({ alerts: [] });

    // /ws saw the same changes, with labels as an object and ISO times.
    await until('three /ws alert messages', 10_000, async () => ws.ofType('alert', 'alerts').length >= 3);
    const wsEvents = ws
      .ofType('alert', 'alerts')
      .map((m) => m.event as { kind: string; revision: string; alert: Record<string, unknown> });
    expect(wsEvents.map((e) => `${e.kind}:${String(e.alert.state)}`)).toEqual([
      'PENDING:PENDING',
      'FIRING:FIRING',
      'RESOLVED:INACTIVE',
    ]);
    expect(wsEvents[1]!.alert).toMatchObject({
      name: 'GPUOverheating',
      clusterId: 'gql',
      state: 'FIRING',
      labels: { alertname: 'GPUOverheating', gpu: '1', severity: 'warning' },
      value: 95,
      activeAt: new Date(T0 + 2 * M).toISOString(),
      firedAt: new Date(T0 + 4 * M).toISOString(),
      resolvedAt: null,
    });
    expect(wsEvents[2]!.alert.resolvedAt).toBe(new Date(T0 + 6 * M).toISOString());
    const revisions = wsEvents.map((e) => Number(e.revision));
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
    // The subscription opened at 5 min (every cluster) found the firing alert in its snapshot.
    expect(lateSnapshot).toMatchObject([
      { name: 'GPUOverheating', state: 'FIRING', firedAt: new Date(T0 + 4 * M).toISOString() },
    ]);

    // Unsubscribing ends the stream: nothing more arrives.
    ws.send({ type: 'unsubscribe', id: 'alerts' });
    await ws.next((m) => m.type === 'unsubscribed', 'unsubscribed');
  }, 120_000);

  it('refuses alert-stream filters it cannot apply, and unknown streams', async () => {
    const hostFilter = await alertSocket({ filter: { hostId: 'h1' } });
    expect(hostFilter.ofType('error')[0]).toMatchObject({
      id: 'alerts',
      code: 'BAD_REQUEST',
      message: 'an alert stream filters by clusterId only (not hostId)',
    });
    const unknown = await alertSocket({ stream: 'metrics' });
    expect(unknown.ofType('error')[0]).toMatchObject({
      code: 'BAD_REQUEST',
      message: 'stream must be "telemetry" or "alerts"',
    });
    expect([...hostFilter.messages, ...unknown.messages].filter((m) => m.type === 'subscribed')).toEqual([]);
  });
});
