/**
 * The real in-process queue (the embedded adapter) with a record of every batch published to it, for
 * tests of what the streamer publishes. Its depth bound is high, so no consumer is needed.
 */
import { createEmbeddedQueue } from '../../src/adapters/embedded/queue.js';
import { decodeBatch } from '../../src/domain/batch-codec.js';
import type { Batch } from '../../src/domain/types.js';
import type { Queue } from '../../src/ports/queue.js';

/** An embedded queue whose enqueued batches are also decoded into `batches`, in order. */
export function recordingQueue(): { queue: Queue; batches: Batch[] } {
  const batches: Batch[] = [];
  const real = createEmbeddedQueue({ topic: 't', maxDepth: 1_000_000 });
  const queue: Queue = {
    topic: real.topic,
    enqueue: async (payload) => {
      const id = await real.enqueue(payload);
      batches.push(decodeBatch(payload));
      return id;
    },
    claim: (consumerId, options) => real.claim(consumerId, options),
    ack: (item) => real.ack(item),
    release: (item) => real.release(item),
    depth: () => real.depth(),
    close: () => real.close(),
  };
  return { queue, batches };
}
