/**
 * Alerts for the GraphQL API and /ws: the alert instances the evaluating process keeps in the coordination
 * store (`/telemetry/alerts/{cluster}/active/...`), as a list and as a stream of state changes (a
 * watch of that prefix from the revision of the first read). Each instance's writes become one event
 * per change of state: PENDING, FIRING, RESOLVED, or CANCELLED when a pending alert's condition ended
 * before its `for` passed.
 */
import { DeliveryBound } from '../events/delivery-bound.js';
import type { Coordination, Watcher } from '../ports/coordination.js';
import type { StoredAlert } from './state-store.js';

const PREFIX = '/telemetry/alerts/';

/** One alert as the API shows it. */
export interface AlertNode {
  id: string;
  clusterId: string;
  fingerprint: string;
  name: string;
  state: 'PENDING' | 'FIRING' | 'INACTIVE';
  labels: { name: string; value: string }[];
  annotations: { name: string; value: string }[];
  value: number;
  activeAt: number;
  firedAt: number | null;
  resolvedAt: number | null;
}

/** One change of an alert's state. */
export interface AlertEventNode {
  kind: 'PENDING' | 'FIRING' | 'RESOLVED' | 'CANCELLED';
  /** Coordination revision of the write. */
  revision: number;
  alert: AlertNode;
}

const pairs = (m: Record<string, string>) =>
  Object.keys(m)
    .sort()
    .map((name) => ({ name, value: m[name]! }));

/** The key's cluster and alert, or undefined for another key. */
function parseKey(key: string): { clusterId: string; id: string } | undefined {
  const parts = key.slice(PREFIX.length).split('/');
  if (!key.startsWith(PREFIX) || parts.length !== 3 || parts[1] !== 'active') return undefined;
  return { clusterId: decodeURIComponent(parts[0]!), id: decodeURIComponent(parts[2]!) };
}

function node(clusterId: string, a: StoredAlert): AlertNode {
  return {
    id: `${clusterId}/${a.id}`,
    clusterId,
    fingerprint: a.fingerprint,
    name: a.labels.alertname ?? '',
    state: a.state === 'pending' ? 'PENDING' : a.state === 'firing' ? 'FIRING' : 'INACTIVE',
    labels: pairs(a.labels),
    annotations: pairs(a.annotations),
    value: a.value,
    activeAt: a.activeAt,
    firedAt: a.firedAt ?? null,
    resolvedAt: a.resolvedAt ?? null,
  };
}

function parse(value: string): StoredAlert | undefined {
  try {
    return JSON.parse(value) as StoredAlert;
  } catch {
    return undefined;
  }
}

/** Every alert instance held (pending, firing, resolved but not yet notified), optionally of one cluster. */
export async function listAlerts(coordination: Coordination, clusterId?: string): Promise<AlertNode[]> {
  const { kvs } = await coordination.range(
    clusterId === undefined ? PREFIX : `${PREFIX}${encodeURIComponent(clusterId)}/active/`,
  );
  const out: AlertNode[] = [];
  for (const kv of kvs) {
    const where = parseKey(kv.key);
    const a = where && parse(kv.value);
    if (where && a) out.push(node(where.clusterId, a));
  }
  return out.sort((x, y) => x.activeAt - y.activeAt || x.id.localeCompare(y.id));
}

/** Options of {@link alertEvents}. */
export interface AlertEventsOptions {
  clusterId?: string;
  /**
   * Most events a consumer may leave queued beyond twice the largest burst (the changes of one
   * turn of the event loop) since it last caught up; beyond, the stream fails
   * (../events/delivery-bound.ts).
   */
  maxQueued: number;
  onOverflow?: () => void;
  /** Called once with the alerts held when the stream starts, and the revision they were read at. */
  onStart?: (alerts: AlertNode[], revision: number) => void;
  /** Ends the stream (the generator returns) even while it waits for the next change. */
  signal?: AbortSignal;
}

/** Stream the state changes of alerts from now on; `return()` stops the watch. */
export async function* alertEvents(
  coordination: Coordination,
  options: AlertEventsOptions,
): AsyncGenerator<AlertEventNode, undefined, unknown> {
  const prefix =
    options.clusterId === undefined ? PREFIX : `${PREFIX}${encodeURIComponent(options.clusterId)}/active/`;
  const first = await coordination.range(prefix);
  const last = new Map<string, StoredAlert>();
  const held: AlertNode[] = [];
  for (const kv of first.kvs) {
    const where = parseKey(kv.key);
    const a = where && parse(kv.value);
    if (!where || !a) continue;
    last.set(kv.key, a);
    held.push(node(where.clusterId, a));
  }
  options.onStart?.(
    held.sort((x, y) => x.activeAt - y.activeAt || x.id.localeCompare(y.id)),
    first.revision,
  );
  const queue: AlertEventNode[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  const bound = new DeliveryBound(options.maxQueued);
  const push = (event: AlertEventNode): void => {
    if (failure !== undefined) return;
    // One evaluation may change every alert held, written in several transactions (several
    // turns on etcd): allow that burst whole.
    if (bound.overflows(queue.length, last.size)) {
      failure ??= new Error('alert event queue overflow: the client is too slow');
      options.onOverflow?.();
    } else queue.push(event);
    wake?.();
  };
  const watcher: Watcher = await coordination.watch(prefix, {
    fromRevision: first.revision + 1,
    onEvent: (event) => {
      const key = event.type === 'put' ? event.kv.key : event.key;
      const where = parseKey(key);
      if (where === undefined) return;
      const before = last.get(key);
      if (event.type === 'delete') {
        last.delete(key);
        if (before?.state === 'pending')
          push({
            kind: 'CANCELLED',
            revision: event.revision,
            alert: { ...node(where.clusterId, before), state: 'INACTIVE' },
          });
        return;
      }
      const a = parse(event.kv.value);
      if (a === undefined) return;
      last.set(key, a);
      if (before?.state === a.state) return;
      const kind = a.state === 'pending' ? 'PENDING' : a.state === 'firing' ? 'FIRING' : 'RESOLVED';
      push({ kind, revision: event.revision, alert: node(where.clusterId, a) });
    },
    onError: (error) => {
      failure ??= error;
      wake?.();
    },
  });
  const stop = (): void => wake?.();
  options.signal?.addEventListener('abort', stop);
  try {
    for (;;) {
      while (queue.length > 0 && options.signal?.aborted !== true) yield queue.shift()!;
      if (options.signal?.aborted === true) return undefined;
      if (failure !== undefined) throw failure;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    options.signal?.removeEventListener('abort', stop);
    await watcher.cancel().catch(() => undefined);
  }
}

/**
 * {@link alertEvents} as an iterator whose `return()` ends the stream at once: graphql-ws completes a
 * subscription with `return()`, which on a bare async generator waits for the pending `next()` (the
 * next alert change, maybe never) before the watch is cancelled.
 */
export function alertEventIterator(
  coordination: Coordination,
  options: Omit<AlertEventsOptions, 'signal'>,
): AsyncIterableIterator<AlertEventNode> {
  const controller = new AbortController();
  const events = alertEvents(coordination, { ...options, signal: controller.signal });
  const done = (): IteratorResult<AlertEventNode> => ({ done: true, value: undefined });
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next: () => events.next(),
    async return() {
      controller.abort();
      await events.return(undefined);
      return done();
    },
    async throw(error?: unknown) {
      controller.abort();
      await events.return(undefined);
      throw error;
    },
  };
}
