/** One measured figure over K runs: the median, the spread, and every run's value (JSON-serialisable). */

/** A figure measured over several runs. */
export interface Figure {
  /** Median of the runs (the upper middle value for an even count). */
  median: number;
  min: number;
  max: number;
  /** Every run's value, in run order. */
  runs: number[];
}

/** The {@link Figure} of `values` (at least one value). */
export function figure(values: number[]): Figure {
  if (values.length === 0) throw new Error('figure() needs at least one value');
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: sorted[Math.floor(sorted.length / 2)]!,
    min: sorted[0]!,
    max: sorted.at(-1)!,
    runs: values,
  };
}
