/**
 * Small seeded pseudo-random generator (mulberry32) so generated data is reproducible:
 * the same seed always gives the same sequence, on every platform.
 */

/** A deterministic source of pseudo-random numbers. */
export interface Prng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max] (inclusive). */
  int(min: number, max: number): number;
  /** Uniform float in [min, max). */
  range(min: number, max: number): number;
  /** Roughly normal (sum of uniforms) with the given mean and standard deviation. */
  normal(mean: number, sd: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
}

/** mulberry32: 32-bit state, period 2^32, good enough statistics for synthetic telemetry. */
export function mulberry32(seed: number): Prng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    range: (min, max) => min + next() * (max - min),
    normal: (mean, sd) => mean + sd * (next() + next() + next() + next() - 2) * 1.7320508075688772,
    chance: (p) => next() < p,
  };
}
