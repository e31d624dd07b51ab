/**
 * Runs the queue conformance suite on the NATS JetStream adapter against a real three-node
 * JetStream cluster started by the harness, with R3 streams. Every handle is its own NatsQueue
 * with its own connection (to a different node in turn), like separate processes.
 */
import { afterAll, beforeAll } from 'vitest';
import { createNatsQueue } from '../../src/adapters/nats/queue.js';
import { queueConformance } from '../conformance/queue.js';
import { startNatsCluster, type NatsHandle } from '../harness/nats.js';

let nats: NatsHandle;
let opened = 0;

beforeAll(async () => {
  nats = await startNatsCluster({ nodes: 3 });
}, 60_000);

afterAll(async () => {
  await nats?.stop();
});

queueConformance(
  'nats',
  async (options) => {
    // Rotate the first server so the handles of one case talk to different nodes.
    const first = opened++ % nats.urls.length;
    const servers = [...nats.urls.slice(first), ...nats.urls.slice(0, first)];
    const queue = await createNatsQueue({ ...options, servers, replicas: 3 });
    return { queue, teardown: () => queue.close() };
  },
  // Waiting claims are pull requests the server answers as soon as an item arrives; the stream is
  // replicated on the servers, not in the handle.
  { watch: true, claimExpiry: true, multipleConsumers: true, persistence: true },
);
