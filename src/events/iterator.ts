/**
 * A hub subscription as an async iterator (what GraphQL subscriptions consume), with a bounded
 * queue: a consumer that has more events waiting than `maxQueued` plus twice the largest delivery
 * it has been handed since it last caught up is cut off (`onOverflow`, then the iterator fails)
 * instead of growing memory (./delivery-bound.ts). A delivery is what the hub hands over in one
 * turn of the event loop: a store revision's changes, a snapshot (up to one event per GPU), a
 * catch-up from a cursor (up to EVENT_HISTORY events).
 */
import { DeliveryBound } from './delivery-bound.js';
import type { EventHub, EventSubscription, SubscribeOptions } from './hub.js';
import type { TelemetryEvent } from './types.js';

/** Options of {@link subscribeIterator}. */
export interface EventIteratorOptions extends Pick<SubscribeOptions, 'filter' | 'after' | 'snapshot'> {
  /**
   * Most events a consumer may leave queued beyond twice the largest delivery (events handed over
   * in one turn of the event loop) it has been handed since it last caught up; past that it is cut
   * off.
   */
  maxQueued: number;
  /** Called once when the queue overflows (the transport drops the client). */
  onOverflow?: () => void;
}

/** An event iterator that can also hand over what is already queued, without waiting. */
export interface EventIterator extends AsyncGenerator<TelemetryEvent, undefined, unknown> {
  /** Remove and return up to `max` queued events, oldest first (none: an empty array). */
  takeQueued(max: number): TelemetryEvent[];
}

/** Subscribe to `hub` and iterate over the events; `return()` unsubscribes. */
export function subscribeIterator(hub: EventHub, options: EventIteratorOptions): EventIterator {
  const queue: TelemetryEvent[] = [];
  const bound = new DeliveryBound(options.maxQueued);
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
      bound.overflows(0);
      const w = waiting;
      waiting = undefined;
      w.resolve({ done: false, value: event });
      return;
    }
    if (bound.overflows(queue.length)) {
      options.onOverflow?.();
      finish(
        new Error(
          `slow consumer: fell ${queue.length} events behind (bound ${options.maxQueued} + twice the largest delivery, ${bound.largestDelivery}) and was dropped`,
        ),
      );
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

  const iterator: EventIterator = {
    takeQueued(max: number): TelemetryEvent[] {
      return queue.splice(0, max);
    },
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

/** Most events in one batch of {@link subscribeBatchIterator} (as the /ws `events` frames). */
export const MAX_EVENTS_PER_BATCH = 500;

/** Longest a batch gathers after its first event (ms), when every turn brings another. */
const MAX_GATHER_MS = 5;

/** A number per event object, to key shared batches by their events' identities. */
const eventIds = new WeakMap<TelemetryEvent, number>();
let nextEventId = 0;
/**
 * Batches made in this turn of the event loop, by the identities of their events. Subscribers
 * handed one delivery of the hub finish gathering it in the same turn; the map is dropped at the
 * next one, so no batch outlives its delivery here.
 */
let recentBatches: Map<string, readonly TelemetryEvent[]> | undefined;

/**
 * The one array object for this sequence of events: subscribers handed the same events (the hub
 * hands every subscriber the same event objects) get the same batch, so GraphQL's shared execution
 * (src/api/graphql/shared-subscribe.ts, keyed by the payload object) runs once per batch and
 * operation, not once per subscriber.
 */
function sharedBatch(events: TelemetryEvent[]): readonly TelemetryEvent[] {
  const key = events
    .map((e) => {
      let id = eventIds.get(e);
      if (id === undefined) eventIds.set(e, (id = nextEventId++));
      return id;
    })
    .join(',');
  if (recentBatches === undefined) {
    const made = (recentBatches = new Map());
    setImmediate(() => {
      if (recentBatches === made) recentBatches = undefined;
    });
  }
  let batch = recentBatches.get(key);
  if (!batch) recentBatches.set(key, (batch = Object.freeze(events)));
  return batch;
}

/**
 * {@link subscribeIterator} in batches: each step is the first event to come and every event
 * that follows it before a turn of the event loop passes without one (at most
 * {@link MAX_EVENTS_PER_BATCH}, and at most {@link MAX_GATHER_MS} after the first), as the /ws
 * `events` frames gather them. The hub hands over a store revision's changes (one collector write
 * of many GPUs, or a whole snapshot) back to back, so a revision (or several written back to back)
 * arrives as one batch and costs a subscriber one message. `return()` while a batch is gathering
 * ends it: that batch is dropped, not delivered after the subscriber left.
 */
export function subscribeBatchIterator(
  hub: EventHub,
  options: EventIteratorOptions,
): AsyncGenerator<readonly TelemetryEvent[], undefined, unknown> {
  const source = subscribeIterator(hub, options);
  let closed = false;
  const iterator: AsyncGenerator<readonly TelemetryEvent[], undefined, unknown> = {
    async next(): Promise<IteratorResult<readonly TelemetryEvent[], undefined>> {
      const first = await source.next();
      if (first.done === true || closed) return { done: true, value: undefined };
      // The rest of the revision: the hub hands its changes over back to back, each after the
      // other's handler. Gather until a turn of the event loop passes without a new one.
      const events = [first.value];
      const start = performance.now();
      while (events.length < MAX_EVENTS_PER_BATCH && performance.now() - start < MAX_GATHER_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        if (closed) return { done: true, value: undefined };
        const more = source.takeQueued(MAX_EVENTS_PER_BATCH - events.length);
        if (more.length === 0) break;
        events.push(...more);
      }
      return { done: false, value: sharedBatch(events) };
    },
    async return(): Promise<IteratorResult<readonly TelemetryEvent[], undefined>> {
      closed = true;
      await source.return(undefined);
      return { done: true, value: undefined };
    },
    async throw(error: unknown): Promise<IteratorResult<readonly TelemetryEvent[], undefined>> {
      closed = true;
      await source.throw(error);
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
