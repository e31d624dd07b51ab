/**
 * The values the evaluator passes between nodes at one evaluation time: scalars, strings,
 * instant vectors and range vectors (views into loaded samples, never copies).
 */
import type { Labels } from './types.js';

/** One element of an instant vector. `t` is the sample's own time (only selectors set it). */
export interface Sample {
  metric: Labels;
  v: number;
  t?: number;
}

/** One series of a range vector: the samples `t[lo..hi)`, `v[lo..hi)`. */
export interface RangeSeries {
  metric: Labels;
  t: readonly number[];
  v: readonly number[];
  lo: number;
  hi: number;
}

export type Value =
  | { type: 'scalar'; v: number }
  | { type: 'string'; s: string }
  | { type: 'vector'; samples: Sample[] }
  | { type: 'matrix'; series: RangeSeries[] };

/** First index in ascending `a` whose value is >= x (a.length if none). */
export function lowerBound(a: readonly number[], x: number, lo = 0, hi = a.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in ascending `a` whose value is > x (a.length if none). */
export function upperBound(a: readonly number[], x: number, lo = 0, hi = a.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
