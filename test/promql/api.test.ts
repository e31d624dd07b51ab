/**
 * The Prometheus HTTP API through fastify inject(), on the embedded coordination store and an
 * in-memory PGlite store: every endpoint's shape and errors (bad_data on a malformed query, a bad
 * time, step <= 0, end < start, a missing match[], too many points), GET and form POST, series /
 * labels / values / metadata / buildinfo contents, /federate's text and active-GPU filter, and the
 * JSON value formatting (Go's FormatFloat 'f' -1). Query evaluation cases run once the engine
 * evaluates (they are skipped, with that reason, while src/promql/engine.ts is the placeholder).
 */
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { buildApp } from '../../src/api/app.js';
import { parseDurationParam, parseTimeParam } from '../../src/api/routes/prometheus.js';
import type { GpuRecord, Sample } from '../../src/domain/types.js';
import { gpuKey, migKey } from '../../src/hierarchy/paths.js';
import { createPipelineMetrics } from '../../src/metrics/registry.js';
import type { Coordination } from '../../src/ports/coordination.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import { formatQueryValue, formatValue } from '../../src/promql/format.js';
import { batch } from '../support/samples.js';

const NOW = Date.parse('2025-07-18T21:00:00Z');
const T0 = Date.parse('2025-07-18T20:42:30Z');
const STALE = 60_000;
const UTIL = 'DCGM_FI_DEV_GPU_UTIL';
const ENERGY = 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION';
const MODEL = 'NVIDIA H100 80GB HBM3';

let coordination: Coordination;
let store: SampleStore;
let app: FastifyInstance;

function gpuSample(host: string, gpu: number, metric: string, t: number, value: number): Sample {
  const uuid = `GPU-${host}-${gpu}`;
  return {
    clusterId: 'dgx',
    hostname: host,
    gpuId: String(gpu),
    uuid,
    device: `nvidia${gpu}`,
    modelName: MODEL,
    metric,
    container: '',
    pod: '',
    namespace: '',
    labels: {
      __name__: metric,
      gpu: String(gpu),
      UUID: uuid,
      device: `nvidia${gpu}`,
      modelName: MODEL,
      Hostname: host,
    },
    timestampMs: t,
    value,
  };
}

function gpuRecord(host: string, gpu: number, lastSeenMs: number): GpuRecord {
  return {
    clusterId: 'dgx',
    hostname: host,
    gpuId: String(gpu),
    uuid: `GPU-${host}-${gpu}`,
    device: `nvidia${gpu}`,
    modelName: MODEL,
    metrics: {},
    lastSampleMs: T0,
    lastSeenMs,
  };
}

beforeAll(async () => {
  coordination = createEmbeddedCoordination();
  // host-a's GPUs are active, host-b's GPU went stale.
  for (const r of [
    gpuRecord('host-a', 0, NOW),
    gpuRecord('host-a', 1, NOW),
    gpuRecord('host-b', 0, NOW - 10 * STALE),
  ])
    await coordination.put(gpuKey(r.clusterId, r.hostname, r.gpuId), JSON.stringify(r));
  store = await createPgliteSampleStore({ memory: true });
  await store.migrate();
  const samples: Sample[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(gpuSample('host-a', 0, UTIL, T0 + i * 15_000, 10 + i));
    samples.push(gpuSample('host-a', 1, UTIL, T0 + i * 15_000, 0.1 * i));
    samples.push(gpuSample('host-b', 0, UTIL, T0 + i * 15_000, 99));
    samples.push(gpuSample('host-a', 0, ENERGY, T0 + i * 15_000, 1e21 + i * 1e6));
  }
  await store.writeBatch(batch(samples));
  app = await buildApp(
    {
      coordination,
      store,
      logger: pino({ level: 'silent' }),
      metrics: createPipelineMetrics(),
      staleAfterMs: STALE,
      readiness: {},
      now: () => NOW,
    },
    { docs: false },
  );
});

afterAll(async () => {
  await app?.close();
  await store?.close();
});

interface PromBody {
  status: string;
  data?: unknown;
  errorType?: string;
  error?: string;
  warnings?: string[];
}

async function get(url: string): Promise<{ status: number; body: PromBody }> {
  const r = await app.inject({ method: 'GET', url });
  return { status: r.statusCode, body: r.json() as PromBody };
}

