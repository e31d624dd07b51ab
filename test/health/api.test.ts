// GPU health on every interface, from generated faults written through the collector's hierarchy
// writer: the `health` object on REST GPU JSON, GET .../gpus/{g}/health and the fleet list
// GET /api/v1/health/gpus?state=..., GraphQL's GPU.health (and status.healthIssues from the same
// model), GPU_HEALTH events on /ws (a real WebSocket on 127.0.0.1) and nexus_gpu_health series on
// /federate.
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { apiOptionsFromConfig, buildApp } from '../../src/api/app.js';
import { loadConfig } from '../../src/config/config.js';
import { parseFaults } from '../../src/generate/faults.js';
import { createPipelineMetrics } from '../../src/metrics/registry.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import { createLogger } from '../../src/util/logger.js';
import { CLUSTER, generatedScrapes, HealthRig, START, STALE_AFTER } from './support.js';

const HOST = 'sim-dgx1-hgpu-001';
const iso = (ms: number): string => new Date(ms).toISOString();

let rig: HealthRig;
let store: SampleStore;
let app: FastifyInstance;
let ws: WebSocket;
const events: Record<string, unknown>[] = [];

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  rig = new HealthRig();
  store = await createPgliteSampleStore({ memory: true });
  await store.migrate();
  const config = loadConfig({}, { CLUSTER_ID: CLUSTER, LOG_LEVEL: 'silent' });
  app = await buildApp(
    {
      coordination: rig.coordination,
      store,
      logger: createLogger('silent'),
      metrics: createPipelineMetrics(),
      staleAfterMs: STALE_AFTER,
      readiness: {},
      now: () => rig.clock,
    },
    apiOptionsFromConfig(config, 'embedded'),
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  ws = new WebSocket(`ws://127.0.0.1:${port}/ws?eventTypes=GPU_HEALTH`);
  const messages: Record<string, unknown>[] = [];
  ws.on('message', (data) => {
    const message = JSON.parse(String(data)) as Record<string, unknown>;
    messages.push(message);
    if (message.type === 'event') events.push(message.event as Record<string, unknown>);
  });
  await until('the subscription', () => messages.some((m) => m.type === 'subscribed'));
  // GPU 0: XID 79 at 10 s; GPU 1: software thermal slowdown 10 s..30 s; GPU 2: nothing.
  const faults = parseFaults('xid:1/0@10s-20s:code=79;thermal-throttle:1/1@10s-30s');
  for (const [t, samples] of await generatedScrapes({ hosts: 1, gpusPerHost: 3, durationMs: 40_000, faults }))
    await rig.write(t, samples);
}, 60_000);

afterAll(async () => {
  ws?.close();
  await app?.close();
  await store?.close();
  await rig?.close();
});

