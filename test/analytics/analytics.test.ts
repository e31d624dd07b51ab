// Workload attribution, idle-but-allocated GPUs and peer outliers over generated data: the expected
// answers are computed here from the generator's own plan (which job held which GPU when, at what
// utilization and power), never by the code under test, and compared with the REST answers, raw and
// from rollups, for ranges that cut jobs in half.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PlannedJob, WorkloadPlan } from '../../src/generate/workloads.js';
import { analyticsFleet, METRICS, type AnalyticsFleet } from './fleet.js';

const START = Date.parse('2026-03-02T00:00:00Z');
const MIN = 60_000;
const SCRAPES = 8 * 60; // 8 hours at one scrape a minute
const GEN = {
  hosts: 3,
  gpusPerHost: 8,
  intervalMs: MIN,
  durationMs: SCRAPES * MIN,
  start: START,
  seed: 7,
  workloadFraction: 0.85,
  metrics: METRICS,
};
const DRIFT = { hostname: 'sim-dgx1-hgpu-002', gpuId: '1', fromScrape: 200, toScrape: 260, degrees: 22 };

let fleet: AnalyticsFleet;

beforeAll(async () => {
  fleet = await analyticsFleet(GEN, DRIFT);
}, 300_000);

afterAll(async () => {
  await fleet?.close();
});

/** Every scrape at which a job held a GPU: slot, absolute scrape, utilization and power from the plan. */
function* held(
  plan: WorkloadPlan,
): Generator<{ job: PlannedJob; slot: number; scrape: number; util: number; power: number }> {
  for (const job of plan.jobs) {
    if (!job.attributed) continue;
    for (const p of job.placements)
      for (const slot of p.slots)
        for (let s = p.fromScrape; s < p.toScrape; s++) {
          const t = p.runOffset + (s - p.fromScrape);
          const phase =
            job.phases.find((ph) => t >= ph.from && t < ph.to) ?? job.phases[job.phases.length - 1]!;
          yield { job, slot, scrape: s, util: phase.util, power: phase.powerW };
        }
  }
}

interface Expected {
  allocated: number;
  busy: number;
  kwh: number;
  gpus: Set<number>;
}

function expectedAttribution(
  plan: WorkloadPlan,
  startMs: number,
  endMs: number,
  key: (j: PlannedJob) => string,
) {
  const out = new Map<string, Expected>();
  for (const h of held(plan)) {
    const ts = plan.startMs + h.scrape * plan.intervalMs;
    if (ts < startMs || ts >= endMs) continue;
    const k = key(h.job);
    const e = out.get(k) ?? { allocated: 0, busy: 0, kwh: 0, gpus: new Set<number>() };
    e.allocated += plan.intervalMs / 3.6e6;
    e.busy += (h.util / 100) * (plan.intervalMs / 3.6e6);
    e.kwh += (h.power * plan.intervalMs) / 3.6e9;
    e.gpus.add(h.slot);
    out.set(k, e);
  }
  return out;
}

interface Row {
  key: string;
  gpus: number;
  gpu_hours_allocated: number;
  gpu_hours_busy: number;
  energy_kwh: number;
  allocated_cost: number;
  waste_fraction: number;
}

async function get<T>(
  url: string,
  accept = 'application/json',
): Promise<{ status: number; body: T; text: string; type: string }> {
  const r = await fleet.app.inject({ method: 'GET', url, headers: { accept } });
  return {
    status: r.statusCode,
    body: r.headers['content-type']?.toString().startsWith('application/json')
      ? (r.json() as T)
      : (undefined as T),
    text: r.body,
    type: String(r.headers['content-type']),
  };
}

// Not aligned on minutes or hours: the ends cut running jobs, and the rollup path mixes raw edges,
// 1-minute stretches and whole hours.
const RANGES: [number, number][] = [
  [START + 97 * MIN + 13_000, START + 6 * 60 * MIN + 41 * MIN + 7_000],
  [START + 30 * MIN, START + 3 * 60 * MIN + 5 * MIN],
  [START, START + SCRAPES * MIN],
];

const BY: [string, (j: PlannedJob) => string][] = [
  ['namespace', (j) => j.namespace],
  ['pod', (j) => `${j.namespace}/${j.pod}`],
  ['label:team', (j) => j.labels.team ?? ''],
];

