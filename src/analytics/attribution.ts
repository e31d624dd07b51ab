/**
 * Attribution: GPU-hours allocated and busy, energy, utilization and memory, and cost, per group
 * (namespace, pod, container, a label, host or model) over a time range. Every sample stands for one
 * scrape interval of its GPU, so the sums are exact from rollup counts and sums (docs/analytics.md).
 */
import type { SeriesKey } from '../domain/types.js';
import { NexusError } from '../errors.js';
import type { SampleStore } from '../ports/sample-store.js';
import { FB_USED, POWER, UTIL, gpuFraction, gpuKey, hasWorkload } from './fields.js';
import { estimateIntervals, intervalOf } from './interval.js';
import { priceOf, type PriceTable } from './prices.js';
import { scan, type ScanMode } from './scan.js';

/** What attribution groups by. */
export type GroupBy = 'namespace' | 'pod' | 'container' | 'host' | 'model' | `label:${string}`;

/** Parse a `by` parameter. @throws NexusError('BAD_REQUEST') */
export function parseGroupBy(text: string): GroupBy {
  if (['namespace', 'pod', 'container', 'host', 'model'].includes(text)) return text as GroupBy;
  if (/^label:[A-Za-z_][A-Za-z0-9_]*$/.test(text)) return text as GroupBy;
  throw new NexusError(
    'BAD_REQUEST',
    `by must be namespace, pod, container, host, model or label:<name>, got "${text}"`,
    { details: { parameter: 'by' } },
  );
}

/** The group key of a series. Pods are keyed `namespace/pod` (pod names are per namespace). */
export function groupKey(s: SeriesKey, by: GroupBy): string {
  switch (by) {
    case 'namespace':
      return s.namespace;
    case 'pod':
      return `${s.namespace}/${s.pod}`;
    case 'container':
      return s.container;
    case 'host':
      return s.hostname;
    case 'model':
      return s.modelName;
    default:
      return s.labels[by.slice('label:'.length)] ?? '';
  }
}

/** One row of the attribution answer. */
export interface AttributionRow {
  key: string;
  /** Distinct GPUs (MIG instances count separately) that carried the group's samples. */
  gpus: number;
  gpuHoursAllocated: number;
  gpuHoursBusy: number;
  energyKwh: number;
  avgUtilization: number;
  peakUtilization: number;
  avgMemoryUsedMiB: number;
  peakMemoryUsedMiB: number;
  allocatedCost: number;
  effectiveCost: number;
  /** 1 - busy / allocated (0 when nothing was allocated). */
  wasteFraction: number;
}

/** Options of {@link attribution}. */
export interface AttributionOptions {
  startMs: number;
  endMs: number;
  by: GroupBy;
  mode: ScanMode;
  prices: PriceTable;
  /** Scrape interval for every GPU; absent: estimated (interval.ts). */
  intervalMs?: number;
}

interface Acc {
  gpus: Set<string>;
  heldMs: number;
  busyMs: number;
  energyWms: number;
  utilSum: number;
  utilCount: number;
  utilPeak: number;
  memSum: number;
  memCount: number;
  memPeak: number;
  allocatedCost: number;
  effectiveCost: number;
}

const HOUR_MS = 3_600_000;

/** Attribution over [startMs, endMs), groups sorted by allocated GPU-hours, largest first. */
export async function attribution(store: SampleStore, o: AttributionOptions): Promise<AttributionRow[]> {
  const intervals = await estimateIntervals(store, o.startMs, o.endMs, o.intervalMs);
  const groups = new Map<string, Acc>();
  await scan(
    store,
    { startMs: o.startMs, endMs: o.endMs, metrics: [UTIL, POWER, FB_USED], mode: o.mode, grain: 'total' },
    (s, _minute, count, sum, _min, max) => {
      if (!hasWorkload(s)) return;
      const key = groupKey(s, o.by);
      let a = groups.get(key);
      if (a === undefined)
        groups.set(
          key,
          (a = {
            gpus: new Set(),
            heldMs: 0,
            busyMs: 0,
            energyWms: 0,
            utilSum: 0,
            utilCount: 0,
            utilPeak: -Infinity,
            memSum: 0,
            memCount: 0,
            memPeak: -Infinity,
            allocatedCost: 0,
            effectiveCost: 0,
          }),
        );
      const gpu = gpuKey(s);
      const interval = intervalOf(intervals, gpu);
      if (s.metric === UTIL) {
        const f = gpuFraction(s);
        const price = priceOf(o.prices, s.modelName);
        const held = count * interval * f;
        const busy = (sum / 100) * interval * f;
        a.gpus.add(gpu);
        a.heldMs += held;
        a.busyMs += busy;
        a.allocatedCost += (held / HOUR_MS) * price;
        a.effectiveCost += (busy / HOUR_MS) * price;
        a.utilSum += sum;
        a.utilCount += count;
        a.utilPeak = Math.max(a.utilPeak, max);
      } else if (s.metric === POWER) {
        a.energyWms += sum * interval;
      } else {
        a.memSum += sum;
        a.memCount += count;
        a.memPeak = Math.max(a.memPeak, max);
      }
    },
  );
  const rows: AttributionRow[] = [];
  for (const [key, a] of groups) {
    if (a.utilCount === 0) continue;
    rows.push({
      key,
      gpus: a.gpus.size,
      gpuHoursAllocated: a.heldMs / HOUR_MS,
      gpuHoursBusy: a.busyMs / HOUR_MS,
      energyKwh: a.energyWms / 3.6e9,
      avgUtilization: a.utilSum / a.utilCount,
      peakUtilization: a.utilPeak,
      avgMemoryUsedMiB: a.memCount > 0 ? a.memSum / a.memCount : 0,
      peakMemoryUsedMiB: a.memCount > 0 ? a.memPeak : 0,
      allocatedCost: a.allocatedCost,
      effectiveCost: a.effectiveCost,
      wasteFraction: a.heldMs > 0 ? 1 - a.busyMs / a.heldMs : 0,
    });
  }
  return rows.sort((x, y) => y.gpuHoursAllocated - x.gpuHoursAllocated || (x.key < y.key ? -1 : 1));
}
