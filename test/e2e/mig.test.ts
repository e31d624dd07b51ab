/**
 * MIG end to end: an embedded runtime scrapes a dcgm-exporter stand-in serving the MIG fixture (GPU 0
 * of an A100 split into two GPU instances, 1g.10gb and 2g.20gb, every series labelled GPU_I_ID /
 * GPU_I_PROFILE; GPU 1 whole). The API shows two instance entities under GPU 0, each with its own
 * values and series, and GPU 0 itself without them: over REST (GPU, instance and telemetry routes)
 * and GraphQL (GPU.migInstances, MigInstance.telemetry).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { startStandin, type Standin } from '../support/dcgm-exporter-standin.js';

const MIG_PROM = readFileSync(new URL('../fixtures/dcgm-exporter/mig.prom', import.meta.url), 'utf8');
const HOST = 'dgx-a100-mig-01';
const MIG_UUID = 'GPU-4f1c7b2e-9a3d-5e60-b8c1-2d7e9f0a6b13';
const GPU = `/api/v1/clusters/live/hosts/${HOST}/gpus`;

let runtime: EmbeddedRuntime;
let standin: Standin;

async function get<T>(url: string): Promise<T> {
  const response = await runtime.app.inject({ method: 'GET', url });
  expect(response.statusCode, `${url}: ${response.body}`).toBe(200);
  return response.json() as T;
}

async function graphql<T>(query: string): Promise<T> {
  const response = await runtime.app.inject({ method: 'POST', url: '/graphql', payload: { query } });
  const body = response.json() as { data?: T; errors?: unknown };
  expect(body.errors, response.body).toBeUndefined();
  return body.data!;
}

interface Metric {
  value: number;
  timestamp: string;
}
interface MigView {
  instance_id: string;
  profile: string;
  gpu_id: string;
  uuid: string;
  active: boolean;
  metrics: Record<string, Metric>;
}
interface GpuView {
  gpu_id: string;
  uuid: string;
  active: boolean;
  metrics: Record<string, Metric>;
  mig_instances?: MigView[];
}
interface Item {
  metric_name: string;
  value: number;
  gpu_id: string;
  labels: Record<string, string>;
}

const values = (m: Record<string, Metric>): Record<string, number> =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.value]));

beforeAll(async () => {
  standin = await startStandin({ body: MIG_PROM });
  const config = loadConfig(
    {},
    {
      MEMORY: true,
      CLUSTER_ID: 'live',
      LOG_LEVEL: 'silent',
      SCRAPE_TARGETS: standin.url,
      SCRAPE_INTERVAL: '10s',
      SCRAPE_TIMEOUT: '5s',
    },
  );
  runtime = await startEmbedded({ config, logger: createLogger('silent'), listen: false });
  const summary = await runtime.scrape({ rounds: 1 });
  expect(summary.rows).toBe(19);
  expect(summary.refusedByStore).toBe(0);
}, 60_000);

afterAll(async () => {
  await runtime?.close();
  await standin?.close();
});

describe('a MIG GPU scraped from dcgm-exporter', () => {
  it('lists two GPUs, the MIG one with its two instances and their own values, never in its own', async () => {
    const gpus = await get<GpuView[]>(GPU);
    expect(gpus.map((g) => g.gpu_id)).toEqual(['0', '1']);
    const [mig, whole] = gpus as [GpuView, GpuView];
    expect(mig.uuid).toBe(MIG_UUID);
    expect(mig.active).toBe(true);
    // Every series of GPU 0 belongs to an instance: the GPU holds no value of them.
    expect(mig.metrics).toEqual({});
    expect(mig.mig_instances!.map((m) => [m.instance_id, m.profile, m.gpu_id, m.uuid, m.active])).toEqual([
      ['1', '1g.10gb', '0', MIG_UUID, true],
      ['2', '2g.20gb', '0', MIG_UUID, true],
    ]);
    expect(values(mig.mig_instances![0]!.metrics)).toEqual({
      DCGM_FI_DEV_FB_FREE: 5592,
      DCGM_FI_DEV_FB_USED: 4321,
      DCGM_FI_DEV_GPU_TEMP: 38,
      DCGM_FI_DEV_POWER_USAGE: 72.512,
      DCGM_FI_DEV_SM_CLOCK: 1410,
      DCGM_FI_PROF_GR_ENGINE_ACTIVE: 0.125,
    });
    expect(values(mig.mig_instances![1]!.metrics)).toMatchObject({
      DCGM_FI_DEV_FB_USED: 5432,
      DCGM_FI_PROF_GR_ENGINE_ACTIVE: 0.5,
    });
    expect(whole.mig_instances).toBeUndefined();
    expect(values(whole.metrics)).toEqual({
      DCGM_FI_DEV_FB_FREE: 21433,
      DCGM_FI_DEV_FB_USED: 60000,
      DCGM_FI_DEV_GPU_TEMP: 55,
      DCGM_FI_DEV_GPU_UTIL: 87,
      DCGM_FI_DEV_POWER_USAGE: 251.337,
      DCGM_FI_DEV_SM_CLOCK: 1410,
      DCGM_FI_PROF_GR_ENGINE_ACTIVE: 0.871,
    });
    // Instances are not GPUs.
    const cluster = await get<{ metadata: Record<string, number> }>('/api/v1/clusters/live');
    expect(cluster.metadata).toMatchObject({ total_hosts: 1, total_gpus: 2, active_gpus: 2 });
  });

  it('serves each instance and its own telemetry; the GPU telemetry holds none of it', async () => {
    const list = await get<MigView[]>(`${GPU}/0/mig`);
    expect(list.map((m) => m.instance_id)).toEqual(['1', '2']);
    const two = await get<MigView>(`${GPU}/${MIG_UUID}/mig/2`);
    expect([two.profile, two.metrics.DCGM_FI_DEV_FB_USED?.value]).toEqual(['2g.20gb', 5432]);

    const one = await get<Item[]>(`${GPU}/0/mig/1/telemetry?limit=100`);
    expect(one).toHaveLength(6);
    expect(new Set(one.map((s) => s.labels.GPU_I_ID))).toEqual(new Set(['1']));
    expect(one.find((s) => s.metric_name === 'DCGM_FI_DEV_FB_USED')?.value).toBe(4321);
    const second = await get<Item[]>(`${GPU}/0/mig/2/telemetry?metric=DCGM_FI_DEV_FB_USED`);
    expect(second.map((s) => [s.labels.GPU_I_PROFILE, s.value])).toEqual([['2g.20gb', 5432]]);

    expect(await get<Item[]>(`${GPU}/0/telemetry?limit=100`)).toEqual([]);
    expect(await get<Item[]>(`/api/v1/gpus/${MIG_UUID}/telemetry?limit=100`)).toEqual([]);
    const whole = await get<Item[]>(`${GPU}/1/telemetry?limit=100`);
    expect(whole).toHaveLength(7);
    expect(whole.every((s) => s.labels.GPU_I_ID === undefined)).toBe(true);

    const missing = await runtime.app.inject({ method: 'GET', url: `${GPU}/0/mig/9` });
    expect([missing.statusCode, (missing.json() as { error: { code: string } }).error.code]).toEqual([
      404,
      'NOT_FOUND',
    ]);
    const missingSeries = await runtime.app.inject({ method: 'GET', url: `${GPU}/1/mig/1/telemetry` });
    expect(missingSeries.statusCode).toBe(404);
  });

  it('shows the instances under the GPU over GraphQL, with their own telemetry', async () => {
    const data = await graphql<{
      host: {
        gpus: {
          index: string;
          metrics: { field: string }[];
          telemetry: { samples: unknown[] };
          migInstances: {
            id: string;
            profile: string;
            gpuId: string;
            active: boolean;
            metrics: { field: string; value: number }[];
            telemetry: {
              samples: { metric: string; value: number; labels: { name: string; value: string }[] }[];
            };
          }[];
        }[];
      };
    }>(`{
      host(clusterId: "live", hostId: "${HOST}") {
        gpus {
          index
          metrics { field }
          telemetry(limit: 100) { samples { metric } }
          migInstances {
            id profile gpuId active
            metrics { field value }
            telemetry(metrics: ["DCGM_FI_DEV_FB_USED"]) { samples { metric value labels { name value } } }
          }
        }
      }
    }`);
    const [mig, whole] = data.host.gpus;
    expect(mig!.index).toBe('0');
    expect(mig!.metrics).toEqual([]);
    expect(mig!.telemetry.samples).toEqual([]);
    expect(mig!.migInstances.map((m) => [m.id, m.profile, m.gpuId, m.active])).toEqual([
      ['1', '1g.10gb', MIG_UUID, true],
      ['2', '2g.20gb', MIG_UUID, true],
    ]);
    expect(
      mig!.migInstances.map((m) => m.metrics.find((v) => v.field === 'DCGM_FI_DEV_FB_USED')?.value),
    ).toEqual([4321, 5432]);
    expect(mig!.migInstances.map((m) => m.telemetry.samples.map((s) => s.value))).toEqual([[4321], [5432]]);
    const label = (s: { labels: { name: string; value: string }[] }) =>
      s.labels.find((l) => l.name === 'GPU_I_ID')?.value;
    expect(mig!.migInstances.map((m) => label(m.telemetry.samples[0]!))).toEqual(['1', '2']);
    expect(whole!.migInstances).toEqual([]);
    expect(whole!.telemetry.samples).toHaveLength(7);
  });
});
