/**
 * `npx tsx bench/analytics.ts [--gpus 1000] [--days 30] [--interval-s 3600] [--runs 3]`: workload
 * attribution over a long range at fleet scale (issue 19). Writes `gpus` GPUs x 3 metrics
 * (utilization, power, framebuffer) every `interval-s` for `days` days into PGlite on disk (rollups
 * on), each GPU running a sequence of jobs (mean 2 days, idle gaps between), then times attribution
 * over the whole range and over a range cut inside minutes at both ends, from rollups and from raw
 * samples, and checks that both give the same rows (relative difference <= 1e-9).
 *
 * Why hourly samples by default: ingesting 1,000 GPUs x 30 days at 10 s (777M samples) or even
 * 5 min (26M) into PGlite takes far longer than a bench run may (the ingest rate is printed). The
 * rollup read does not depend on the scrape interval: a series has one 1h bucket per hour however
 * many samples fell in it, so the rollup figure holds for any interval; the raw figure does not
 * (it grows with the samples).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgliteSampleStore } from '../src/adapters/pglite/sample-store.js';
import { attribution, type AttributionRow } from '../src/analytics/attribution.js';
import { parsePrices } from '../src/analytics/prices.js';
import type { ScanMode } from '../src/analytics/scan.js';
import type { Sample } from '../src/domain/types.js';
import { mulberry32 } from '../src/generate/prng.js';
import type { SampleStore } from '../src/ports/sample-store.js';
import { intArg } from './args.js';
import { figure, type Figure } from './figure.js';

const HOUR = 3_600_000;
const START = Date.UTC(2026, 0, 1);
const NAMESPACES = ['ml-training', 'research', 'inference', 'batch'];
const MODEL = 'NVIDIA H100 80GB HBM3';

/** What the bench found. */
export interface AnalyticsFigures {
  gpus: number;
  days: number;
  intervalS: number;
  samples: number;
  ingestSamplesPerSec: number;
  /** Attribution over the whole range (hour-aligned), ms. */
  rollupAlignedMs: Figure;
  rawAlignedMs: Figure;
  /** Attribution over a range cut inside minutes at both ends, ms. */
  rollupCutMs: Figure;
  rawCutMs: Figure;
  groups: number;
  equal: boolean;
}

/** One GPU's jobs: [startMs, endMs, namespace, pod] with gaps between. */
function jobsOf(g: number, endMs: number): [number, number, string, string][] {
  const r = mulberry32(1000 + g);
  const out: [number, number, string, string][] = [];
  let t = START + Math.floor(r.next() * 12) * HOUR;
  let k = 0;
  while (t < endMs) {
    const len = Math.round(r.range(0.3, 3.7) * 24) * HOUR;
    out.push([t, Math.min(endMs, t + len), NAMESPACES[r.int(0, 3)]!, `job-${g}-${k++}`]);
    t += len + Math.round(r.range(1, 18)) * HOUR;
  }
  return out;
}

async function ingest(store: SampleStore, gpus: number, days: number, intervalMs: number): Promise<number> {
  const endMs = START + days * 24 * HOUR;
  const plans = Array.from({ length: gpus }, (_, g) => jobsOf(g, endMs));
  const r = mulberry32(7);
  let samples = 0;
  let batchNo = 0;
  let pending: Sample[] = [];
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const w = await store.writeBatch({
      id: `bench-${batchNo++}`,
      source: 'bench',
      samples: pending,
      deadLetters: [],
    });
    samples += w.inserted;
    pending = [];
  };
  for (let t = START; t < endMs; t += intervalMs) {
    for (let g = 0; g < gpus; g++) {
      const job = plans[g]!.find(([a, b]) => t >= a && t < b);
      const util = job ? r.int(0, 100) : 0;
      const base = {
        clusterId: 'bench',
        hostname: `host-${String(Math.floor(g / 8)).padStart(4, '0')}`,
        gpuId: String(g % 8),
        uuid: `GPU-bench-${g}`,
        device: `nvidia${g % 8}`,
        modelName: MODEL,
        container: job ? 'trainer' : '',
        pod: job ? job[3] : '',
        namespace: job ? job[2] : '',
        labels: job ? { team: job[2] } : ({} as Record<string, string>),
        timestampMs: t,
      };
      pending.push(
        { ...base, metric: 'DCGM_FI_DEV_GPU_UTIL', value: util },
        {
          ...base,
          metric: 'DCGM_FI_DEV_POWER_USAGE',
          value: Math.round((70 + 6 * util + r.range(-5, 5)) * 1000) / 1000,
        },
        { ...base, metric: 'DCGM_FI_DEV_FB_USED', value: job ? 30_000 + g : 4 },
      );
    }
    if (pending.length >= 24_000) await flush();
  }
  await flush();
  return samples;
}