describe('attribution equals the plan', () => {
  for (const [start, end] of RANGES)
    for (const [by, key] of BY)
      for (const resolution of ['raw', 'rollup'])
        it(`${by}, ${resolution}, ${new Date(start).toISOString()} .. ${new Date(end).toISOString()}`, async () => {
          const expected = expectedAttribution(fleet.plan, start, end, key);
          const r = await get<{ rows: Row[]; resolution: string }>(
            `/api/v1/analytics/attribution?by=${by}&resolution=${resolution}&start=${new Date(start).toISOString()}&end=${new Date(end).toISOString()}`,
          );
          expect(r.status).toBe(200);
          expect(r.body.resolution).toBe(resolution);
          expect(r.body.rows.map((x) => x.key).sort()).toEqual([...expected.keys()].sort());
          expect(expected.size).toBeGreaterThan(2);
          for (const row of r.body.rows) {
            const e = expected.get(row.key)!;
            expect(row.gpu_hours_allocated).toBeCloseTo(e.allocated, 9);
            expect(row.gpu_hours_busy).toBeCloseTo(e.busy, 9);
            expect(row.energy_kwh).toBeCloseTo(e.kwh, 9);
            expect(row.gpus).toBe(e.gpus.size);
            // H100 at 2.5 per GPU-hour (ANALYTICS_PRICES of the fleet).
            expect(row.allocated_cost).toBeCloseTo(e.allocated * 2.5, 9);
            expect(row.waste_fraction).toBeCloseTo(1 - e.busy / e.allocated, 9);
          }
        });

  it('the plan has jobs that move between GPUs and jobs on two GPUs, and both ends of a range cut jobs', () => {
    const attributed = fleet.plan.jobs.filter((j) => j.attributed);
    expect(attributed.filter((j) => j.placements.length > 1).length).toBeGreaterThan(0);
    expect(attributed.filter((j) => j.placements.some((p) => p.slots.length === 2)).length).toBeGreaterThan(
      0,
    );
    const [start, end] = RANGES[0]!;
    const cut = (ms: number) =>
      attributed.some((j) =>
        j.placements.some((p) => START + p.fromScrape * MIN < ms && START + p.toScrape * MIN > ms),
      );
    expect(cut(start) && cut(end)).toBe(true);
  });

  it('answers CSV with Accept: text/csv, the same rows', async () => {
    const url = `/api/v1/analytics/attribution?by=namespace&start=${new Date(START).toISOString()}&end=${new Date(START + SCRAPES * MIN).toISOString()}`;
    const json = await get<{ rows: Row[] }>(url);
    const csv = await get<undefined>(url, 'text/csv');
    expect(csv.status).toBe(200);
    expect(csv.type).toMatch(/^text\/csv/);
    const lines = csv.text.trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'key,gpus,gpu_hours_allocated,gpu_hours_busy,energy_kwh,avg_utilization,peak_utilization,avg_memory_used_mib,peak_memory_used_mib,allocated_cost,effective_cost,waste_fraction',
    );
    expect(lines.length).toBe(json.body.rows.length + 1);
    expect(lines[1]!.split(',')[0]).toBe(json.body.rows[0]!.key);
    expect(Number(lines[1]!.split(',')[2])).toBe(json.body.rows[0]!.gpu_hours_allocated);
  });

  it('refuses a bad group', async () => {
    const r = await get<{ error: { code: string; parameter?: string } }>(
      '/api/v1/analytics/attribution?by=label:a-b',
    );
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'BAD_REQUEST', parameter: 'by' });
  });
});

/** Idle stretches from the plan: runs of consecutive util-0 scrapes of one job on one GPU, clipped to the range. */
function expectedIdle(plan: WorkloadPlan, startMs: number, endMs: number, minMs: number) {
  const out: string[] = [];
  for (const job of plan.jobs) {
    if (!job.attributed) continue;
    for (const p of job.placements)
      for (const slot of p.slots) {
        let run: number[] = [];
        const close = () => {
          if (run.length * plan.intervalMs >= minMs) {
            const host = `sim-dgx1-hgpu-${String(Math.floor(slot / plan.gpusPerHost) + 1).padStart(3, '0')}`;
            const first = plan.startMs + run[0]! * plan.intervalMs;
            out.push(
              `${job.namespace}/${job.pod} ${host}/${slot % plan.gpusPerHost} ${new Date(first).toISOString()} ${run.length * 60}s`,
            );
          }
          run = [];
        };
        for (let s = p.fromScrape; s < p.toScrape; s++) {
          const ts = plan.startMs + s * plan.intervalMs;
          const t = p.runOffset + (s - p.fromScrape);
          const phase =
            job.phases.find((ph) => t >= ph.from && t < ph.to) ?? job.phases[job.phases.length - 1]!;
          if (ts >= startMs && ts < endMs && phase.util < 5) run.push(s);
          else close();
        }
        close();
      }
  }
  return out.sort();
}

