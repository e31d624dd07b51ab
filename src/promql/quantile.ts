/** Prometheus' quantile (promql/quantile.go): linear interpolation between the closest ranks. */

/** The phi-quantile of `values` (sorted in place); NaN when empty, -Inf/+Inf for phi < 0 / > 1. */
export function quantile(q: number, values: number[]): number {
  if (values.length === 0) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  values.sort(compareNaNFirst);
  const n = values.length;
  const rank = q * (n - 1);
  const lowerIndex = Math.max(0, Math.floor(rank));
  const upperIndex = Math.min(n - 1, lowerIndex + 1);
  const weight = rank - Math.floor(rank);
  if (Number.isNaN(rank)) return NaN;
  return values[lowerIndex]! * (1 - weight) + values[upperIndex]! * weight;
}

/** Ascending order with NaN first, as Prometheus' vectorByValueHeap.Less. */
export function compareNaNFirst(a: number, b: number): number {
  if (Number.isNaN(a)) return Number.isNaN(b) ? 0 : -1;
  if (Number.isNaN(b)) return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}
