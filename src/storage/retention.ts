/**
 * Scheduling of sample retention. In nexus mode the maintenance leader runs the retention duty
 * (fenced, one collector at a time); without a coordination store (traditional mode) every
 * collector runs it on a timer, which is safe because a pass is idempotent and partition drops
 * are serialised in the database.
 */
import type { RetentionPolicy, RetentionResult, SampleStore } from '../ports/sample-store.js';
import type { Logger } from '../util/logger.js';

/** Default time between two retention passes of {@link startRetentionLoop}: 5 minutes. */
export const DEFAULT_RETENTION_INTERVAL_MS = 5 * 60_000;

/** A retention pass with fixed bounds, or undefined when the store has no retention. */
export function retentionDuty(
  store: SampleStore,
  bounds: Pick<RetentionPolicy, 'rawMs' | 'rollupMs'>,
): (() => Promise<RetentionResult>) | undefined {
  if (!store.applyRetention) return undefined;
  return () => store.applyRetention!({ rawMs: bounds.rawMs, rollupMs: bounds.rollupMs });
}

/** A running retention timer. */
export interface RetentionLoop {
  stop(): Promise<void>;
}

/**
 * Run `duty` now and then every `intervalMs`; a failing pass is logged and retried next time.
 * `stop()` clears the timer and waits for a pass in flight.
 */
export function startRetentionLoop(
  duty: () => Promise<RetentionResult>,
  options: { logger: Logger; intervalMs?: number },
): RetentionLoop {
  const log = options.logger.child({ component: 'retention' });
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const pass = (): void => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        const r = await duty();
        if (r.dropped.length > 0 || r.deletedRows > 0) {
          log.info({ dropped: r.dropped, deletedRows: r.deletedRows }, 'applied retention');
        }
      } catch (error) {
        log.warn({ err: error }, 'retention pass failed; retrying next pass');
      }
    });
  };
  pass();
  const timer = setInterval(pass, options.intervalMs ?? DEFAULT_RETENTION_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
