/**
 * Runs the queue conformance suite on the embedded adapter. Handles opened on the same topic share
 * one in-process queue, the way consumers in one process would. Declares no `persistence`: the
 * queue lives in process memory and its items end with the last handle's close().
 */
import { createEmbeddedQueue, type EmbeddedQueue } from '../../src/adapters/embedded/queue.js';
import { type QueueCapabilities, queueConformance } from '../conformance/queue.js';

const capabilities: QueueCapabilities = {
  watch: true, // waiting claims are woken by in-process events
  claimExpiry: true,
  multipleConsumers: true, // several consumers of one in-process queue
  persistence: 'an in-process queue: its items live in memory and end with close()',
};

const shared = new Map<string, { queue: EmbeddedQueue; handles: number }>();

queueConformance(
  'embedded',
  async (options) => {
    let entry = shared.get(options.topic);
    if (entry === undefined) {
      entry = { queue: createEmbeddedQueue(options), handles: 0 };
      shared.set(options.topic, entry);
    }
    entry.handles += 1;
    const current = entry;
    return {
      queue: current.queue,
      teardown: async () => {
        current.handles -= 1;
        if (current.handles === 0) {
          shared.delete(options.topic);
          await current.queue.close();
        }
      },
    };
  },
  capabilities,
);
