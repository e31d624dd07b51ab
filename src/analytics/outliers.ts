/**
 * Peer outliers: a GPU whose temperature, power or SM clock departs from its siblings (same
 * cluster, host and model) by more than k robust deviations for at least a duration. Load is taken
 * out first, since siblings run different jobs: temperature is compared as its residual from the
 * group's least-squares line against power, power as its residual against utilization, and the SM
 * clock only in busy minutes (utilization >= 5%). Each minute, among the GPUs of a group that report
 * the signal (at least 4), a GPU's score is (x - median) / max(1.4826 * MAD, floor).
 */
import type { SampleStore } from '../ports/sample-store.js';
import { POWER, SM_CLOCK, TEMP, UTIL, migInstance } from './fields.js';
import { estimateIntervals, intervalOf } from './interval.js';
import { checkMinuteSpan, scan, type ScanMode } from './scan.js';

/** The signals compared. */
export type OutlierSignal = 'temperature' | 'power' | 'sm_clock';

/** One stretch in which one GPU stood out from its siblings on one signal. */
export interface OutlierRow {
  clusterId: string;
  hostname: string;
  gpuId: string;
  uuid: string;
  modelName: string;
  signal: OutlierSignal;
  startMs: number;
  endMs: number;
  /** Largest |score| in the stretch (robust deviations). */
  maxScore: number;
  /** Mean of (value - siblings' median) over the stretch, in the signal's unit (residual for temperature and power). */
  meanDeviation: number;
  /** GPUs of the group compared (the most in any minute of the stretch, the GPU included). */
  peers: number;
}

/** Options of {@link peerOutliers}. */
export interface OutlierOptions {
  startMs: number;
  endMs: number;
  mode: ScanMode;
  /** Robust deviations beyond which a minute is out of line. Default 5. */
  k: number;
  /** Shortest stretch listed (wall time of the flagged minutes), ms. Default 10 minutes. */
  minDurationMs: number;
  intervalMs?: number;
}

/** Smallest robust scale per signal (units: C, W, MHz): siblings closer than this never count. */
export const SCALE_FLOOR: Readonly<Record<OutlierSignal, number>> = {
  temperature: 2,
  power: 60,
  sm_clock: 50,
};
/** Fewest GPUs (the one judged included) a minute needs to judge anyone. */
export const MIN_PEERS = 4;
/** Utilization at or above which a minute is busy (SM clock comparison). */
const BUSY_UTIL = 5;
const MAD_TO_SD = 1.4826;

