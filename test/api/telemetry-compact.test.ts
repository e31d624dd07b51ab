/**
 * The compact telemetry form (`format=compact`) on an embedded runtime listening on 127.0.0.1: for
 * the same query it holds exactly the samples of the items form (the bundled sample; 30 minutes of
 * generated data with workload labels, raw in both orders and with a limit; 1-minute rollups with
 * their aggregates), series once with times ascending, the GPU once, and it validates against its
 * response schema (every object closed). The byte sizes of both forms are printed for the notes; for
 * issue 18's case (one GPU, ten metrics, one hour at 30 s) compact must stay under a tenth of items.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { telemetryCompactResponseSchema } from '../../src/api/schemas.js';
import { telemetryCompactJson, type TelemetryCompactView } from '../../src/api/telemetry-json.js';
import type { TelemetryItemView } from '../../src/api/views.js';
import { writeDcgmCsv } from '../../src/generate/generator.js';
import { sample } from '../support/samples.js';
import { startSampleServer, type SampleServer } from '../ws/harness.js';

const work = mkdtempSync(join(tmpdir(), 'nexus-compact-'));
const GENERATED = join(work, 'generated.csv');
const MIG_CSV = join(work, 'mig.csv');
const HOUR_CSV = join(work, 'hour.csv');
const START = Date.UTC(2025, 6, 18, 20, 42, 30);
const HOUR_START = Date.UTC(2025, 6, 18, 22, 0, 0);
const SIM_GPU = '/api/v1/clusters/my-cluster/hosts/sim-dgx1-hgpu-001/gpus/0/telemetry';
const SAMPLE_GPU = '/api/v1/clusters/my-cluster/hosts/mtv5-dgx1-hgpu-031/gpus/0/telemetry';
const MIG_GPU = '/api/v1/clusters/my-cluster/hosts/mig-host/gpus/0';
const HOUR_GPU = '/api/v1/clusters/my-cluster/hosts/hour-dgx1-hgpu-001/gpus/0/telemetry';

/** A GPU with its own series and MIG instance 1's (labels_raw GPU_I_ID), in the CSV's columns. */
function migCsv(): string {
  const header =
    'timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw';
  const row = (second: number, value: number, instance?: string) => {
    const labels = instance ? `gpu=""0"",GPU_I_ID=""${instance}"",GPU_I_PROFILE=""1g.10gb""` : 'gpu=""0""';
    const time = new Date(START + second * 1000).toISOString();
    return `"${time}","DCGM_FI_DEV_FB_USED","0","nvidia0","GPU-mig-0","NVIDIA A100-SXM4-40GB","mig-host","","","","${value}","${labels}"`;
  };
  return [header, row(0, 100), row(0, 10, '1'), row(10, 11, '1'), row(20, 12, '1'), ''].join('\n');
}

let server: SampleServer;
let validator: FastifyInstance;

/** `schema` with `additionalProperties: false` on every object that does not say otherwise. */
function closed(schema: unknown): unknown {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties') {
      out[key] = Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, closed(v)]));
    } else {
      out[key] = key === 'items' || key === 'additionalProperties' ? closed(value) : value;
    }
  }
  if (out.type === 'object' && !('additionalProperties' in out)) out.additionalProperties = false;
  return out;
}

beforeAll(async () => {
  // Two GPUs, ten metrics, every 10 s for 30 minutes; half the jobs carry container/pod/namespace.
  await writeDcgmCsv(GENERATED, {
    hosts: 1,
    gpusPerHost: 2,
    intervalMs: 10_000,
    durationMs: 30 * 60_000,
    start: START,
    workloadFraction: 0.5,
    seed: 7,
  });
  // Issue 18's size case: one GPU, ten metrics, every 30 s for an hour, on a host of its own.
  await writeDcgmCsv(HOUR_CSV, {
    hosts: 1,
    gpusPerHost: 1,
    intervalMs: 30_000,
    durationMs: 60 * 60_000,
    start: HOUR_START,
    hostPrefix: 'hour-dgx1-hgpu-',
    seed: 7,
  });
  writeFileSync(MIG_CSV, migCsv());
  server = await startSampleServer();
  await server.runtime.ingest({ spec: GENERATED });
  await server.runtime.ingest({ spec: MIG_CSV });
  await server.runtime.ingest({ spec: HOUR_CSV });
  validator = Fastify({ ajv: { customOptions: { coerceTypes: false, removeAdditional: false } } });
  validator.post(
    '/validate',
    { schema: { body: closed(telemetryCompactResponseSchema) as object } },
    async () => 'ok',
  );
}, 120_000);