describe('REST', () => {
  it('GPU JSON carries a health object', async () => {
    const r = await app.inject({ method: 'GET', url: `/api/v1/clusters/${CLUSTER}/hosts/${HOST}/gpus/0` });
    expect(r.statusCode).toBe(200);
    expect(r.json().health).toEqual({
      state: 'critical',
      since: iso(START + 10_000),
      reasons: [
        {
          code: 'XID_ERROR',
          severity: 'critical',
          message: expect.stringMatching(/^XID 79: GPU has fallen off the bus/),
          since: iso(START + 10_000),
          field: 'DCGM_FI_DEV_XID_ERRORS',
          value: 79,
        },
      ],
    });
  });

  it('GET .../gpus/{g}/health gives identity and health, by index or UUID; 404 for an unknown GPU', async () => {
    const url = `/api/v1/clusters/${CLUSTER}/hosts/${HOST}/gpus`;
    const one = await app.inject({ method: 'GET', url: `${url}/1/health` });
    expect(one.statusCode).toBe(200);
    const body = one.json();
    expect(body).toEqual({
      cluster_id: CLUSTER,
      hostname: HOST,
      gpu_id: '1',
      uuid: expect.stringMatching(/^GPU-/),
      model_name: 'NVIDIA H100 80GB HBM3',
      last_sample: iso(START + 30_000),
      health: { state: 'ok', since: iso(START + 30_000), reasons: [] },
    });
    const byUuid = await app.inject({ method: 'GET', url: `${url}/${body.uuid as string}/health` });
    expect(byUuid.json()).toEqual(body);
    expect((await app.inject({ method: 'GET', url: `${url}/9/health` })).statusCode).toBe(404);
    expect(
      (await app.inject({ method: 'GET', url: `/api/v1/clusters/${CLUSTER}/hosts/nope/gpus/0/health` }))
        .statusCode,
    ).toBe(404);
  });

  it('GET /api/v1/health/gpus lists the fleet by state, most severe first; a bad state is 400', async () => {
    const list = async (q: string) =>
      (await app.inject({ method: 'GET', url: `/api/v1/health/gpus${q}` })).json() as {
        gpu_id: string;
        health: { state: string };
      }[];
    expect((await list('?state=warning,critical')).map((g) => [g.gpu_id, g.health.state])).toEqual([
      ['0', 'critical'],
    ]);
    expect((await list('')).map((g) => [g.gpu_id, g.health.state])).toEqual([
      ['0', 'critical'],
      ['1', 'ok'],
      ['2', 'ok'],
    ]);
    expect((await list(`?state=ok&cluster=${CLUSTER}`)).map((g) => g.gpu_id)).toEqual(['1', '2']);
    expect(await list('?cluster=other')).toEqual([]);
    const bad = await app.inject({ method: 'GET', url: '/api/v1/health/gpus?state=sick' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('BAD_REQUEST');
  });

  it('time moving on without samples makes every GPU STALE (judged by sample time)', async () => {
    const saved = rig.clock;
    rig.clock = START + 30_000 + STALE_AFTER + 1;
    try {
      const all = (await app.inject({ method: 'GET', url: '/api/v1/health/gpus?state=warning' })).json() as {
        gpu_id: string;
        health: { reasons: { code: string }[] };
      }[];
      expect(all.map((g) => [g.gpu_id, g.health.reasons.map((r) => r.code)])).toEqual([
        ['1', ['STALE']],
        ['2', ['STALE']],
      ]);
    } finally {
      rig.clock = saved;
    }
  });
});

describe('GraphQL', () => {
  it('GPU.health has state, since and reasons; status.healthIssues answers from the same model', async () => {
    const r = await app.inject({
      method: 'POST',
      url: '/graphql',
      payload: {
        query: `{ host(clusterId: "${CLUSTER}", hostId: "${HOST}") { gpus { index
          health { state since reasons { code severity message since field value } }
          status { healthy healthIssues } } } }`,
      },
    });
    const gpus = (r.json() as { data: { host: { gpus: Record<string, unknown>[] } } }).data.host.gpus;
    expect(gpus[0]).toEqual({
      index: '0',
      health: {
        state: 'CRITICAL',
        since: iso(START + 10_000),
        reasons: [
          {
            code: 'XID_ERROR',
            severity: 'CRITICAL',
            message: expect.stringMatching(/^XID 79/),
            since: iso(START + 10_000),
            field: 'DCGM_FI_DEV_XID_ERRORS',
            value: 79,
          },
        ],
      },
      status: { healthy: false, healthIssues: ['XID_ERROR'] },
    });
    expect(gpus.slice(1).map((g) => [g.index, (g.health as { state: string }).state, g.status])).toEqual([
      ['1', 'OK', { healthy: true, healthIssues: [] }],
      ['2', 'OK', { healthy: true, healthIssues: [] }],
    ]);
  });
});

describe('/ws', () => {
  it('sends a GPU_HEALTH event for each write that changed a GPU health, with the health', async () => {
    await until('three GPU_HEALTH events', () => events.length >= 3);
    await new Promise((r) => setTimeout(r, 200));
    const seen = events
      .map((e) => {
        const h = e.health as { state: string; reasons: { code: string }[] };
        return [e.eventType, e.timestamp, e.gpuIndex, h.state, h.reasons.map((r) => r.code)];
      })
      .sort((a, b) => String(a[1]).localeCompare(String(b[1])) || String(a[2]).localeCompare(String(b[2])));
    expect(seen).toEqual([
      ['GPU_HEALTH', iso(START + 10_000), '0', 'critical', ['XID_ERROR']],
      ['GPU_HEALTH', iso(START + 10_000), '1', 'warning', ['THROTTLE_SW_THERMAL']],
      ['GPU_HEALTH', iso(START + 30_000), '1', 'ok', []],
    ]);
    expect(events[0]).toMatchObject({ clusterId: CLUSTER, hostId: HOST, data: expect.any(Object) });
  });
});

describe('/federate', () => {
  it('serves nexus_gpu_health (0 ok, 1 warning, 2 critical) and one nexus_gpu_health_reason per reason', async () => {
    const r = await app.inject({
      method: 'GET',
      url: `/federate?match[]=${encodeURIComponent('{__name__=~"nexus_gpu_health.*"}')}`,
    });
    expect(r.statusCode).toBe(200);
    const lines = r.body.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('#'))).toEqual([
      '# TYPE nexus_gpu_health gauge',
      '# TYPE nexus_gpu_health_reason gauge',
    ]);
    const series = lines
      .filter((l) => !l.startsWith('#'))
      .map((l) => {
        const [, name, labels, value] = /^(\w+)\{(.*)\} (\S+) \d+$/.exec(l)!;
        const get = (k: string) => new RegExp(`(?:^|,)${k}="([^"]*)"`).exec(labels!)?.[1];
        return [name, get('gpu'), get('state') ?? get('code'), Number(value)];
      })
      // Prometheus orders series by label text (UUID first): sort by name and GPU here.
      .sort((a, b) => `${a[0]} ${a[1]}`.localeCompare(`${b[0]} ${b[1]}`));
    expect(series).toEqual([
      ['nexus_gpu_health', '0', 'critical', 2],
      ['nexus_gpu_health', '1', 'ok', 0],
      ['nexus_gpu_health', '2', 'ok', 0],
      ['nexus_gpu_health_reason', '0', 'XID_ERROR', 1],
    ]);
    expect(lines.find((l) => l.includes('state="critical"'))).toMatch(
      new RegExp(
        `^nexus_gpu_health\\{Hostname="${HOST}",UUID="GPU-[^"]+",cluster="${CLUSTER}",device="nvidia0",gpu="0",modelName="NVIDIA H100 80GB HBM3",state="critical"\\} 2 \\d+$`,
      ),
    );
    const only = await app.inject({
      method: 'GET',
      url: `/federate?match[]=${encodeURIComponent('nexus_gpu_health{state="critical"}')}`,
    });
    expect(only.body.trim().split('\n')).toHaveLength(2);
  });
});