interface GpuMinutes {
  clusterId: string;
  hostname: string;
  gpuId: string;
  uuid: string;
  modelName: string;
  /** minute -> [sum, count] per metric */
  minutes: Map<number, Record<string, [number, number]>>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Least-squares line y = a + b x; b = 0 when x does not vary. */
function fit(points: [number, number][]): [number, number] {
  const n = points.length;
  if (n === 0) return [0, 0];
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  for (const [x, y] of points) {
    sxx += (x - mx) * (x - mx);
    sxy += (x - mx) * (y - my);
  }
  const b = sxx > 0 ? sxy / sxx : 0;
  return [my - b * mx, b];
}

const avg = (m: Record<string, [number, number]>, metric: string): number | undefined => {
  const v = m[metric];
  return v && v[1] > 0 ? v[0] / v[1] : undefined;
};

/** Peer outliers in [startMs, endMs), largest score first. */
export async function peerOutliers(store: SampleStore, o: OutlierOptions): Promise<OutlierRow[]> {
  checkMinuteSpan(o.startMs, o.endMs);
  const intervals = await estimateIntervals(store, o.startMs, o.endMs, o.intervalMs);
  const gpus = new Map<string, GpuMinutes>();
  await scan(
    store,
    {
      startMs: o.startMs,
      endMs: o.endMs,
      metrics: [UTIL, POWER, TEMP, SM_CLOCK],
      mode: o.mode,
      grain: 'minute',
    },
    (s, minute, count, sum) => {
      if (migInstance(s) !== '') return;
      const key = [s.clusterId, s.hostname, s.gpuId].join('\u0000');
      let g = gpus.get(key);
      if (g === undefined)
        gpus.set(
          key,
          (g = {
            clusterId: s.clusterId,
            hostname: s.hostname,
            gpuId: s.gpuId,
            uuid: s.uuid,
            modelName: s.modelName,
            minutes: new Map(),
          }),
        );
      let m = g.minutes.get(minute);
      if (m === undefined) g.minutes.set(minute, (m = {}));
      const acc = (m[s.metric] ??= [0, 0]);
      acc[0] += sum;
      acc[1] += count;
    },
  );
  const groups = new Map<string, [string, GpuMinutes][]>();
  for (const [key, g] of gpus) {
    const gk = [g.clusterId, g.hostname, g.modelName].join('\u0000');
    const list = groups.get(gk) ?? [];
    list.push([key, g]);
    groups.set(gk, list);
  }
  const rows: OutlierRow[] = [];
  for (const members of groups.values()) {
    if (members.length < MIN_PEERS) continue;
    // Load lines of the group over the whole range.
    const tp: [number, number][] = [];
    const pu: [number, number][] = [];
    for (const [, g] of members)
      for (const m of g.minutes.values()) {
        const t = avg(m, TEMP);
        const p = avg(m, POWER);
        const u = avg(m, UTIL);
        if (t !== undefined && p !== undefined) tp.push([p, t]);
        if (p !== undefined && u !== undefined) pu.push([u, p]);
      }
    const [ta, tb] = fit(tp);
    const [pa, pb] = fit(pu);
    const value = (signal: OutlierSignal, m: Record<string, [number, number]>): number | undefined => {
      const t = avg(m, TEMP);
      const p = avg(m, POWER);
      const u = avg(m, UTIL);
      if (signal === 'temperature') return t !== undefined && p !== undefined ? t - (ta + tb * p) : undefined;
      if (signal === 'power') return p !== undefined && u !== undefined ? p - (pa + pb * u) : undefined;
      const c = avg(m, SM_CLOCK);
      return c !== undefined && u !== undefined && u >= BUSY_UTIL ? c : undefined;
    };
    const minutes = new Set<number>();
    for (const [, g] of members) for (const minute of g.minutes.keys()) minutes.add(minute);
    const sorted = [...minutes].sort((a, b) => a - b);
    for (const signal of ['temperature', 'power', 'sm_clock'] as const) {
      // Per GPU: the flagged minutes with their score, deviation and peer count.
      const flagged = new Map<string, [number, number, number, number][]>();
      for (const minute of sorted) {
        const values: [string, number][] = [];
        for (const [key, g] of members) {
          const m = g.minutes.get(minute);
          const v = m && value(signal, m);
          if (v !== undefined) values.push([key, v]);
        }
        if (values.length < MIN_PEERS) continue;
        const med = median(values.map(([, v]) => v));
        const mad = median(values.map(([, v]) => Math.abs(v - med)));
        const scale = Math.max(MAD_TO_SD * mad, SCALE_FLOOR[signal]);
        for (const [key, v] of values) {
          const score = (v - med) / scale;
          if (Math.abs(score) <= o.k) continue;
          const list = flagged.get(key) ?? [];
          list.push([minute, score, v - med, values.length]);
          flagged.set(key, list);
        }
      }
      for (const [key, list] of flagged) {
        const g = gpus.get(key)!;
        const interval = intervalOf(intervals, key + '\u0000');
        let run: [number, number, number, number][] = [];
        const close = (): void => {
          if (run.length === 0) return;
          const startMs = run[0]![0];
          const endMs = run[run.length - 1]![0] + 60_000;
          if (endMs - startMs >= o.minDurationMs)
            rows.push({
              clusterId: g.clusterId,
              hostname: g.hostname,
              gpuId: g.gpuId,
              uuid: g.uuid,
              modelName: g.modelName,
              signal,
              startMs,
              endMs,
              maxScore: Math.max(...run.map((r) => Math.abs(r[1]))),
              meanDeviation: run.reduce((s, r) => s + r[2], 0) / run.length,
              peers: Math.max(...run.map((r) => r[3])),
            });
          run = [];
        };
        for (const r of list) {
          const prev = run[run.length - 1];
          if (
            prev !== undefined &&
            (r[0] - prev[0] > 1.5 * Math.max(60_000, interval) || Math.sign(r[1]) !== Math.sign(prev[1]))
          )
            close();
          run.push(r);
        }
        close();
      }
    }
  }
  return rows.sort((a, b) => b.maxScore - a.maxScore || a.startMs - b.startMs);
}
