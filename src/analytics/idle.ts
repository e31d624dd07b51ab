/**
 * Idle-but-allocated: stretches where a workload held a GPU while its utilization stayed under a
 * threshold, at minute grain. A minute is idle when every utilization sample of the workload's
 * series in it is under the threshold; consecutive idle minutes form a run (a run breaks at a
 * minute that is not idle, or at a gap longer than 1.5 x max(1 minute, scrape interval)). A run is
 * listed when it held the GPU at least `minDurationMs` (samples x interval) within the range.
 */
import type { SeriesKey } from '../domain/types.js';
import type { SampleStore } from '../ports/sample-store.js';
import { UTIL, gpuFraction, gpuKey, hasWorkload } from './fields.js';
import { estimateIntervals, intervalOf } from './interval.js';
import { checkMinuteSpan, scan, seriesId, type ScanMode } from './scan.js';

/** One idle stretch of one workload on one GPU. */
export interface IdleRow {
  namespace: string;
  pod: string;
  container: string;
  hostname: string;
  gpuId: string;
  uuid: string;
  modelName: string;
  /** MIG instance id ('' for a whole GPU). */
  migInstance: string;
  /** Start of the first idle minute. */
  startMs: number;
  /** End of the last idle minute. */
  endMs: number;
  /** Time held while idle: samples x interval, ms. */
  idleMs: number;
  /** GPU-hours held while idle (MIG instances: their fraction). */
  gpuHoursWasted: number;
  /** Highest utilization seen in the stretch, %. */
  maxUtilization: number;
}

/** Options of {@link idleAllocated}. */
export interface IdleOptions {
  startMs: number;
  endMs: number;
  mode: ScanMode;
  /** Utilization under this (%) is idle. Default 5. */
  thresholdPercent: number;
  /** Shortest stretch listed, ms. Default 30 minutes. */
  minDurationMs: number;
  intervalMs?: number;
}

interface Minute {
  count: number;
  max: number;
}

/** Idle-but-allocated stretches in [startMs, endMs), most GPU-hours wasted first. */
export async function idleAllocated(store: SampleStore, o: IdleOptions): Promise<IdleRow[]> {
  checkMinuteSpan(o.startMs, o.endMs);
  const intervals = await estimateIntervals(store, o.startMs, o.endMs, o.intervalMs);
  const bySeries = new Map<string, { series: SeriesKey; minutes: Map<number, Minute> }>();
  await scan(
    store,
    { startMs: o.startMs, endMs: o.endMs, metrics: [UTIL], mode: o.mode, grain: 'minute' },
    (s, minute, count, _sum, _min, max) => {
      if (!hasWorkload(s)) return;
      const id = seriesId(s);
      let e = bySeries.get(id);
      if (e === undefined) bySeries.set(id, (e = { series: s, minutes: new Map() }));
      const m = e.minutes.get(minute);
      if (m === undefined) e.minutes.set(minute, { count, max });
      else {
        m.count += count;
        m.max = Math.max(m.max, max);
      }
    },
  );
  const rows: IdleRow[] = [];
  for (const { series, minutes } of bySeries.values()) {
    const interval = intervalOf(intervals, gpuKey(series));
    const fraction = gpuFraction(series);
    const list = [...minutes.entries()].sort((a, b) => a[0] - b[0]);
    let run: { start: number; last: number; count: number; max: number } | undefined;
    const close = (): void => {
      if (run === undefined) return;
      const idleMs = run.count * interval;
      if (idleMs >= o.minDurationMs)
        rows.push({
          namespace: series.namespace,
          pod: series.pod,
          container: series.container,
          hostname: series.hostname,
          gpuId: series.gpuId,
          uuid: series.uuid,
          modelName: series.modelName,
          migInstance: series.labels.GPU_I_ID ?? '',
          startMs: run.start,
          endMs: run.last + 60_000,
          idleMs,
          gpuHoursWasted: (idleMs * fraction) / 3_600_000,
          maxUtilization: run.max,
        });
      run = undefined;
    };
    for (const [minute, m] of list) {
      const idle = m.max < o.thresholdPercent;
      if (run !== undefined && (!idle || minute - run.last > 1.5 * Math.max(60_000, interval))) close();
      if (!idle) continue;
      if (run === undefined) run = { start: minute, last: minute, count: 0, max: -Infinity };
      run.last = minute;
      run.count += m.count;
      run.max = Math.max(run.max, m.max);
    }
    close();
  }
  return rows.sort(
    (a, b) =>
      b.gpuHoursWasted - a.gpuHoursWasted ||
      a.startMs - b.startMs ||
      (a.hostname + a.gpuId < b.hostname + b.gpuId ? -1 : 1),
  );
}