function same(a: AttributionRow[], b: AttributionRow[]): boolean {
  if (a.length !== b.length) return false;
  const close = (x: number, y: number): boolean =>
    Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(x), Math.abs(y));
  return a.every((r, i) => {
    const s = b[i]!;
    return (
      r.key === s.key &&
      r.gpus === s.gpus &&
      close(r.gpuHoursAllocated, s.gpuHoursAllocated) &&
      close(r.gpuHoursBusy, s.gpuHoursBusy) &&
      close(r.energyKwh, s.energyKwh) &&
      close(r.peakMemoryUsedMiB, s.peakMemoryUsedMiB)
    );
  });
}

/** Run the bench (the store lives in a temporary directory, removed after). */
export async function benchAnalytics(o: {
  gpus: number;
  days: number;
  intervalS: number;
  runs: number;
}): Promise<AnalyticsFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-bench-analytics-'));
  const store = await createPgliteSampleStore({ dataDir: dir });
  try {
    await store.migrate();
    const t0 = performance.now();
    const samples = await ingest(store, o.gpus, o.days, o.intervalS * 1000);
    const ingestS = (performance.now() - t0) / 1000;
    const prices = parsePrices('H100=2.5,default=1');
    const endMs = START + o.days * 24 * HOUR;
    const cut: [number, number] = [START + 37 * 60_000 + 13_000, endMs - 17 * 60_000 - 9_000];
    const time = async (mode: ScanMode, [startMs, end]: [number, number]) => {
      const runs: number[] = [];
      let rows: AttributionRow[] = [];
      for (let i = 0; i < o.runs; i++) {
        const s = performance.now();
        rows = await attribution(store, { startMs, endMs: end, by: 'namespace', mode, prices });
        runs.push(performance.now() - s);
      }
      return { fig: figure(runs), rows };
    };
    const ra = await time('rollup', [START, endMs]);
    const wa = await time('raw', [START, endMs]);
    const rc = await time('rollup', cut);
    const wc = await time('raw', cut);
    return {
      gpus: o.gpus,
      days: o.days,
      intervalS: o.intervalS,
      samples,
      ingestSamplesPerSec: Math.round(samples / ingestS),
      rollupAlignedMs: ra.fig,
      rawAlignedMs: wa.fig,
      rollupCutMs: rc.fig,
      rawCutMs: wc.fig,
      groups: ra.rows.length,
      equal: same(ra.rows, wa.rows) && same(rc.rows, wc.rows) && ra.rows.length > 0,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The figures as a table. */
export function formatAnalyticsFigures(f: AnalyticsFigures): string {
  const ms = (x: Figure): string => `${x.median.toFixed(0)} ms (${x.min.toFixed(0)}-${x.max.toFixed(0)})`;
  return [
    `Analytics: attribution by namespace, ${f.gpus} GPUs x ${f.days} days, one sample per ${f.intervalS} s x 3 metrics (${f.samples} samples; ingest ${f.ingestSamplesPerSec} samples/s into PGlite)`,
    `| range | rollups | raw | same rows |`,
    `|---|---|---|---|`,
    `| ${f.days} days, hour-aligned | ${ms(f.rollupAlignedMs)} | ${ms(f.rawAlignedMs)} | ${f.equal ? 'yes' : 'NO'} (${f.groups} groups) |`,
    `| cut inside minutes at both ends | ${ms(f.rollupCutMs)} | ${ms(f.rawCutMs)} | ${f.equal ? 'yes' : 'NO'} |`,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const f = await benchAnalytics({
    gpus: intArg('--gpus', 1000),
    days: intArg('--days', 30),
    intervalS: intArg('--interval-s', 3600),
    runs: intArg('--runs', 3),
  });
  console.log(formatAnalyticsFigures(f));
  if (!f.equal) process.exitCode = 1;
}
