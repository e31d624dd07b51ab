/**
 * One /ws client: its subscriptions on the event hub, the protocol's replies, liveness for the
 * heartbeat, and the send-buffer bound. Before each send the socket's unsent bytes (what the kernel
 * has not taken yet from earlier turns of the event loop: ./coalesce-sends.ts) are checked: a client
 * over the bound is dropped (close 4503), so a reader that stalls costs at most the bound and one
 * delivery (a snapshot or a round, whatever its size, is never held against a client in the turn it
 * is sent), never the whole stream.
 * A message nested deeper than MAX_MESSAGE_DEPTH is refused unparsed (close 4400), and nothing
 * thrown while handling one message leaves the 'message' handler: it is logged and that connection
 * alone is closed with 1011.
 *
 * A subscription whose filter names a cluster the live hierarchy does not hold gets an `error` with
 * code NOT_FOUND naming the cluster and the known ones (the guide's `my-cluster` on a server started
 * with `--cluster-id local` would otherwise be silence), unless it asks to wait for the cluster with
 * `"waitForCluster": true` (a subscription made before the first ingest in nexus mode). Clusters are
 * looked up through the {@link ClusterDirectory} of the hub (see {@link setClusterDirectory}).
 */
import type { RawData, WebSocket } from 'ws';
import { alertEvents } from '../../alerting/events.js';
import { NexusError } from '../../errors.js';
import { type Cursor, eventCursor, formatCursor } from '../../events/cursor.js';
import { compileFilter, type CompiledFilter } from '../../events/filter.js';
import type { EventHub, EventSubscription } from '../../events/hub.js';
import type { EventFilter, TelemetryEvent } from '../../events/types.js';
import { CLUSTERS_PREFIX, clusterKey, hostsPrefix, parseKey } from '../../hierarchy/paths.js';
import type { Coordination } from '../../ports/coordination.js';
import type { Logger } from '../../util/logger.js';
import { unknownCluster } from '../graphql/resolvers.js';
import { CloseCode, closeThenTerminate, dropSlowSocket } from './close.js';
import { unsentBytes } from './coalesce-sends.js';
import { jsonDepthExceeds, MAX_MESSAGE_DEPTH, parseClientMessage, WS_PROTOCOL } from './protocol.js';
import { alertJson, eventText } from './views.js';

/** Limits and wiring of a connection. */
export interface ConnectionOptions {
  hub: EventHub;
  /** Drop the client when its unsent bytes would exceed this. */
  maxBuffered: number;
  /** Most subscriptions on one connection. */
  maxSubscriptions: number;
  /** Heartbeat interval, announced in `welcome`. */
  heartbeatMs: number;
  /** Largest message accepted, announced in `welcome`. */
  maxPayload: number;
  log: Logger;
  /** Where subscriptions' cluster ids are checked (default: the hub's, see {@link setClusterDirectory}). */
  clusters?: ClusterDirectory;
  /** Store of the alert instances, for `stream: "alerts"` subscriptions (without it they are refused). */
  alerts?: Coordination;
}

/** A subscription to open right away (from the URL's query parameters). */
export interface InitialSubscription {
  filter: EventFilter;
  after?: Cursor;
  snapshot: boolean;
  /** Accept a `filter.clusterId` that is not registered (yet) instead of answering NOT_FOUND. */
  waitForCluster?: boolean;
  /** Deliver events framed together (`events` messages) instead of one `event` message each. */
  batch?: boolean;
  /** `alerts`: the alert instances' state changes instead of the hierarchy's events. */
  stream?: 'telemetry' | 'alerts';
}

/**
 * Alert changes the /ws alerts stream may queue beyond its bursts (src/events/delivery-bound.ts).
 * Its consumer sends each change at once, so the queue only holds the current turn's changes; a
 * client that does not read is bounded by the send buffer (WS_MAX_BUFFERED, 4503).
 */
const MAX_QUEUED_ALERTS = 10_000;

/** The clusters of the live hierarchy, for the unknown-cluster check. */
export interface ClusterDirectory {
  /** Whether the live hierarchy holds any record of this cluster. */
  has(clusterId: string): Promise<boolean>;
  /** Every cluster id, sorted. */
  list(): Promise<string[]>;
}

/** The live hierarchy's clusters in a coordination store (a key read per check; the list on failure). */
export function coordinationClusters(coordination: Coordination): ClusterDirectory {
  return {
    async has(clusterId) {
      if (await coordination.get(clusterKey(clusterId))) return true;
      return (await coordination.range(hostsPrefix(clusterId), { limit: 1, keysOnly: true })).kvs.length > 0;
    },
    async list() {
      const { kvs } = await coordination.range(CLUSTERS_PREFIX, { keysOnly: true });
      const ids = new Set<string>();
      for (const kv of kvs) {
        const parsed = parseKey(kv.key);
        if (parsed) ids.add(parsed.clusterId);
      }
      return [...ids].sort();
    },
  };
}