async function post(
  url: string,
  form: Record<string, string | string[]>,
): Promise<{ status: number; body: PromBody }> {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const item of [v].flat()) params.append(k, item);
  const r = await app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: params.toString(),
  });
  return { status: r.statusCode, body: r.json() as PromBody };
}

const q = (s: string): string => encodeURIComponent(s);

function expectError(
  r: { status: number; body: PromBody },
  status: number,
  type: string,
  message?: RegExp,
): void {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(r.body.status).toBe('error');
  expect(r.body.errorType).toBe(type);
  if (message) expect(r.body.error).toMatch(message);
}

describe('parameter parsing', () => {
  it('reads times as unix float seconds (ms precision) or RFC 3339', () => {
    expect(parseTimeParam('1752871354')).toBe(1_752_871_354_000);
    expect(parseTimeParam('1752871354.1234')).toBe(1_752_871_354_123);
    expect(parseTimeParam('2025-07-18T20:42:34.5678Z')).toBe(Date.parse('2025-07-18T20:42:34.567Z'));
    expect(parseTimeParam('2025-07-18T22:42:34+02:00')).toBe(Date.parse('2025-07-18T20:42:34Z'));
    for (const bad of ['', 'now', '2025-07-18', '2025-07-18 20:42:34Z', 'NaN', 'Inf']) {
      expect(parseTimeParam(bad), bad).toBeUndefined();
    }
  });

  it('reads durations as float seconds or Prometheus durations', () => {
    expect(parseDurationParam('15')).toBe(15_000);
    expect(parseDurationParam('0.5')).toBe(500);
    expect(parseDurationParam('1h30m')).toBe(5_400_000);
    expect(parseDurationParam('1d')).toBe(86_400_000);
    expect(parseDurationParam('250ms')).toBe(250);
    expect(parseDurationParam('0')).toBe(0);
    for (const bad of ['', '5 m', 'm', '1h1d', '-5m']) expect(parseDurationParam(bad), bad).toBeUndefined();
  });
});

describe('value formatting', () => {
  it("writes floats as Go's FormatFloat(v, 'f', -1, 64)", () => {
    expect(formatValue(0)).toBe('0');
    expect(formatValue(-0)).toBe('-0');
    expect(formatValue(42)).toBe('42');
    expect(formatValue(0.1 + 0.2)).toBe('0.30000000000000004');
    expect(formatValue(1e21)).toBe('1000000000000000000000');
    expect(formatValue(1.5e22)).toBe('15000000000000000000000');
    expect(formatValue(1e-7)).toBe('0.0000001');
    expect(formatValue(-1.25e-8)).toBe('-0.0000000125');
    expect(formatValue(Number.MAX_VALUE)).toMatch(/^179769313486231570{292}$/);
    expect(formatValue(NaN)).toBe('NaN');
    expect(formatValue(Infinity)).toBe('+Inf');
    expect(formatValue(-Infinity)).toBe('-Inf');
  });

  it('shapes every result type with times in seconds', () => {
    expect(formatQueryValue({ resultType: 'scalar', result: { t: 1500, v: 2 } })).toEqual({
      resultType: 'scalar',
      result: [1.5, '2'],
    });
    expect(
      formatQueryValue({
        resultType: 'vector',
        result: [{ metric: { a: 'b' }, point: { t: 1_000_001, v: NaN } }],
      }),
    ).toEqual({ resultType: 'vector', result: [{ metric: { a: 'b' }, value: [1000.001, 'NaN'] }] });
    expect(
      formatQueryValue({
        resultType: 'matrix',
        result: [
          {
            metric: {},
            points: [
              { t: 0, v: 1 },
              { t: 15_000, v: 2 },
            ],
          },
        ],
      }),
    ).toEqual({
      resultType: 'matrix',
      result: [
        {
          metric: {},
          values: [
            [0, '1'],
            [15, '2'],
          ],
        },
      ],
    });
    expect(formatQueryValue({ resultType: 'string', result: { t: 2000, v: 'x' } })).toEqual({
      resultType: 'string',
      result: [2, 'x'],
    });
  });
});

