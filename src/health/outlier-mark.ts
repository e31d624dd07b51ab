/**
 * Peer-outlier marks: the outlier watch (outlier-watch.ts) records a GPU that departs from its
 * siblings as a mark in the live hierarchy (`.../gpus/{g}/outlier`), and readers turn the mark into
 * a PEER_OUTLIER health reason at read time, as they judge STALE. The mark is derived data: it is
 * written when a GPU becomes an outlier (or its signal changes) and deleted when it is back in line.
 */
import { sortReasons } from './model.js';
import type { GpuHealth, HealthReason } from './types.js';

/** The signals the outlier scan compares (src/analytics/outliers.ts). */
export type OutlierSignalName = 'temperature' | 'power' | 'sm_clock';

/** One GPU's ongoing peer-outlier stretch. */
export interface OutlierMark {
  signal: OutlierSignalName;
  /** Start of the stretch (ms, sample time). */
  sinceMs: number;
  /** Largest |score| of the stretch, in robust deviations. */
  maxScore: number;
  /** Mean of (value - siblings' median) over the stretch, in the signal's unit. */
  meanDeviation: number;
  /** GPUs compared (the one judged included). */
  peers: number;
  /** The GPU's UUID, so events can name it. */
  uuid: string;
  /** When the watch judged it (ms, its clock). */
  judgedAtMs: number;
}

const SIGNALS = new Set<string>(['temperature', 'power', 'sm_clock']);
const UNIT: Record<OutlierSignalName, string> = { temperature: 'C', power: 'W', sm_clock: 'MHz' };

/** The mark in a stored value, or undefined when the value is not one. */
export function parseOutlierMark(value: string): OutlierMark | undefined {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const m = v as Record<string, unknown>;
  const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
  if (typeof m.signal !== 'string' || !SIGNALS.has(m.signal)) return undefined;
  if (!num(m.sinceMs) || !num(m.maxScore) || !num(m.meanDeviation) || !num(m.peers) || !num(m.judgedAtMs))
    return undefined;
  return {
    signal: m.signal as OutlierSignalName,
    sinceMs: m.sinceMs,
    maxScore: m.maxScore,
    meanDeviation: m.meanDeviation,
    peers: m.peers,
    uuid: typeof m.uuid === 'string' ? m.uuid : '',
    judgedAtMs: m.judgedAtMs,
  };
}

/** The health reason of a mark. */
export function outlierReason(mark: OutlierMark): HealthReason {
  const sign = mark.meanDeviation >= 0 ? '+' : '';
  const signal = mark.signal === 'sm_clock' ? 'SM clock' : mark.signal;
  return {
    code: 'PEER_OUTLIER',
    severity: 'warning',
    message:
      `${signal} departs from its ${mark.peers - 1} siblings (same host and model) by up to ` +
      `${mark.maxScore.toFixed(1)} robust deviations (mean ${sign}${mark.meanDeviation.toFixed(1)} ${UNIT[mark.signal]})`,
    sinceMs: mark.sinceMs,
  };
}

/** `health` with the mark's PEER_OUTLIER reason added (a warning). */
export function withOutlier(health: GpuHealth, mark: OutlierMark | undefined): GpuHealth {
  if (!mark) return health;
  const reasons = sortReasons([
    ...health.reasons.filter((r) => r.code !== 'PEER_OUTLIER'),
    outlierReason(mark),
  ]);
  const state = health.state === 'critical' ? 'critical' : 'warning';
  return { state, sinceMs: state === health.state ? health.sinceMs : mark.sinceMs, reasons };
}
