/** Polling wait of the end-to-end tests: `check` until it holds, or fail naming what was awaited. */

/**
 * Resolve once `check()` is true; after `timeoutMs`, reject with an error naming `what`, plus
 * `detail()` (e.g. a server's last log lines) when given.
 */
export async function until(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  detail?: () => string,
  pollMs = 250,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail ? `\n${detail()}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
