/**
 * A GPU that disappears from its target's scrape goes inactive at once: an embedded runtime listening
 * on a port scrapes a dcgm-exporter stand-in every 2 s; the stand-in serves the MIG fixture (GPU 0
 * with two MIG instances, GPU 1 whole), then the same body without GPU 0. With STALE_AFTER at 10
 * minutes, GPU 0 and its instances turn inactive on REST and GraphQL within a few scrape intervals
 * (only the scrape's presence can do that), a /ws subscriber and a GraphQL subscriber receive
 * GPU_INACTIVE and MIG_INACTIVE (GraphQL with `active: false` and the instance ids), GPU 1 stays
 * active; when GPU 0 is served again it is active again.
 */
import { readFileSync } from 'node:fs';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { startStandin, type Standin } from '../support/dcgm-exporter-standin.js';
import { JsonSocket, waitUntil } from '../ws/harness.js';

const MIG_PROM = readFileSync(new URL('../fixtures/dcgm-exporter/mig.prom', import.meta.url), 'utf8');
/** The same exposition without GPU 0 (and so without its MIG instances). */
const WITHOUT_GPU0 = MIG_PROM.split('\n')
  .filter((line) => !line.includes('{gpu="0"'))
  .join('\n');
const HOST = 'dgx-a100-mig-01';
const GPUS = `/api/v1/clusters/live/hosts/${HOST}/gpus`;
const INTERVAL_MS = 2000;

let runtime: EmbeddedRuntime;
let standin: Standin;
let body = MIG_PROM;
let socket: JsonSocket;
let client: Client;
let stopSubscription: () => void;
/** What the GraphQL subscriber received. */
const gqlEvents: {
  eventType: string;
  gpuIndex: string | null;
  migInstance: string | null;
  active: boolean | null;
}[] = [];
const stop = new AbortController();
let scraping: Promise<unknown>;

interface GpuView {
  gpu_id: string;
  active: boolean;
  gone_since?: string;
  mig_instances?: { instance_id: string; active: boolean; gone_since?: string }[];
}

/** GPUs of the host; none before the first scrape is stored (the host is not known yet). */
async function gpus(): Promise<GpuView[]> {
  const response = await runtime.app.inject({ method: 'GET', url: GPUS });
  if (response.statusCode === 404) return [];
  expect(response.statusCode).toBe(200);
  return response.json() as GpuView[];
}

const activity = async (): Promise<string> =>
  JSON.stringify(
    (await gpus()).map((g) => [
      g.gpu_id,
      g.active,
      (g.mig_instances ?? []).map((m) => [m.instance_id, m.active]),
    ]),
  );