afterAll(async () => {
  await server?.close();
  await validator?.close();
  rmSync(work, { recursive: true, force: true });
});

interface Answer<T> {
  status: number;
  body: T;
  bytes: number;
  headers: Headers;
}

async function get<T>(path: string): Promise<Answer<T>> {
  const r = await fetch(`${server.base}${path}`);
  const text = await r.text();
  return {
    status: r.status,
    body: JSON.parse(text) as T,
    bytes: Buffer.byteLength(text),
    headers: r.headers,
  };
}

/** One sample as a comparable line: series (metric, GPU, labels as compact writes them), time, values. */
type Flat = string;

function flatItems(items: TelemetryItemView[]): Flat[] {
  return items
    .map((i) => {
      const labels: Record<string, string> = { ...i.labels };
      if (i.container !== '') labels.container = i.container;
      if (i.pod !== '') labels.pod = i.pod;
      if (i.namespace !== '') labels.namespace = i.namespace;
      const gpu = [i.cluster_id, i.hostname, i.gpu_id, i.uuid, i.device, i.model_name];
      const a = i.aggregate;
      return JSON.stringify([
        i.metric_name,
        gpu,
        sortedLabels(labels),
        Date.parse(i.timestamp),
        i.value,
        a ? [a.min, a.max, a.count, a.last] : null,
      ]);
    })
    .sort();
}

function flatCompact(c: TelemetryCompactView): Flat[] {
  const out: Flat[] = [];
  for (const s of c.series) {
    const g = s.gpu ?? c.gpu;
    const gpu = [g.cluster_id, g.hostname, g.gpu_id, g.uuid, g.device, g.model_name];
    s.t.forEach((t, k) => {
      const agg = s.min ? [s.min[k], s.max![k], s.count![k], s.last![k]] : null;
      out.push(JSON.stringify([s.metric, gpu, sortedLabels(s.labels), t, s.v[k], agg]));
    });
  }
  return out.sort();
}

const sortedLabels = (l: Record<string, string>) => Object.entries(l).sort(([a], [b]) => (a < b ? -1 : 1));

/** Both forms of `path` + `query`; checks that they hold the same samples and returns the sizes. */
async function compare(label: string, path: string, query: string, expectedSamples?: number) {
  const sep = query ? '&' : '';
  const items = await get<TelemetryItemView[]>(`${path}?${query}`);
  const compact = await get<TelemetryCompactView>(`${path}?${query}${sep}format=compact`);
  expect(items.status).toBe(200);
  expect(compact.status).toBe(200);
  if (expectedSamples !== undefined) expect(items.body).toHaveLength(expectedSamples);
  expect(flatCompact(compact.body)).toEqual(flatItems(items.body));
  expect(compact.headers.get('x-has-more')).toBe(items.headers.get('x-has-more'));
  expect(compact.headers.get('x-resolution')).toBe(items.headers.get('x-resolution'));
  expect(compact.body.resolution).toBe(items.headers.get('x-resolution'));
  for (const s of compact.body.series) {
    expect(s.v).toHaveLength(s.t.length);
    expect(s.t).toEqual([...s.t].sort((a, b) => a - b));
  }
  // Every series once.
  const keys = compact.body.series.map((s) => JSON.stringify([s.metric, sortedLabels(s.labels), s.gpu]));
  expect(new Set(keys).size).toBe(keys.length);
  const valid = await validator.inject({ method: 'POST', url: '/validate', payload: compact.body });
  expect(valid.statusCode, valid.body).toBe(200);
  const ratio = (compact.bytes / items.bytes).toFixed(3);
  console.log(
    `${label}: ${items.body.length} samples in ${compact.body.series.length} series; items ${items.bytes} B, compact ${compact.bytes} B (${ratio}x)`,
  );
  return { items: items.body, compact: compact.body, itemsBytes: items.bytes, compactBytes: compact.bytes };
}