describe('idle-but-allocated equals the plan', () => {
  for (const [start, end] of RANGES)
    for (const resolution of ['raw', 'rollup'])
      it(`${resolution}, ${new Date(start).toISOString()} .. ${new Date(end).toISOString()}`, async () => {
        const expected = expectedIdle(fleet.plan, start, end, 30 * MIN);
        const r = await get<{
          rows: {
            namespace: string;
            pod: string;
            hostname: string;
            gpu_id: string;
            start: string;
            idle_seconds: number;
            gpu_hours_wasted: number;
          }[];
        }>(
          `/api/v1/analytics/idle?resolution=${resolution}&start=${new Date(start).toISOString()}&end=${new Date(end).toISOString()}`,
        );
        expect(r.status).toBe(200);
        const got = r.body.rows.map(
          (x) =>
            `${x.namespace}/${x.pod} ${x.hostname}/${x.gpu_id} ${x.start.replace('.000Z', 'Z').replace(/Z$/, '.000Z')} ${x.idle_seconds}s`,
        );
        expect(got.sort()).toEqual(expected);
        for (const x of r.body.rows) expect(x.gpu_hours_wasted).toBeCloseTo(x.idle_seconds / 3600, 12);
        if (end - start >= 6 * 60 * MIN) expect(expected.length).toBeGreaterThan(0);
      });

  it('a longer duration lists fewer stretches', async () => {
    const all = await get<{ rows: unknown[] }>(
      `/api/v1/analytics/idle?start=${new Date(START).toISOString()}&end=${new Date(START + SCRAPES * MIN).toISOString()}&duration=10m`,
    );
    const long = await get<{ rows: unknown[] }>(
      `/api/v1/analytics/idle?start=${new Date(START).toISOString()}&end=${new Date(START + SCRAPES * MIN).toISOString()}&duration=2h`,
    );
    expect(all.body.rows.length).toBeGreaterThan(long.body.rows.length);
  });
});

