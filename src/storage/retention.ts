/**
 * Scheduling of the store's housekeeping: retention, then compaction of the raw samples older than
 * the hot window. In nexus mode the maintenance leader runs the duty (fenced, one collector at a
 * time); without a coordination store (traditional mode) every collector runs it on a timer, which
 * is safe because a pass is idempotent and partition drops and window rebuilds are serialised in
 * the database; the embedded runtime runs compaction alone.
 */
import type { CompactResult, RetentionPolicy, RetentionResult, SampleStore } from '../ports/sample-store.js';
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

/** What one housekeeping pass did: retention (when configured), then compaction (when on). */
export interface HousekeepingResult {
  retention?: RetentionResult;
  compaction?: CompactResult;
}

/**
 * Retention (when `retention` is given and the store has it), then compaction with a hot window
 * of `compactAfterMs` (when positive and the store has it); undefined when there is nothing to do.
 */
export function housekeepingDuty(
  store: SampleStore,
  options: {
    retention?: Pick<RetentionPolicy, 'rawMs' | 'rollupMs'>;
    compactAfterMs: number;
    logger?: Logger;
  },
): (() => Promise<HousekeepingResult>) | undefined {
  const retain = options.retention ? retentionDuty(store, options.retention) : undefined;
  const compact = options.compactAfterMs > 0 && store.compact ? store.compact.bind(store) : undefined;
  if (!retain && !compact) return undefined;
  const log = options.logger?.child({ component: 'compaction' });
  return async () => {
    const out: HousekeepingResult = {};
    if (retain) out.retention = await retain();
    if (compact) {
      out.compaction = await compact({
        hotMs: options.compactAfterMs,
        onWindow: (w) =>
          log?.debug({ window: new Date(w.startMs).toISOString(), samples: w.samples }, 'compacted window'),
      });
    }
    return out;
  };
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
  duty: () => Promise<HousekeepingResult>,
  options: { logger: Logger; intervalMs?: number },
): RetentionLoop {
  const log = options.logger.child({ component: 'retention' });
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const pass = (): void => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        logHousekeeping(log, await duty());
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

/** Log what a housekeeping pass changed (nothing when it changed nothing). */
export function logHousekeeping(log: Logger, r: HousekeepingResult): void {
  if (r.retention && (r.retention.dropped.length > 0 || r.retention.deletedRows > 0)) {
    log.info({ dropped: r.retention.dropped, deletedRows: r.retention.deletedRows }, 'applied retention');
  }
  if (r.compaction && r.compaction.windows > 0) {
    const { windows, samples, droppedPartitions } = r.compaction;
    log.info({ windows, samples, droppedPartitions }, 'compacted raw samples older than the hot window');
  }
}
