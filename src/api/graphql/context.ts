/**
 * What GraphQL resolvers see: the read ports, the hierarchy reader, per-operation loaders, the
 * event hub for subscriptions, and how a subscription drops a client that cannot keep up.
 */
import type { EventHub } from '../../events/hub.js';
import type { HierarchyReader } from '../../hierarchy/reader.js';
import type { Coordination } from '../../ports/coordination.js';
import type { SampleStore } from '../../ports/sample-store.js';
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
}

/** Context of one operation. */
export interface GraphqlContext extends GraphqlServices {
  loaders: Loaders;
  /** Drop the client of this operation (a subscription that fell too far behind). */
  dropClient?: () => void;
}

/** A fresh context (new loaders) for one operation. */
export function operationContext(services: GraphqlServices, dropClient?: () => void): GraphqlContext {
  const ctx: GraphqlContext = { ...services, loaders: createLoaders(services.reader) };
  if (dropClient) ctx.dropClient = dropClient;
  return ctx;
}
