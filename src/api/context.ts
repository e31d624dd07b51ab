/**
 * What the REST route modules share: the app's dependencies (ports, logger, metrics, readiness
 * checks), the hierarchy reader built over the coordination store, and the read limiter every
 * sample-store read of a request goes through ({@link requestStore}).
 */
import type { Logger } from 'pino';
import type { HierarchyReader } from '../hierarchy/reader.js';
import type { PipelineMetrics } from '../metrics/registry.js';
import type { Coordination } from '../ports/coordination.js';
import type { SampleStore } from '../ports/sample-store.js';
import { budgetedStore, type ReadLimiter } from './read-limiter.js';

/** Everything the API needs from the rest of the process. */
export interface ApiDeps {
  /** Live hierarchy (read only). */
  coordination: Coordination;
  /** Time series and dead letters (read only). */
  store: SampleStore;
  logger: Logger;
  metrics: PipelineMetrics;
  /** A host or GPU is active while `now() - lastSeenMs <= staleAfterMs`. */
  staleAfterMs: number;
  /** Dependency checks for /ready: name -> check function that throws when down. */
  readiness: Record<string, () => Promise<void>>;
  /** Clock in ms since the epoch; defaults to Date.now. */
  now?: () => number;
}

/** Options handed to every route plugin. */
export interface ApiContext {
  deps: ApiDeps;
  reader: HierarchyReader;
  /** Longest a single readiness check may take before it counts as failed. */
  readinessTimeoutMs: number;
  /** Bounds the sample-store reads of every request (concurrency, queue, time and row budgets). */
  reads: ReadLimiter;
}

/**
 * The sample store as one request may read it: every read waits for a slot of the app's limiter
 * and counts against a fresh budget (READ_TIMEOUT, READ_MAX_ROWS) for this request. Call once per
 * request and use the result for all of its reads.
 */
export function requestStore(ctx: ApiContext): SampleStore {
  return budgetedStore(ctx.deps.store, ctx.reads, ctx.reads.budget());
}
