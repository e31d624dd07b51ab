/**
 * Latency rounds of the query benches: warm up, then time one request at a time for a bounded number
 * of requests and seconds, and read percentiles of what was timed.
 */

/** How one round runs. */
export interface RoundLimits {
  /** Untimed requests first (default 5). */
  warmup?: number;
  /** At least this many timed requests (default 10) ... */
  minRequests?: number;
  /** ... and at most this many (default 200) ... */
  maxRequests?: number;
  /** ... stopping once this much time passed after the minimum (default 3,000 ms). */
  budgetMs?: number;
}

/** The `p`th percentile (nearest rank) of ascending `sorted` values. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Round to two decimals (for printed figures). */
export const round2 = (n: number): number => Math.round(n * 100) / 100;

/** Time `call` one request at a time within `limits`; the latencies in ms, ascending. */
export async function timeRound(call: () => Promise<unknown>, limits: RoundLimits = {}): Promise<number[]> {
  const { warmup = 5, minRequests = 10, maxRequests = 200, budgetMs = 3_000 } = limits;
  for (let i = 0; i < warmup; i++) await call();
  const latencies: number[] = [];
  const started = performance.now();
  while (
    latencies.length < maxRequests &&
    (latencies.length < minRequests || performance.now() - started < budgetMs)
  ) {
    const t = performance.now();
    await call();
    latencies.push(performance.now() - t);
  }
  return latencies.sort((a, b) => a - b);
}
