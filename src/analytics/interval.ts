/**
 * The scrape interval of each GPU: the median spacing of its utilization samples, probed at the
 * end of the range (last 15 minutes, then last 6 hours, then the whole range for GPUs still without
 * two samples); GPUs never seen twice take the fleet median, then the fallback. Both read paths use
 * the same intervals, so raw and rollup answers agree.
 */
import { MIG_INSTANCE_LABEL } from '../hierarchy/records.js';
import type { SampleStore } from '../ports/sample-store.js';
import { UTIL, gpuKey } from './fields.js';

/** dcgm-exporter's default collection interval, the last resort. */
export const FALLBACK_INTERVAL_MS = 30_000;

const PROBES_MS = [15 * 60_000, 6 * 3_600_000, Infinity];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Interval (ms) by {@link gpuKey}, and the one for GPUs not in the map. */
export interface Intervals {
  byGpu: Map<string, number>;
  fallbackMs: number;
}

/** The interval of the GPU of a series. */
export function intervalOf(intervals: Intervals, key: string): number {
  return intervals.byGpu.get(key) ?? intervals.fallbackMs;
}

/**
 * Estimate every GPU's scrape interval over [startMs, endMs); with `fixedMs` every GPU takes it.
 */
export async function estimateIntervals(
  store: SampleStore,
  startMs: number,
  endMs: number,
  fixedMs?: number,
  fallbackMs: number = FALLBACK_INTERVAL_MS,
): Promise<Intervals> {
  const byGpu = new Map<string, number>();
  if (fixedMs !== undefined) return { byGpu, fallbackMs: fixedMs };
  const settled: { clusterId: string; hostname: string; gpuId: string; instance: string }[] = [];
  for (const probe of PROBES_MS) {
    const from = Math.max(startMs, endMs - probe);
    if (store.sampleSpacing) {
      // The store computes the same medians in one query.
      const gpus = await store.sampleSpacing({
        filter: { metrics: [UTIL] },
        startMs: from,
        endMs,
        instanceLabel: MIG_INSTANCE_LABEL,
        exclude: settled,
      });
      for (const g of gpus) {
        if (g.medianMs === null) continue;
        byGpu.set([g.clusterId, g.hostname, g.gpuId, g.instance].join('\u0000'), g.medianMs);
        settled.push(g);
      }
      if (from === startMs) break;
      continue;
    }
    const stamps = new Map<string, Set<number>>();
    const rows = await store.selectSeries({
      filter: { metrics: [UTIL] },
      accept: (s) => !byGpu.has(gpuKey(s)),
      startMs: from,
      endMs: endMs - 1,
    });
    for (const { series, timestamps } of rows) {
      const key = gpuKey(series);
      let set = stamps.get(key);
      if (set === undefined) stamps.set(key, (set = new Set()));
      for (const t of timestamps) set.add(t);
    }
    for (const [key, set] of stamps) {
      if (set.size < 2) continue;
      const ts = [...set].sort((a, b) => a - b);
      byGpu.set(key, median(ts.slice(1).map((t, i) => t - ts[i]!)));
    }
    if (from === startMs) break;
  }
  const all = [...byGpu.values()];
  return { byGpu, fallbackMs: all.length > 0 ? median(all) : fallbackMs };
}
