/**
 * The parameters every analytics question shares (range, read path, scrape interval, durations),
 * checked once for REST and GraphQL, and the three questions as GraphQL asks them.
 */
import { parseDuration } from '../config/duration.js';
import { NexusError } from '../errors.js';
import type { SampleStore } from '../ports/sample-store.js';
import { attribution, parseGroupBy, type AttributionRow } from './attribution.js';
import { idleAllocated, type IdleRow } from './idle.js';
import { peerOutliers, type OutlierRow } from './outliers.js';
import type { PriceTable } from './prices.js';
import type { ScanMode } from './scan.js';

/** Under `resolution=auto`, ranges up to this span are read raw (6 h), longer ones from rollups. */
export const AUTO_RAW_MAX_MS = 6 * 3_600_000;
/** Range when no start is given: the day before the end. */
const DEFAULT_SPAN_MS = 86_400_000;

/** A checked range with its read path. */
export interface AnalyticsRange {
  startMs: number;
  endMs: number;
  mode: ScanMode;
  intervalMs?: number;
}

function bad(parameter: string, message: string): NexusError {
  return new NexusError('BAD_REQUEST', message, { details: { parameter } });
}

/** A positive duration parameter (`30s`, `10m`). @throws NexusError('BAD_REQUEST') naming it */
export function durationParam(name: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined || !(ms > 0)) throw bad(name, `${name} must be a positive duration such as 30s`);
  return ms;
}

/**
 * The range [start, end) (default: the day before now), its read path (`raw`, `rollup`, or `auto`:
 * raw up to 6 h) and the optional fixed scrape interval.
 * @throws NexusError('BAD_REQUEST') naming the parameter
 */
export function analyticsRange(
  q: { startMs?: number; endMs?: number; resolution?: string; interval?: string },
  nowMs: number,
  names: { start: string; end: string } = { start: 'start', end: 'end' },
): AnalyticsRange {
  const endMs = q.endMs ?? nowMs;
  const startMs = q.startMs ?? endMs - DEFAULT_SPAN_MS;
  if (!Number.isFinite(startMs)) throw bad(names.start, `${names.start} is not a valid time`);
  if (!Number.isFinite(endMs)) throw bad(names.end, `${names.end} is not a valid time`);
  if (!(endMs > startMs)) throw bad(names.end, `${names.end} must be after ${names.start}`);
  const res = q.resolution ?? 'auto';
  if (res !== 'raw' && res !== 'rollup' && res !== 'auto')
    throw bad('resolution', 'resolution must be raw, rollup or auto');
  const mode: ScanMode = res === 'auto' ? (endMs - startMs <= AUTO_RAW_MAX_MS ? 'raw' : 'rollup') : res;
  const out: AnalyticsRange = { startMs, endMs, mode };
  if (q.interval !== undefined) out.intervalMs = durationParam('interval', q.interval);
  return out;
}

type Maybe<T> = T | null | undefined;

/** Arguments shared by the GraphQL analytics fields (`from`/`to` as ms, from the DateTime scalar). */
export interface GraphqlRangeArgs {
  from?: Maybe<number>;
  to?: Maybe<number>;
  resolution?: Maybe<string>;
  interval?: Maybe<string>;
}

function graphqlRange(args: GraphqlRangeArgs, nowMs: number): AnalyticsRange {
  return analyticsRange(
    {
      ...(args.from == null ? {} : { startMs: args.from }),
      ...(args.to == null ? {} : { endMs: args.to }),
      ...(args.resolution == null ? {} : { resolution: args.resolution }),
      ...(args.interval == null ? {} : { interval: args.interval }),
    },
    nowMs,
    { start: 'from', end: 'to' },
  );
}

/** GraphQL `analyticsAttribution` (without prices, the cost figures are 0; GraphQL does not expose them). */
export function attributionField(
  store: SampleStore,
  args: GraphqlRangeArgs & { by?: Maybe<string> },
  nowMs: number = Date.now(),
  prices: PriceTable = { byModel: [], fallback: 0 },
): Promise<AttributionRow[]> {
  const range = graphqlRange(args, nowMs);
  return attribution(store, { ...range, by: parseGroupBy(args.by ?? 'namespace'), prices });
}

/** GraphQL `analyticsIdle`: rows with `start`/`end` (ms) and `idleSeconds`. */
export async function idleField(
  store: SampleStore,
  args: GraphqlRangeArgs & { threshold?: Maybe<number>; duration?: Maybe<string> },
  nowMs: number = Date.now(),
): Promise<(IdleRow & { start: number; end: number; idleSeconds: number })[]> {
  const threshold = args.threshold ?? 5;
  if (!(threshold >= 0 && threshold <= 100)) throw bad('threshold', 'threshold must be within 0..100');
  const rows = await idleAllocated(store, {
    ...graphqlRange(args, nowMs),
    thresholdPercent: threshold,
    minDurationMs: durationParam('duration', args.duration ?? '30m'),
  });
  return rows.map((r) => ({ ...r, start: r.startMs, end: r.endMs, idleSeconds: r.idleMs / 1000 }));
}

/** GraphQL `analyticsOutliers`: rows with `start`/`end` (ms). */
export async function outliersField(
  store: SampleStore,
  args: GraphqlRangeArgs & { k?: Maybe<number>; duration?: Maybe<string> },
  nowMs: number = Date.now(),
): Promise<(OutlierRow & { start: number; end: number })[]> {
  const k = args.k ?? 5;
  if (!(k > 0)) throw bad('k', 'k must be more than 0');
  const rows = await peerOutliers(store, {
    ...graphqlRange(args, nowMs),
    k,
    minDurationMs: durationParam('duration', args.duration ?? '10m'),
  });
  return rows.map((r) => ({ ...r, start: r.startMs, end: r.endMs }));
}
