/**
 * A hub subscription as an async iterator (what GraphQL subscriptions consume), with a bounded
 * queue: a consumer that falls `maxQueued` events behind is cut off (`onOverflow`, then the iterator
 * fails) instead of growing memory.
 */
import type { EventHub, EventSubscription, SubscribeOptions } from './hub.js';
import type { TelemetryEvent } from './types.js';

/** Options of {@link subscribeIterator}. */
export interface EventIteratorOptions extends Pick<SubscribeOptions, 'filter' | 'after' | 'snapshot'> {
  /** Most events queued for a consumer that has not asked for them yet. */
  maxQueued: number;
  /** Called once when the queue overflows (the transport drops the client). */
  onOverflow?: () => void;
}

/** Subscribe to `hub` and iterate over the events; `return()` unsubscribes. */
export function subscribeIterator(
  hub: EventHub,
  options: EventIteratorOptions,
): AsyncGenerator<TelemetryEvent, undefined, unknown> {
  const queue: TelemetryEvent[] = [];
  let waiting:
    | { resolve: (r: IteratorResult<TelemetryEvent, undefined>) => void; reject: (e: unknown) => void }
    | undefined;
  let failure: unknown;
  let done = false;
  let subscription: EventSubscription | undefined;

  const finish = (error?: unknown): void => {
    if (done) return;
    done = true;
    failure = error;
    subscription?.close();
    queue.length = 0;
    const w = waiting;
    waiting = undefined;
    if (w) {
      if (error === undefined) w.resolve({ done: true, value: undefined });
      else w.reject(error);
    }
  };

  const push = (event: TelemetryEvent): void => {
    if (done) return;
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w.resolve({ done: false, value: event });
      return;
    }
    if (queue.length >= options.maxQueued) {
      options.onOverflow?.();
      finish(new Error(`slow consumer: fell ${options.maxQueued} events behind and was dropped`));
      return;
    }
    queue.push(event);
  };

  hub
    .subscribe({
      filter: options.filter,
      after: options.after,
      snapshot: options.snapshot,
      onEvent: push,
      onEnd: (error) => finish(error),
    })
    .then(
      (s) => {
        subscription = s;
        if (done) s.close();
      },
      (error: unknown) => finish(error),
    );

  const iterator: AsyncGenerator<TelemetryEvent, undefined, unknown> = {
    next(): Promise<IteratorResult<TelemetryEvent, undefined>> {
      const event = queue.shift();
      if (event) return Promise.resolve({ done: false, value: event });
      if (done) {
        if (failure !== undefined) {
          const error = failure;
          failure = undefined;
          return Promise.reject(error);
        }
        return Promise.resolve({ done: true, value: undefined });
      }
      return new Promise((resolve, reject) => (waiting = { resolve, reject }));
    },
    return(): Promise<IteratorResult<TelemetryEvent, undefined>> {
      finish();
      return Promise.resolve({ done: true, value: undefined });
    },
    throw(error: unknown): Promise<IteratorResult<TelemetryEvent, undefined>> {
      finish();
      return Promise.reject(error);
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