describe('telemetry format=compact', () => {
  it('holds the same samples as the items form on the bundled sample', async () => {
    const { compact } = await compare('sample, one GPU', SAMPLE_GPU, 'limit=10000', 10);
    expect(compact.gpu).toEqual({
      cluster_id: 'my-cluster',
      hostname: 'mtv5-dgx1-hgpu-031',
      gpu_id: '0',
      uuid: 'GPU-5fd4f087-86f3-7a43-b711-4771313afc50',
      device: 'nvidia0',
      model_name: 'NVIDIA H100 80GB HBM3',
    });
    expect(compact.resolution).toBe('raw');
    expect(compact.series.map((s) => s.metric)).toEqual([...compact.series.map((s) => s.metric)].sort());
    const util = compact.series.find((s) => s.metric === 'DCGM_FI_DEV_GPU_UTIL')!;
    // The CSV's first row: GPU 0 of mtv5-dgx1-hgpu-031 at 0 % at 20:42:34Z.
    expect(util).toMatchObject({ t: [Date.parse('2025-07-18T20:42:34Z')], v: [0] });
    expect(util.labels.Hostname).toBe('mtv5-dgx1-hgpu-031');
    expect(util.gpu).toBeUndefined();
    expect(util.min).toBeUndefined();
  });

  it('holds the same raw samples as the items form, in both orders and with a limit', async () => {
    const all = await compare('raw 30 min, one GPU', SIM_GPU, 'limit=10000', 1800);
    await compare('raw, order=asc', SIM_GPU, 'limit=10000&order=asc', 1800);
    const page = await compare('raw, limit=25', SIM_GPU, 'limit=25', 25);
    // limit counts samples across series: the newest 25 of the GPU.
    const newest = Math.max(...all.compact.series.flatMap((s) => s.t));
    expect(Math.max(...page.compact.series.flatMap((s) => s.t))).toBe(newest);
    await compare(
      'raw, two metrics, a range',
      SIM_GPU,
      'metric=DCGM_FI_DEV_GPU_UTIL,DCGM_FI_DEV_POWER_USAGE&start_time=2025-07-18T20:50:00Z&end_time=2025-07-18T21:00:00Z&limit=10000',
    );
  });

  it('holds the same 1-minute rollups, with min, max, count and last beside v', async () => {
    const range = 'start_time=2025-07-18T20:42:00Z&end_time=2025-07-18T21:13:00Z&limit=10000';
    const { compact } = await compare('1m rollups', SIM_GPU, `${range}&resolution=1m`);
    expect(compact.resolution).toBe('1m');
    const buckets = compact.series.reduce((n, s) => n + s.t.length, 0);
    expect(buckets).toBeGreaterThanOrEqual(10 * 30);
    for (const s of compact.series) {
      expect([s.min, s.max, s.count, s.last].map((a) => a?.length)).toEqual(Array(4).fill(s.t.length));
      s.t.forEach((t, k) => {
        expect(t % 60_000).toBe(0);
        // v is the average (sum / count, rounded): within min..max up to that rounding.
        const slack = 1e-9 * Math.abs(s.v[k]!);
        expect(s.min![k]!).toBeLessThanOrEqual(s.v[k]! + slack);
        expect(s.max![k]!).toBeGreaterThanOrEqual(s.v[k]! - slack);
      });
    }
    // Every raw sample is counted in one bucket.
    expect(compact.series.reduce((n, s) => n + s.count!.reduce((a, b) => a + b, 0), 0)).toBe(1800);
  });

  it('answers one GPU, ten metrics, one hour at 30 s in under a tenth of the items bytes', async () => {
    const range = 'start_time=2025-07-18T22:00:00Z&end_time=2025-07-18T22:59:59Z&limit=10000';
    const raw = await compare('1 h at 30 s, raw', HOUR_GPU, `${range}&resolution=raw`, 1200);
    const rollup = await compare('1 h at 30 s, 1m', HOUR_GPU, `${range}&resolution=1m`, 600);
    for (const { compact, compactBytes, itemsBytes } of [raw, rollup]) {
      expect(compact.series).toHaveLength(10);
      expect(compactBytes * 10).toBeLessThan(itemsBytes);
    }
    expect(rollup.compact.series.every((s) => s.count!.every((c) => c === 2))).toBe(true);
  });

  it('answers a window within its limit (read as whole series) with the body of a page cut in time order', async () => {
    // A window with both ends and at most `limit` samples is read as whole series (selectSeries);
    // without an end, or over the limit, the page is cut in time order (querySamples).
    const text = async (path: string) => {
      const r = await fetch(`${server.base}${path}`);
      expect(r.status).toBe(200);
      return { body: await r.text(), hasMore: r.headers.get('x-has-more') };
    };
    const window = 'start_time=2025-07-18T20:00:00Z&end_time=2025-07-18T22:00:00Z';
    for (const [path, query, n] of [
      [SIM_GPU, '', 1800],
      [SIM_GPU, 'metric=DCGM_FI_DEV_GPU_UTIL,DCGM_FI_DEV_POWER_USAGE&', 360],
      [`${MIG_GPU}/mig/1/telemetry`, '', 3],
      [`${MIG_GPU}/telemetry`, '', 1],
    ] as const) {
      const whole = await text(`${path}?${query}${window}&limit=${n}&format=compact`);
      const cut = await text(`${path}?${query}start_time=2025-07-18T20:00:00Z&limit=${n}&format=compact`);
      expect(whole.body).toBe(cut.body);
      expect(whole.hasMore).toBe('false');
      expect(cut.hasMore).toBe('false');
      const points = (JSON.parse(whole.body) as TelemetryCompactView).series.reduce(
        (k, s) => k + s.t.length,
        0,
      );
      expect(points).toBe(n);
    }
    // One sample over the limit: the newest 1,799 in time order, and more to come.
    await compare('raw window, one over the limit', SIM_GPU, `${window}&limit=1799`, 1799);
    const cutOver = await text(`${SIM_GPU}?${window}&limit=1799&format=compact`);
    expect(cutOver.hasMore).toBe('true');
  });

  it('is served by the UUID route too, with the same body', async () => {
    const byHost = await get<TelemetryCompactView>(`${SAMPLE_GPU}?format=compact`);
    const uuid = byHost.body.gpu.uuid;
    const byUuid = await get<TelemetryCompactView>(`/api/v1/gpus/${uuid}/telemetry?format=compact`);
    expect(byUuid.status).toBe(200);
    expect(byUuid.body).toEqual(byHost.body);
  });

  it('serves a MIG instance its own series only, in the compact form too', async () => {
    const { compact } = await compare('MIG instance', `${MIG_GPU}/mig/1/telemetry`, '', 3);
    expect(compact.gpu).toMatchObject({ hostname: 'mig-host', gpu_id: '0', uuid: 'GPU-mig-0' });
    expect(compact.series).toHaveLength(1);
    expect(compact.series[0]).toMatchObject({ metric: 'DCGM_FI_DEV_FB_USED', v: [10, 11, 12] });
    expect(compact.series[0]!.labels.GPU_I_ID).toBe('1');
    const own = await compare('MIG GPU itself', `${MIG_GPU}/telemetry`, '', 1);
    expect(own.compact.series[0]!.v).toEqual([100]);
  });

  it('gives a series its own gpu when its samples name another GPU than the answer (a device renamed)', () => {
    const gpu = { clusterId: 'c1', hostname: 'host-a', gpuId: '0', uuid: 'GPU-aaaa-0' };
    const record = { ...gpu, device: 'nvidia0', modelName: 'NVIDIA H100 80GB HBM3' };
    const at = (s: number) => Date.parse('2025-07-18T20:42:34Z') + s * 1000;
    const body = JSON.parse(
      telemetryCompactJson(
        [
          sample({ timestampMs: at(2), value: 3, device: 'nvidia7' }),
          sample({ timestampMs: at(1), value: 2, pod: 'p', labels: { gpu: '0', pod: 'p' } }),
          sample({ timestampMs: at(0), value: 1 }),
        ],
        record,
        'raw',
      ),
    ) as TelemetryCompactView;
    expect(body.gpu.device).toBe('nvidia0');
    // By metric, then labels (as JSON text), then GPU.
    expect(body.series).toEqual([
      { metric: 'DCGM_FI_DEV_GPU_UTIL', labels: { gpu: '0', pod: 'p' }, t: [at(1)], v: [2] },
      { metric: 'DCGM_FI_DEV_GPU_UTIL', labels: { gpu: '0' }, t: [at(0)], v: [1] },
      {
        metric: 'DCGM_FI_DEV_GPU_UTIL',
        labels: { gpu: '0' },
        gpu: { ...body.gpu, device: 'nvidia7' },
        t: [at(2)],
        v: [3],
      },
    ]);
  });

  it('refuses an unknown format with 400 BAD_REQUEST naming the parameter', async () => {
    const r = await get<{ error: { code: string; parameter?: string } }>(`${SIM_GPU}?format=csv`);
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('BAD_REQUEST');
    expect(r.body.error.parameter).toBe('format');
  });
});
