/**
 * Reads the stored samples analytics need, either raw or from rollups, and hands them to a sink as
 * (series, minute, count, sum, min, max) pieces, so the arithmetic above is the same on both paths.
 * The rollup path cuts [start, end) into raw edges (the partial minutes), 1-minute stretches (the
 * partial hours) and whole hours, so it covers exactly the samples the raw path reads.
 */
import type { SeriesKey } from '../domain/types.js';
import { NexusError } from '../errors.js';
import { MIG_INSTANCE_LABEL } from '../hierarchy/records.js';
import type { Resolution, SampleStore, SeriesFilter } from '../ports/sample-store.js';

/** How analytics reads: every raw sample, or rollups wherever a whole bucket lies in the range. */
export type ScanMode = 'raw' | 'rollup';

/** Which samples to read, over the half-open range [startMs, endMs). */
export interface ScanRequest {
  startMs: number;
  endMs: number;
  metrics: readonly string[];
  mode: ScanMode;
  /** `total`: 1h buckets where they fit; `minute`: never coarser than 1m (idle spans, outliers). */
  grain: 'total' | 'minute';
}

/** Receives the samples of one series in one minute (or one rollup bucket), pre-summed. */
export type ScanSink = (
  series: SeriesKey,
  minuteMs: number,
  count: number,
  sum: number,
  min: number,
  max: number,
) => void;

/** Longest range of the minute-grain questions (idle, outliers): 7 days of minutes per series. */
export const MAX_MINUTE_SPAN_MS = 7 * 86_400_000;

/**
 * @throws NexusError('BAD_REQUEST') when a minute-grain range is longer than {@link MAX_MINUTE_SPAN_MS}
 */
export function checkMinuteSpan(startMs: number, endMs: number): void {
  if (endMs - startMs > MAX_MINUTE_SPAN_MS)
    throw new NexusError(
      'BAD_REQUEST',
      'idle and outlier ranges span at most 7 days; ask for a shorter range',
      {
        details: { parameter: 'start' },
      },
    );
}

const MINUTE = 60_000;
/** GPUs whose rollups are read at once. */
const READ_CONCURRENCY = 4;
const HOUR = 3_600_000;
/** Longest window of one raw read (bounds memory on long raw scans). */
const RAW_CHUNK_MS = 6 * HOUR;

/** A stable text identity of a series (its key fields and sorted labels). */
export function seriesId(s: SeriesKey): string {
  const labels = Object.keys(s.labels)
    .sort()
    .map((k) => `${k}=${s.labels[k]}`)
    .join(',');
  return [s.clusterId, s.hostname, s.gpuId, s.uuid, s.metric, s.namespace, s.pod, s.container, labels].join(
    '\u0000',
  );
}

const floorTo = (ms: number, step: number): number => Math.floor(ms / step) * step;
const ceilTo = (ms: number, step: number): number => Math.ceil(ms / step) * step;

/** One piece of the range and the resolution that serves it. */
export interface Segment {
  from: number;
  to: number;
  resolution: Resolution;
}

/**
 * The pieces of [startMs, endMs) for a rollup scan: raw partial minutes at the edges, 1m partial
 * hours, 1h in the middle (`minute` grain: no 1h). Empty pieces are left out.
 */
export function segments(startMs: number, endMs: number, grain: ScanRequest['grain']): Segment[] {
  const out: Segment[] = [];
  const add = (from: number, to: number, resolution: Resolution): void => {
    if (to > from) out.push({ from, to, resolution });
  };
  const m1 = ceilTo(startMs, MINUTE);
  const m2 = floorTo(endMs, MINUTE);
  if (m1 >= m2) {
    add(startMs, endMs, 'raw');
    return out;
  }
  add(startMs, m1, 'raw');
  const h1 = ceilTo(m1, HOUR);
  const h2 = floorTo(m2, HOUR);
  if (grain === 'minute' || h1 >= h2) add(m1, m2, '1m');
  else {
    add(m1, h1, '1m');
    add(h1, h2, '1h');
    add(h2, m2, '1m');
  }
  add(m2, endMs, 'raw');
  return out;
}

