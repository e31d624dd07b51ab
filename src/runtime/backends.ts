/**
 * Opens what a {@link Topology} names, through the backend registry (`registry.ts`): the queue a
 * process publishes to, the queues it consumes, its coordination store and its sample store. The
 * registry imports each adapter dynamically, so a process loads only the client libraries (etcd3,
 * ioredis, pg, PGlite, node-sqlite3-wasm) of the backends its topology names.
 */
import { queueDepthFor, type Config } from '../config/config.js';
import { NexusError } from '../errors.js';
import type { Coordination } from '../ports/coordination.js';
import type { Queue } from '../ports/queue.js';
import type { SampleStore } from '../ports/sample-store.js';
import type { Logger } from '../util/logger.js';
import { openCoordination, openQueue, openSampleStore, queueBackend, queueTopics } from './registry.js';
import type { Topology } from './topology.js';

/** Backpressure bound of a queue of `kind`: the in-process default or the shared one (QUEUE_MAX_DEPTH wins). */
function maxDepthOf(kind: string, config: Config): number {
  return queueDepthFor(config, queueBackend(kind).shared ? 'shared' : 'embedded');
}

/** The queue the topology publishes to, on the first topic of its backend. */
export async function openProducerQueue(topology: Topology, config: Config): Promise<Queue> {
  const kind = topology.produce;
  if (kind === undefined) {
    throw new NexusError('CONFIG_INVALID', `a ${topology.role} process publishes to no queue`);
  }
  const topic = queueTopics(kind, config)[0] ?? 'telemetry';
  // No claimTtlMs: a producer claims nothing, and on NATS it would reset the collectors' ack_wait.
  return openQueue(kind, config, { topic, maxDepth: maxDepthOf(kind, config) });
}

/**
 * The queues the topology consumes: one per topic of each consumed backend (every Redis topic of
 * REDIS_TOPICS, the etcd queue's one). On failure the queues opened so far are closed.
 */
export async function openConsumerQueues(topology: Topology, config: Config): Promise<Queue[]> {
  const queues: Queue[] = [];
  try {
    for (const kind of topology.consume) {
      for (const topic of queueTopics(kind, config)) {
        queues.push(
          await openQueue(kind, config, {
            topic,
            maxDepth: maxDepthOf(kind, config),
            claimTtlMs: config.CLAIM_TTL,
          }),
        );
      }
    }
  } catch (error) {
    await Promise.allSettled(queues.map((q) => q.close()));
    throw error;
  }
  return queues;
}

/** The topology's coordination store, or undefined when it has none (traditional mode). */
export async function openTopologyCoordination(
  topology: Topology,
  config: Config,
): Promise<Coordination | undefined> {
  return topology.coordination === undefined ? undefined : openCoordination(topology.coordination, config);
}

/** The topology's sample store, migrated (PostgreSQL applies migrations once, under a lock). */
export async function openTopologySampleStore(
  topology: Topology,
  config: Config,
  logger: Logger,
): Promise<SampleStore> {
  if (topology.samples === undefined) {
    throw new NexusError('CONFIG_INVALID', `a ${topology.role} process has no sample store`);
  }
  const store = await openSampleStore(topology.samples, config, logger);
  try {
    await store.migrate();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  return store;
}
