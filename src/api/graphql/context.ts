/**
 * What GraphQL resolvers see: the read ports, the hierarchy reader, per-operation loaders, the
 * event hub for subscriptions, and how a subscription drops a client that cannot keep up. The
 * sample store of an operation reads through the app's read limiter within one budget (time and
 * rows) per HTTP request: an array batch shares it; over WebSocket each operation has its own.
 */
import type { PriceTable } from '../../analytics/prices.js';
import type { EventHub } from '../../events/hub.js';
import type { HierarchyReader } from '../../hierarchy/reader.js';
import type { Coordination } from '../../ports/coordination.js';
import type { SampleStore } from '../../ports/sample-store.js';
import { budgetedStore, type ReadBudget, type ReadLimiter } from '../read-limiter.js';
import { createLoaders, type Loaders } from './loaders.js';

/** Shared by every operation of one app. */
export interface GraphqlServices {
  reader: HierarchyReader;
  coordination: Coordination;
  store: SampleStore;
  /** Event stream for subscriptions (absent: subscriptions answer with an error). */
  hub?: EventHub;
  /** Most events queued for one subscription before its client is dropped. */
  maxQueuedEvents: number;
  /** Bounds sample-store reads (absent: reads go straight to the store). */
  reads?: ReadLimiter;
  /** Prices per GPU-hour for the attribution's cost fields (ANALYTICS_PRICES; absent: `default=1`). */
  prices?: PriceTable;
}

/** Context of one operation. */
export interface GraphqlContext extends GraphqlServices {
  loaders: Loaders;
  /** Drop the client of this operation (a subscription that fell too far behind). */
  dropClient?: () => void;
}

/**
 * A fresh context (new loaders) for one operation. Its store reads count against `budget`, or
 * against a fresh budget of the limiter when none is given.
 */
export function operationContext(
  services: GraphqlServices,
  dropClient?: () => void,
  budget?: ReadBudget,
): GraphqlContext {
  const store = services.reads
    ? budgetedStore(services.store, services.reads, budget ?? services.reads.budget())
    : services.store;
  const ctx: GraphqlContext = { ...services, store, loaders: createLoaders(services.reader, store) };
  if (dropClient) ctx.dropClient = dropClient;
  return ctx;
}