async function scanRaw(
  store: SampleStore,
  from: number,
  to: number,
  filter: SeriesFilter,
  sink: ScanSink,
): Promise<void> {
  for (let a = from; a < to; a += RAW_CHUNK_MS) {
    const b = Math.min(to, a + RAW_CHUNK_MS);
    const rows = await store.selectSeries({ filter, startMs: a, endMs: b - 1 });
    for (const { series, timestamps, values } of rows) {
      for (let i = 0; i < timestamps.length; i++) {
        const v = values[i]!;
        sink(series, floorTo(timestamps[i]!, MINUTE), 1, v, v, v);
      }
    }
  }
}

/** Read the samples of `req` and feed them to `sink`. */
export async function scan(store: SampleStore, req: ScanRequest, sink: ScanSink): Promise<void> {
  const filter: SeriesFilter = { metrics: req.metrics };
  if (req.endMs <= req.startMs) return;
  if (req.mode === 'raw') {
    await scanRaw(store, req.startMs, req.endMs, filter, sink);
    return;
  }
  const pieces = segments(req.startMs, req.endMs, req.grain);
  if (req.grain === 'total' && store.summarizeSeries) {
    // One aggregate query for the whole fleet and every piece, the raw edges included (the store
    // reads the whole UTC days of the 1h piece from its daily rollup).
    const [first, ...more] = pieces.map((p) => ({ startMs: p.from, endMs: p.to, resolution: p.resolution }));
    const rows = await store.summarizeSeries({ filter, ...first!, more });
    for (const r of rows) sink(r.series, req.startMs, r.count, r.sum, r.min, r.max);
    return;
  }
  for (const p of pieces) if (p.resolution === 'raw') await scanRaw(store, p.from, p.to, filter, sink);
  const rolled = pieces.filter((p) => p.resolution !== 'raw');
  if (rolled.length === 0) return;
  // The GPUs (and MIG instances) with a series in the range, and how many series each has.
  const latest = await store.selectSeries({
    filter,
    startMs: req.startMs,
    endMs: req.endMs - 1,
    latestOnly: true,
  });
  const gpus = new Map<string, { series: SeriesKey; mig: string | undefined; n: number }>();
  for (const { series } of latest) {
    const mig = series.labels[MIG_INSTANCE_LABEL];
    const key = [series.clusterId, series.hostname, series.gpuId, mig ?? ''].join('\u0000');
    const g = gpus.get(key);
    if (g) g.n++;
    else gpus.set(key, { series, mig, n: 1 });
  }
  const list = [...gpus.values()];
  // A few GPUs at a time (a pooled backend answers them in parallel); each chunk is fed to the sink
  // in GPU order, so sums are added in the same order on every run.
  for (let c = 0; c < list.length; c += READ_CONCURRENCY) {
    const chunk = list.slice(c, c + READ_CONCURRENCY);
    const results = await Promise.all(
      chunk.map(async ({ series, mig, n }) => {
        const out = [];
        for (const p of rolled) {
          const bucketMs = p.resolution === '1h' ? HOUR : MINUTE;
          out.push(
            ...(await store.querySamples({
              gpu: { clusterId: series.clusterId, hostname: series.hostname, gpuId: series.gpuId },
              ...(mig === undefined ? {} : { migInstance: mig }),
              metrics: [...req.metrics],
              startMs: p.from,
              endMs: p.to - 1,
              resolution: p.resolution,
              order: 'asc',
              limit: n * Math.ceil((p.to - p.from) / bucketMs) + 1,
            })),
          );
        }
        return out;
      }),
    );
    for (const rows of results)
      for (const r of rows) {
        const a = r.aggregate;
        if (a === undefined) continue;
        sink(r, r.timestampMs, a.count, a.avg * a.count, a.min, a.max);
      }
  }
}
