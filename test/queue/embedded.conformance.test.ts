/**
 * Runs the queue conformance suite on the embedded adapter. Handles opened on the same topic share
 * one in-process queue, the way consumers in one process would.
 */
import { createEmbeddedQueue, type EmbeddedQueue } from '../../src/adapters/embedded/queue.js';
import { queueConformance } from '../conformance/queue.js';

const shared = new Map<string, { queue: EmbeddedQueue; handles: number }>();

queueConformance('embedded', async (options) => {
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
});
