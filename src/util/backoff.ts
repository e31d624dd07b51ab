/** Exponential backoff with full jitter, and a promise-based sleep. */

/** Delay before retry number `attempt` (1-based): random in [0, min(cap, base * 2^attempt)). */
export function backoffDelay(attempt: number, baseMs = 100, capMs = 10_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.floor(Math.random() * ceiling);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