/** Poll `check` every 100 ms until it holds (generous bound: the machine is loaded). */
async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${await activity()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface WsEvent {
  eventType: string;
  hostId?: string;
  gpuIndex?: string;
  gpuId?: string;
}
const wsEvents = (): WsEvent[] => socket.ofType('event', 'all').map((m) => m.event as WsEvent);

beforeAll(async () => {
  standin = await startStandin({ body: () => body });
  const config = loadConfig(
    {},
    {
      MEMORY: true,
      CLUSTER_ID: 'live',
      HOST: '127.0.0.1',
      PORT: 0,
      LOG_LEVEL: 'silent',
      STALE_AFTER: '10m',
      SCRAPE_TARGETS: standin.url,
      SCRAPE_INTERVAL: `${INTERVAL_MS}ms`,
      SCRAPE_TIMEOUT: '1500ms',
    },
  );
  runtime = await startEmbedded({ config, logger: createLogger('silent') });
  socket = new JsonSocket(`${runtime.address!.replace(/^http/, 'ws')}/ws?subscribe=none`);
  await socket.opened;
  socket.send({ type: 'subscribe', id: 'all', filter: { clusterId: 'live' } });
  await waitUntil(() => socket.ofType('subscribed', 'all').length === 1, 'subscription ack');
  client = createClient({
    url: `${runtime.address!.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
  });
  const hub = runtime.app.realtime!.hub;
  const before = hub.stats.subscribers;
  stopSubscription = client.subscribe<{ telemetryUpdates: (typeof gqlEvents)[number] }>(
    {
      query: `subscription { telemetryUpdates(clusterId: "live", waitForCluster: true) {
        eventType gpuIndex migInstance active } }`,
    },
    {
      next: (r) => gqlEvents.push(r.data!.telemetryUpdates),
      error: () => undefined,
      complete: () => undefined,
    },
  );
  await waitUntil(() => hub.stats.subscribers > before, 'the GraphQL subscription to be registered');
  scraping = runtime.scrape({ signal: stop.signal });
}, 60_000);

afterAll(async () => {
  stop.abort();
  await scraping?.catch(() => undefined);
  socket?.close();
  stopSubscription?.();
  await client?.dispose();
  await runtime?.close();
  await standin?.close();
});

describe('a GPU that vanishes from its scrape', () => {
  it('is inactive at once on REST, GraphQL and /ws, and active again when it is back', async () => {
    await eventually(
      async () =>
        (await activity()) ===
        JSON.stringify([
          [
            '0',
            true,
            [
              ['1', true],
              ['2', true],
            ],
          ],
          ['1', true, []],
        ]),
      'both GPUs and both instances active',
    );

    body = WITHOUT_GPU0;
    const servedFrom = Date.now();
    await eventually(async () => (await gpus())[0]?.active === false, 'GPU 0 inactive');
    const latencyMs = Date.now() - servedFrom;
    // Presence, not staleness (10 minutes): within a few intervals even on a loaded machine.
    expect(latencyMs).toBeLessThan(60_000);
    console.info(`GPU 0 inactive ${latencyMs} ms after the stand-in stopped serving it`);

    const [gone, kept] = (await gpus()) as [GpuView, GpuView];
    expect(gone.gone_since).toBeDefined();
    expect(Date.parse(gone.gone_since!)).toBeGreaterThanOrEqual(servedFrom - INTERVAL_MS);
    expect(gone.mig_instances!.map((m) => [m.instance_id, m.active, m.gone_since !== undefined])).toEqual([
      ['1', false, true],
      ['2', false, true],
    ]);
    expect([kept.gpu_id, kept.active, kept.gone_since]).toEqual(['1', true, undefined]);
    const host = await runtime.app.inject({ method: 'GET', url: `/api/v1/clusters/live/hosts/${HOST}` });
    expect(host.json()).toMatchObject({ active: true, gpu_count: 2, active_gpu_count: 1 });

    const gql = await runtime.app.inject({
      method: 'POST',
      url: '/graphql',
      payload: {
        query: `{ host(clusterId: "live", hostId: "${HOST}") {
          activeGpuCount
          gpus { index active goneSince status { active healthIssues } migInstances { id active goneSince } }
        } }`,
      },
    });
    const data = (gql.json() as { data: { host: Record<string, unknown> } }).data.host as {
      activeGpuCount: number;
      gpus: {
        index: string;
        active: boolean;
        goneSince: string | null;
        status: { active: boolean; healthIssues: string[] };
        migInstances: { id: string; active: boolean; goneSince: string | null }[];
      }[];
    };
    expect(data.activeGpuCount).toBe(1);
    expect(data.gpus.map((g) => [g.index, g.active, g.goneSince !== null, g.status.healthIssues])).toEqual([
      ['0', false, true, ['INACTIVE']],
      ['1', true, false, []],
    ]);
    expect(data.gpus[0]!.migInstances.map((m) => [m.id, m.active])).toEqual([
      ['1', false],
      ['2', false],
    ]);

    // The /ws subscriber saw GPU 0 and its instances go inactive, and nothing of GPU 1 did.
    await waitUntil(
      () => wsEvents().filter((e) => e.eventType === 'MIG_INACTIVE').length >= 2,
      'MIG_INACTIVE events',
      30_000,
    );
    const inactive = wsEvents().filter((e) => e.eventType.endsWith('_INACTIVE'));
    expect(inactive.map((e) => [e.eventType, e.hostId, e.gpuIndex]).sort()).toEqual([
      ['GPU_INACTIVE', HOST, '0'],
      ['MIG_INACTIVE', HOST, '0'],
      ['MIG_INACTIVE', HOST, '0'],
    ]);

    // So did the GraphQL subscriber, with `active: false` and which instance.
    await waitUntil(
      () => gqlEvents.filter((e) => e.eventType === 'MIG_INACTIVE').length >= 2,
      'MIG_INACTIVE over GraphQL',
      30_000,
    );
    expect(
      gqlEvents
        .filter((e) => e.eventType.endsWith('_INACTIVE'))
        .map((e) => [e.eventType, e.gpuIndex, e.migInstance, e.active])
        .sort(),
    ).toEqual([
      ['GPU_INACTIVE', '0', null, false],
      ['MIG_INACTIVE', '0', '1', false],
      ['MIG_INACTIVE', '0', '2', false],
    ]);
    // Instance values came as MIG_UPDATE, never as GPU 0's GPU_UPDATE with them.
    expect(
      gqlEvents.some((e) => e.eventType === 'MIG_UPDATE' && e.migInstance === '2' && e.active === true),
    ).toBe(true);

    // Served again: its samples (newer than the mark) make it active again.
    body = MIG_PROM;
    await eventually(
      async () =>
        (await activity()) ===
        JSON.stringify([
          [
            '0',
            true,
            [
              ['1', true],
              ['2', true],
            ],
          ],
          ['1', true, []],
        ]),
      'GPU 0 back',
    );
    expect((await gpus())[0]!.gone_since).toBeUndefined();
  }, 180_000);
});