/** Cluster directories by event hub: the /ws plugin registers its app's, connections look it up. */
const directories = new WeakMap<EventHub, ClusterDirectory>();

/** Make `directory` the one connections on `hub` check subscription cluster ids against. */
export function setClusterDirectory(hub: EventHub, directory: ClusterDirectory): void {
  directories.set(hub, directory);
}

const WAIT_HINT = ' (to wait for a cluster not registered yet, subscribe with "waitForCluster": true)';

interface Entry {
  subscription?: Pick<EventSubscription, 'close'>;
  closed: boolean;
  /** Send what a batched subscription has gathered (a no-op for unbatched ones). */
  flush: () => void;
}

/** Most events in one `events` frame. */
export const MAX_BATCH_EVENTS = 500;
/** A batch is sent early once its text reaches this many characters. */
const MAX_BATCH_CHARS = 256 * 1024;

/** Id of the subscription a connection gets from its URL. */
export const DEFAULT_SUBSCRIPTION_ID = 'default';

/** State and handlers of one /ws connection. */
export class StreamConnection {
  /** Set by any frame from the client; cleared by each heartbeat. */
  alive = true;
  private readonly subs = new Map<string, Entry>();
  private disposed = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly options: ConnectionOptions,
  ) {
    socket.on('message', (data, isBinary) => {
      try {
        this.onMessage(data, isBinary);
      } catch (error) {
        this.internalError(error);
      }
    });
    socket.on('pong', () => (this.alive = true));
    socket.on('close', () => this.dispose());
    socket.on('error', (error) => options.log.debug({ err: error }, 'WebSocket client error'));
    this.sendJson({
      type: 'welcome',
      protocol: WS_PROTOCOL,
      cursor: String(options.hub.head),
      heartbeatMs: options.heartbeatMs,
      maxPayload: options.maxPayload,
      maxBufferedBytes: options.maxBuffered,
      maxSubscriptions: options.maxSubscriptions,
    });
  }

  /** Number of open subscriptions. */
  get subscriptionCount(): number {
    return this.subs.size;
  }

  /** One heartbeat: terminate if nothing came since the last one, else ping (frame and message). */
  heartbeat(now: number): void {
    if (this.disposed) return;
    if (!this.alive) {
      this.options.log.debug('WebSocket client missed a heartbeat; terminating');
      this.dispose();
      this.socket.terminate();
      return;
    }
    this.alive = false;
    try {
      this.socket.ping();
    } catch {
      // A socket that cannot ping is closing; the close handler cleans up.
    }
    this.sendJson({ type: 'heartbeat', time: new Date(now).toISOString() });
  }

  /** Open a subscription (also used for the one from the URL). */
  subscribe(id: string, request: InitialSubscription): void {
    if (this.subs.has(id)) return this.error(id, 'DUPLICATE_ID', `subscription '${id}' already exists`);
    if (this.subs.size >= this.options.maxSubscriptions)
      return this.error(
        id,
        'TOO_MANY_SUBSCRIPTIONS',
        `at most ${this.options.maxSubscriptions} subscriptions per connection`,
      );
    let filter;
    try {
      filter = compileFilter(request.filter);
    } catch (error) {
      return this.fail(id, error);
    }
    const entry: Entry = { closed: false, flush: () => undefined };
    if (request.stream === 'alerts') return this.openAlerts(id, entry, request);
    this.subs.set(id, entry);
    const clusterId = request.filter.clusterId;
    const directory = this.options.clusters ?? directories.get(this.options.hub);
    if (clusterId === undefined || request.waitForCluster === true || !directory)
      return this.open(id, entry, request, filter);
    directory
      .has(clusterId)
      .then(async (known) => {
        if (entry.closed || this.disposed || this.subs.get(id) !== entry) return;
        if (!known) throw unknownCluster(clusterId, await directory.list(), 'filter.clusterId', WAIT_HINT);
        this.open(id, entry, request, filter);
      })
      .catch((error: unknown) => {
        if (this.subs.get(id) !== entry) return;
        this.subs.delete(id);
        this.fail(id, error);
      });
  }

  /** Start a checked subscription on the hub. */
  private open(id: string, entry: Entry, request: InitialSubscription, filter: CompiledFilter): void {
    const idJson = JSON.stringify(id);
    const send = request.batch ? this.batcher(idJson, entry) : undefined;
    const onEvent = (e: TelemetryEvent): void => {
      if (entry.closed) return;
      if (e.eventType === 'RESYNC') {
        entry.flush();
        this.sendJson({
          type: 'resync',
          id,
          cursor: eventCursor(e),
          reason: e.resync?.reason ?? 'restarted',
          snapshotSize: e.resync?.snapshotSize ?? 0,
        });
      } else if (send) send(eventCursor(e), eventText(e, filter));
      else
        this.sendText(
          `{"type":"event","id":${idJson},"cursor":"${eventCursor(e)}","event":${eventText(e, filter)}}`,
        );
    };
    this.options.hub
      .subscribe({
        filter,
        ...(request.after !== undefined ? { after: request.after } : {}),
        snapshot: request.snapshot,
        onReady: (cursor) => {
          entry.flush();
          if (!entry.closed)
            this.sendJson({ type: 'subscribed', id, cursor: formatCursor(cursor), filter: request.filter });
        },
        onEvent,
        onEnd: (error) => {
          entry.flush();
          if (this.subs.get(id) !== entry) return;
          this.subs.delete(id);
          if (error) this.error(id, 'SUBSCRIPTION_ENDED', `subscription ended: ${error.message}`);
          else this.sendJson({ type: 'complete', id });
        },
      })
      .then(
        (subscription) => {
          if (entry.closed || this.disposed) subscription.close();
          else entry.subscription = subscription;
        },
        (error: unknown) => {
          if (this.subs.get(id) === entry) this.subs.delete(id);
          this.fail(id, error);
        },
      );
  }

  /**
   * A subscription to alert state changes (docs/ws-protocol.md, "Alerts"): `subscribed`, the alerts
   * held now when `snapshot` is asked (`alerts`), then one `alert` message per change (PENDING,
   * FIRING, RESOLVED, CANCELLED). Only `filter.clusterId` applies.
   */
  private openAlerts(id: string, entry: Entry, request: InitialSubscription): void {
    const coordination = this.options.alerts;
    if (!coordination) return this.error(id, 'BAD_REQUEST', 'alert streams are not available on this server');
    const { clusterId, ...rest } = request.filter;
    const extra = Object.keys(rest);
    if (extra.length > 0 || request.after !== undefined)
      return this.error(
        id,
        'BAD_REQUEST',
        `an alert stream filters by clusterId only (not ${[...extra, ...(request.after !== undefined ? ['after'] : [])].join(', ')})`,
      );
    this.subs.set(id, entry);
    const controller = new AbortController();
    entry.subscription = { close: () => controller.abort() };
    const events = alertEvents(coordination, {
      ...(clusterId !== undefined ? { clusterId } : {}),
      maxQueued: MAX_QUEUED_ALERTS,
      signal: controller.signal,
      onStart: (alerts, revision) => {
        if (entry.closed) return;
        this.sendJson({
          type: 'subscribed',
          id,
          cursor: String(revision),
          filter: request.filter,
          stream: 'alerts',
        });
        if (request.snapshot) this.sendJson({ type: 'alerts', id, alerts: alerts.map(alertJson) });
      },
    });
    void (async () => {
      try {
        for await (const event of events) {
          if (entry.closed) break;
          this.sendJson({
            type: 'alert',
            id,
            event: { kind: event.kind, revision: String(event.revision), alert: alertJson(event.alert) },
          });
        }
      } catch (error) {
        if (this.subs.get(id) !== entry) return;
        this.subs.delete(id);
        this.error(id, 'SUBSCRIPTION_ENDED', `subscription ended: ${(error as Error).message}`);
      }
    })();
  }

  /**
   * Gather a batched subscription's events and send them as one `events` message at the end of the
   * current turn of the event loop: the hub delivers a store revision's changes (or a snapshot)
   * together, so a write of many GPUs costs the client one message, and no event waits on a timer.
   * A delivery of more than MAX_BATCH_EVENTS (or MAX_BATCH_CHARS) goes out as full messages in its
   * own turn and its rest in the next: that rest is part of the same delivery, so the send-buffer bound, which
   * leaves a turn's own sends out, does not count the delivery's earlier messages against it.
   */
  private batcher(idJson: string, entry: Entry): (cursor: string, eventJson: string) => void {
    let items: string[] = [];
    let chars = 0;
    let last = '';
    let scheduled: NodeJS.Immediate | undefined;
    /** A full message of the current delivery was sent: its rest is exempt from the bound. */
    let partSent = false;
    const send = (bounded: boolean): void => {
      if (items.length === 0) return;
      const text = `{"type":"events","id":${idJson},"cursor":"${last}","events":[${items.join(',')}]}`;
      items = [];
      chars = 0;
      if (!entry.closed) this.sendText(text, bounded);
    };
    const rest = (): void => {
      scheduled = undefined;
      send(!partSent);
      partSent = false;
    };
    entry.flush = () => {
      if (scheduled) clearImmediate(scheduled);
      scheduled = undefined;
      send(!partSent);
      partSent = false;
    };
    return (cursor, eventJson) => {
      const item = `{"cursor":"${cursor}","event":${eventJson}}`;
      items.push(item);
      chars += item.length;
      last = cursor;
      if (items.length >= MAX_BATCH_EVENTS || chars >= MAX_BATCH_CHARS) {
        send(true);
        partSent = true;
      }
      scheduled ??= setImmediate(rest);
    };
  }

  private unsubscribe(id: string): void {
    const entry = this.subs.get(id);
    if (!entry) return this.error(id, 'NOT_FOUND', `no subscription '${id}'`);
    this.subs.delete(id);
    entry.flush();
    entry.closed = true;
    entry.subscription?.close();
    this.sendJson({ type: 'unsubscribed', id });
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.alive = true;
    if (isBinary) return this.reject('binary messages are not part of the protocol');
    const text = rawText(data);
    if (jsonDepthExceeds(text, MAX_MESSAGE_DEPTH))
      return this.reject(`message nested more than ${MAX_MESSAGE_DEPTH} levels deep`);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return this.reject('message is not JSON');
    }
    let message;
    try {
      message = parseClientMessage(value);
    } catch (error) {
      const id = typeof value === 'object' && value !== null ? (value as { id?: unknown }).id : undefined;
      return this.fail(typeof id === 'string' ? id : undefined, error);
    }
    switch (message.type) {
      case 'ping':
        return this.sendJson({
          type: 'pong',
          ...(message.id !== undefined ? { id: message.id } : {}),
          ...(message.payload !== undefined ? { payload: message.payload } : {}),
          cursor: String(this.options.hub.head),
          time: new Date().toISOString(),
        });
      case 'pong':
        return;
      case 'subscribe': {
        const wait = (value as { waitForCluster?: unknown }).waitForCluster;
        if (wait !== undefined && typeof wait !== 'boolean')
          return this.error(message.id, 'BAD_REQUEST', 'waitForCluster must be a boolean');
        return this.subscribe(message.id, {
          filter: message.filter,
          ...(message.after !== undefined ? { after: message.after } : {}),
          snapshot: message.snapshot,
          waitForCluster: wait === true,
          batch: message.batch,
          stream: message.stream,
        });
      }
      case 'unsubscribe':
        return this.unsubscribe(message.id);
    }
  }

  /** Close the connection for a message outside the protocol. */
  private reject(reason: string): void {
    this.dispose();
    closeThenTerminate(this.socket, CloseCode.BadMessage, reason);
  }

  /** Handling a message threw: log it and close this connection (1011); the server runs on. */
  private internalError(error: unknown): void {
    try {
      this.options.log.error({ err: error }, 'WebSocket message handling failed; closing the connection');
      this.dispose();
    } catch {
      // Neither a logger nor a cleanup that throws may take the process down.
    }
    closeThenTerminate(this.socket, CloseCode.InternalError, 'internal server error');
  }

  private fail(id: string | undefined, error: unknown): void {
    if (error instanceof NexusError) return this.error(id, error.code, error.message);
    this.options.log.error({ err: error }, 'WebSocket subscription failed');
    this.error(id, 'INTERNAL', 'Internal server error');
  }

  private error(id: string | undefined, code: string, message: string): void {
    this.sendJson({ type: 'error', ...(id !== undefined ? { id } : {}), code, message });
  }

  private sendJson(value: unknown): void {
    this.sendText(JSON.stringify(value));
  }

  /**
   * Send `text` unless the client has more than `maxBuffered` bytes left unsent from earlier turns
   * (then it is dropped); `bounded` false for the rest of a delivery whose first part was sent in
   * an earlier turn.
   */
  private sendText(text: string, bounded = true): boolean {
    if (this.disposed || this.socket.readyState !== this.socket.OPEN) return false;
    const unsent = unsentBytes(this.socket);
    if (bounded && unsent + text.length > this.options.maxBuffered) {
      this.options.log.warn(
        { buffered: unsent, limit: this.options.maxBuffered },
        'dropping a slow WebSocket client',
      );
      this.dispose();
      dropSlowSocket(this.socket, `send buffer over ${this.options.maxBuffered} bytes`);
      return false;
    }
    this.socket.send(text);
    return true;
  }

  /** Close every subscription; the connection sends nothing more. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const entry of this.subs.values()) {
      entry.closed = true;
      entry.flush(); // drops what was gathered: nothing is sent once closed
      entry.subscription?.close();
    }
    this.subs.clear();
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