describe('/api/v1/query and /api/v1/query_range errors', () => {
  const range = `/api/v1/query_range?query=${q(UTIL)}`;

  it('bad_data (400) on a malformed or missing query', async () => {
    expectError(await get(`/api/v1/query?query=${q('sum(')}`), 400, 'bad_data', /parse error/);
    expectError(
      await get(`/api/v1/query?query=${q(`${UTIL}{gpu="0"`)}`),
      400,
      'bad_data',
      /^invalid parameter "query": .*parse error/,
    );
    expectError(await get('/api/v1/query'), 400, 'bad_data', /no expression found in input/);
    expectError(await post('/api/v1/query', { query: 'rate(' }), 400, 'bad_data', /parse error/);
  });

  it('bad_data on a bad time, start, end, step or timeout', async () => {
    expectError(
      await get(`/api/v1/query?query=${q(UTIL)}&time=yesterday`),
      400,
      'bad_data',
      /invalid parameter "time": cannot parse "yesterday" to a valid timestamp/,
    );
    expectError(await get(`${range}&end=10&step=1`), 400, 'bad_data', /invalid parameter "start"/);
    expectError(await get(`${range}&start=10&step=1`), 400, 'bad_data', /invalid parameter "end"/);
    expectError(
      await get(`${range}&start=0&end=10`),
      400,
      'bad_data',
      /invalid parameter "step": cannot parse "" to a valid duration/,
    );
    expectError(await get(`${range}&start=0&end=10&step=fast`), 400, 'bad_data', /invalid parameter "step"/);
    expectError(
      await get(`/api/v1/query?query=${q(UTIL)}&timeout=soon`),
      400,
      'bad_data',
      /invalid parameter "timeout"/,
    );
  });

  it('bad_data on step <= 0, end before start and too many points', async () => {
    const zero = 'zero or negative query resolution step widths are not accepted. Try a positive integer';
    expectError(await get(`${range}&start=0&end=10&step=0`), 400, 'bad_data', new RegExp(zero));
    expectError(await get(`${range}&start=0&end=10&step=-1`), 400, 'bad_data', new RegExp(zero));
    expectError(
      await get(`${range}&start=20&end=10&step=1`),
      400,
      'bad_data',
      /end timestamp must not be before start time/,
    );
    const tooMany = await get(`${range}&start=0&end=11001&step=1`);
    expectError(tooMany, 400, 'bad_data');
    expect(tooMany.body.error).toBe(
      'exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)',
    );
    // Exactly 11,000 steps is allowed (parameters pass; the engine answers).
    const edge = await post('/api/v1/query_range', { query: UTIL, start: '0', end: '11000', step: '1' });
    expect(edge.body.error ?? '').not.toMatch(/exceeded maximum resolution/);
  });

  it('refuses control characters but takes multi-line PromQL', async () => {
    expectError(await get(`/api/v1/query?query=${q('up\u0000')}`), 400, 'bad_data', /control characters/);
    const multi = await get(`/api/v1/query?query=${q(`sum(\n  ${UTIL}\n)`)}`);
    expect(multi.body.errorType ?? 'none').not.toBe('bad_data');
  });
});

describe('query evaluation', () => {
  it('instant vector of the newest samples, values as strings', async () => {
    const r = await get(
      `/api/v1/query?query=${q(`${UTIL}{Hostname="host-a"}`)}&time=${(T0 + 60_000) / 1000}`,
    );
    expect(r.status).toBe(200);
    const data = r.body.data as {
      resultType: string;
      result: { metric: Record<string, string>; value: [number, string] }[];
    };
    expect(data.resultType).toBe('vector');
    const byGpu = Object.fromEntries(data.result.map((s) => [s.metric.gpu, s.value]));
    expect(byGpu).toEqual({ '0': [(T0 + 60_000) / 1000, '14'], '1': [(T0 + 60_000) / 1000, '0.4'] });
    expect(data.result[0]!.metric).toMatchObject({
      __name__: UTIL,
      cluster: 'dgx',
      Hostname: 'host-a',
      modelName: MODEL,
    });
  });

  it('range query: a matrix per series, GET and POST alike', async () => {
    const form = {
      query: `${UTIL}{Hostname="host-a",gpu="0"}`,
      start: String(T0 / 1000),
      end: String((T0 + 60_000) / 1000),
      step: '15s',
    };
    const viaPost = await post('/api/v1/query_range', form);
    const viaGet = await get(`/api/v1/query_range?${new URLSearchParams(form).toString()}`);
    expect(viaPost.body).toEqual(viaGet.body);
    const data = viaGet.body.data as { resultType: string; result: { values: [number, string][] }[] };
    expect(data.resultType).toBe('matrix');
    expect(data.result[0]!.values).toEqual(
      [0, 1, 2, 3, 4].map((i) => [(T0 + i * 15_000) / 1000, String(10 + i)]),
    );
  });

  it('execution error (422) over PROMQL_MAX_SAMPLES', async () => {
    const small = await buildApp(
      {
        coordination,
        store,
        logger: pino({ level: 'silent' }),
        metrics: createPipelineMetrics(),
        staleAfterMs: STALE,
        readiness: {},
        now: () => NOW,
      },
      { docs: false, promql: { maxSamples: 3 } },
    );
    try {
      const r = await small.inject({
        method: 'GET',
        url: `/api/v1/query?query=${q(`${UTIL}[10m]`)}&time=${(T0 + 60_000) / 1000}`,
      });
      expect(r.statusCode).toBe(422);
      expect(r.json()).toMatchObject({ status: 'error', errorType: 'execution' });
    } finally {
      await small.close();
    }
  });
});

describe('/api/v1/series, /labels, /label/:name/values', () => {
  it('series: label sets of every match[] (union), sorted, with names sorted', async () => {
    const r = await get(
      `/api/v1/series?match[]=${q(`${UTIL}{gpu="0"}`)}&match[]=${q(`{__name__="${ENERGY}"}`)}`,
    );
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('success');
    const series = r.body.data as Record<string, string>[];
    expect(series.map((s) => `${s.__name__}/${s.Hostname}/${s.gpu}`)).toEqual([
      // Prometheus' label-set order: Hostname sorts first, then UUID, then __name__.
      `${UTIL}/host-a/0`,
      `${ENERGY}/host-a/0`,
      `${UTIL}/host-b/0`,
    ]);
    expect(series[0]).toEqual({
      Hostname: 'host-a',
      UUID: 'GPU-host-a-0',
      __name__: UTIL,
      cluster: 'dgx',
      device: 'nvidia0',
      gpu: '0',
      modelName: MODEL,
    });
    expect(Object.keys(series[0]!)).toEqual(Object.keys(series[0]!).sort());
  });

  it('series: the window, POST, limit with a warning', async () => {
    const late = await get(`/api/v1/series?match[]=${q(UTIL)}&start=${(T0 + 120_000) / 1000}`);
    expect(late.body.data).toEqual([]);
    const viaPost = await post('/api/v1/series', { 'match[]': [UTIL], end: String(T0 / 1000) });
    expect(viaPost.body.data).toHaveLength(3);
    const limited = await get(`/api/v1/series?match[]=${q(UTIL)}&limit=2`);
    expect(limited.body.data).toHaveLength(2);
    expect(limited.body.warnings).toEqual(['results truncated due to limit']);
  });

  it('series: bad_data without match[], with a bad selector or a bad time', async () => {
    expectError(await get('/api/v1/series'), 400, 'bad_data', /no match\[\] parameter provided/);
    expectError(await get(`/api/v1/series?match[]=${q('sum(x)')}`), 400, 'bad_data', /match\[\]/);
    expectError(
      await get(`/api/v1/series?match[]=${q('{a=""}')}`),
      400,
      'bad_data',
      /at least one non-empty matcher/,
    );
    expectError(
      await get(`/api/v1/series?match[]=${q(UTIL)}&start=x`),
      400,
      'bad_data',
      /invalid parameter "start"/,
    );
    expectError(await get(`/api/v1/series?match[]=${q(UTIL)}&limit=-1`), 400, 'bad_data', /limit/);
  });

  it('labels: every label name, sorted; narrowed by match[]', async () => {
    const r = await get('/api/v1/labels');
    expect(r.body.data).toEqual(['Hostname', 'UUID', '__name__', 'cluster', 'device', 'gpu', 'modelName']);
    const viaPost = await post('/api/v1/labels', { 'match[]': UTIL });
    expect(viaPost.body.data).toEqual(r.body.data);
  });

  it('label values: sorted, narrowed by match[]; a bad name is bad_data', async () => {
    expect((await get('/api/v1/label/__name__/values')).body.data).toEqual([UTIL, ENERGY]);
    expect((await get('/api/v1/label/Hostname/values')).body.data).toEqual(['host-a', 'host-b']);
    expect((await get(`/api/v1/label/Hostname/values?match[]=${q(ENERGY)}`)).body.data).toEqual(['host-a']);
    expect((await get('/api/v1/label/nope/values')).body.data).toEqual([]);
    expectError(await get('/api/v1/label/1bad/values'), 400, 'bad_data', /invalid label name/);
  });
});

describe('/api/v1/metadata and /api/v1/status/buildinfo', () => {
  it('metadata: type and help of each DCGM metric', async () => {
    const r = await get('/api/v1/metadata');
    const data = r.body.data as Record<string, { type: string; help: string; unit: string }[]>;
    expect(data[UTIL]).toEqual([{ type: 'gauge', help: 'GPU utilization (in %).', unit: '' }]);
    expect(data[ENERGY]![0]!.type).toBe('counter');
    const one = await get(`/api/v1/metadata?metric=${ENERGY}`);
    expect(Object.keys(one.body.data as object)).toEqual([ENERGY]);
    expect(Object.keys((await get('/api/v1/metadata?limit=2')).body.data as object)).toHaveLength(2);
  });

  it('buildinfo: a Prometheus 2.42 version for Grafana', async () => {
    const r = await get('/api/v1/status/buildinfo');
    expect(r.body).toMatchObject({ status: 'success', data: { version: '2.42.0' } });
  });

  it('stays out of the OpenAPI document (Prometheus shapes, documented in docs/promql.md)', async () => {
    const paths = Object.keys(
      (await app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: object }>().paths,
    );
    expect(
      paths.filter((p) => p.includes('query') || p.includes('federate') || p.includes('series')),
    ).toEqual([]);
  });
});

describe('/federate', () => {
  it('the newest sample of each matching series of an active GPU, text format 0.0.4', async () => {
    const r = await app.inject({ method: 'GET', url: `/federate?match[]=${q('{__name__=~"DCGM_.+"}')}` });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const t = T0 + 60_000;
    const labels = (gpu: number): string =>
      `Hostname="host-a",UUID="GPU-host-a-${gpu}",cluster="dgx",device="nvidia${gpu}",gpu="${gpu}",modelName="${MODEL}"`;
    expect(r.body).toBe(
      [
        `# TYPE ${UTIL} gauge`,
        `${UTIL}{${labels(0)}} 14 ${t}`,
        `${UTIL}{${labels(1)}} 0.4 ${t}`,
        `# TYPE ${ENERGY} counter`,
        `${ENERGY}{${labels(0)}} 1000000000000004000000 ${t}`,
        '',
      ].join('\n'),
    );
  });

  it('400 without match[] or with a bad selector; nothing for an unmatched one', async () => {
    const none = await app.inject({ method: 'GET', url: '/federate' });
    expect(none.statusCode).toBe(400);
    expect(none.body).toMatch(/match\[\]/);
    expect(
      (await app.inject({ method: 'GET', url: `/federate?match[]=${q('rate(x[5m])')}` })).statusCode,
    ).toBe(400);
    const empty = await app.inject({ method: 'GET', url: `/federate?match[]=${q('{Hostname="host-b"}')}` });
    expect(empty.statusCode).toBe(200);
    expect(empty.body).toBe('');
  });

  it('series of a MIG instance follow the instance: gone instances are left out', async () => {
    const gpu = { ...gpuRecord('host-m', 0, NOW), clusterId: 'mig' };
    await coordination.put(gpuKey('mig', 'host-m', '0'), JSON.stringify(gpu));
    const instance = (id: string, goneSinceMs?: number) => ({
      ...gpu,
      instance: id,
      profile: '1g.10gb',
      goneSinceMs,
    });
    await coordination.put(migKey('mig', 'host-m', '0', '1'), JSON.stringify(instance('1')));
    await coordination.put(migKey('mig', 'host-m', '0', '2'), JSON.stringify(instance('2', NOW - 1000)));
    const mig = (id: string, value: number): Sample => {
      const s = gpuSample('host-m', 0, UTIL, T0, value);
      return { ...s, clusterId: 'mig', labels: { ...s.labels, GPU_I_ID: id, GPU_I_PROFILE: '1g.10gb' } };
    };
    await store.writeBatch(
      batch([{ ...gpuSample('host-m', 0, UTIL, T0, 5), clusterId: 'mig' }, mig('1', 6), mig('2', 7)]),
    );
    const r = await app.inject({ method: 'GET', url: `/federate?match[]=${q('{cluster="mig"}')}` });
    const values = r.body
      .split('\n')
      .filter((l) => l.startsWith(UTIL))
      .map((l) => l.split(' ').at(-2));
    expect(values.sort()).toEqual(['5', '6']);
    expect(r.body).toContain('GPU_I_ID="1"');
    expect(r.body).not.toContain('GPU_I_ID="2"');
  });
});