describe('GraphQL and OpenAPI', () => {
  it('GraphQL answers the same attribution, idle list and outliers as REST', async () => {
    const [start, end] = RANGES[0]!;
    const range = `from: "${new Date(start).toISOString()}", to: "${new Date(end).toISOString()}", resolution: "rollup"`;
    const r = await fleet.app.inject({
      method: 'POST',
      url: '/graphql',
      payload: {
        query: `{ analyticsAttribution(${range}, by: "label:team") { key gpus gpuHoursAllocated gpuHoursBusy energyKwh wasteFraction }
          analyticsIdle(${range}) { pod hostname gpuId start end idleSeconds gpuHoursWasted } }`,
      },
    });
    expect(r.statusCode).toBe(200);
    const body = r.json() as {
      errors?: unknown;
      data: {
        analyticsAttribution: { key: string; gpuHoursAllocated: number; energyKwh: number }[];
        analyticsIdle: { pod: string; start: string; idleSeconds: number }[];
      };
    };
    expect(body.errors).toBeUndefined();
    const rest = (
      await get<{ rows: Row[] }>(
        `/api/v1/analytics/attribution?by=label:team&resolution=rollup&start=${new Date(start).toISOString()}&end=${new Date(end).toISOString()}`,
      )
    ).body.rows;
    expect(body.data.analyticsAttribution.map((x) => [x.key, x.gpuHoursAllocated, x.energyKwh])).toEqual(
      rest.map((x) => [x.key, x.gpu_hours_allocated, x.energy_kwh]),
    );
    const idle = (
      await get<{ rows: { pod: string; start: string; idle_seconds: number }[] }>(
        `/api/v1/analytics/idle?resolution=rollup&start=${new Date(start).toISOString()}&end=${new Date(end).toISOString()}`,
      )
    ).body.rows;
    expect(body.data.analyticsIdle.map((x) => [x.pod, x.start, x.idleSeconds])).toEqual(
      idle.map((x) => [x.pod, x.start, x.idle_seconds]),
    );
    expect(body.data.analyticsIdle.length).toBeGreaterThan(0);
    // Outliers in a request of their own: GraphQL reads count against READ_MAX_ROWS per request.
    const around = `from: "${new Date(START + 3 * 60 * MIN).toISOString()}", to: "${new Date(START + 5 * 60 * MIN).toISOString()}"`;
    const o = await fleet.app.inject({
      method: 'POST',
      url: '/graphql',
      payload: { query: `{ analyticsOutliers(${around}) { hostname gpuId signal start } }` },
    });
    const outliers = o.json() as {
      errors?: unknown;
      data: { analyticsOutliers: { hostname: string; gpuId: string; signal: string }[] };
    };
    expect(outliers.errors).toBeUndefined();
    expect(
      new Set(outliers.data.analyticsOutliers.map((x) => `${x.hostname}/${x.gpuId} ${x.signal}`)),
    ).toEqual(new Set([`${DRIFT.hostname}/${DRIFT.gpuId} temperature`]));
  });

  it('GraphQL refuses a bad argument by name', async () => {
    const r = await fleet.app.inject({
      method: 'POST',
      url: '/graphql',
      payload: { query: '{ analyticsIdle(duration: "soon") { pod } }' },
    });
    const body = r.json() as { errors: { extensions: { code: string; parameter?: string } }[] };
    expect(body.errors[0]!.extensions).toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('the OpenAPI document lists the three routes with their query parameters and row fields', async () => {
    const r = await fleet.app.inject({ method: 'GET', url: '/openapi.json' });
    const doc = r.json() as {
      paths: Record<string, { get: { parameters: { name: string }[]; responses: Record<string, unknown> } }>;
    };
    const attribution = doc.paths['/api/v1/analytics/attribution']!.get;
    expect(attribution.parameters.map((p) => p.name).sort()).toEqual([
      'by',
      'end',
      'interval',
      'resolution',
      'start',
    ]);
    expect(doc.paths['/api/v1/analytics/idle']!.get.parameters.map((p) => p.name)).toContain('threshold');
    expect(doc.paths['/api/v1/analytics/outliers']!.get.parameters.map((p) => p.name)).toContain('k');
    const schema = JSON.stringify(attribution.responses['200']);
    for (const field of ['gpu_hours_allocated', 'energy_kwh', 'allocated_cost', 'waste_fraction'])
      expect(schema).toContain(field);
  });
});

describe('peer outliers', () => {
  for (const resolution of ['raw', 'rollup'])
    it(`flag the drifting GPU and nothing else in the fleet (${resolution})`, async () => {
      const r = await get<{
        rows: {
          hostname: string;
          gpu_id: string;
          signal: string;
          start: string;
          end: string;
          mean_deviation: number;
        }[];
      }>(
        `/api/v1/analytics/outliers?resolution=${resolution}&start=${new Date(START).toISOString()}&end=${new Date(START + SCRAPES * MIN).toISOString()}`,
      );
      expect(r.status).toBe(200);
      // Only the drifting GPU, only on temperature (its stretches may break where a load change
      // brings one minute back in line), within the injected window and covering most of it.
      expect(r.body.rows.length).toBeGreaterThan(0);
      expect(new Set(r.body.rows.map((x) => `${x.hostname}/${x.gpu_id} ${x.signal}`))).toEqual(
        new Set([`${DRIFT.hostname}/${DRIFT.gpuId} temperature`]),
      );
      const from = START + DRIFT.fromScrape * MIN;
      const to = START + DRIFT.toScrape * MIN;
      let flagged = 0;
      for (const row of r.body.rows) {
        expect(Date.parse(row.start)).toBeGreaterThanOrEqual(from);
        expect(Date.parse(row.end)).toBeLessThanOrEqual(to);
        expect(row.mean_deviation).toBeGreaterThan(15);
        flagged += Date.parse(row.end) - Date.parse(row.start);
      }
      expect(flagged).toBeGreaterThanOrEqual(0.5 * (to - from));
    });
});
