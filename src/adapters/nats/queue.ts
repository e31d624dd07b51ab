/**
 * NATS JetStream queue adapter: one work-queue stream per topic (`NEXUS_<topic>`, retention
 * workqueue, R1 or R3), read by one durable pull consumer (`collectors`) that every handle on the
 * topic shares. Acks are explicit and double-acked (the server confirms them); an unacked item
 * comes back after `claimTtlMs` (the consumer's ack_wait), `release` is a nak (redelivery at once),
 * `deliveries` is the server's delivery count. Enqueue publishes with `Nats-Msg-Id` = SHA-256 of
 * the payload, so a batch re-published after a crash (or a publish retried after a lost pub-ack)
 * within the stream's duplicate window is stored once. Backpressure is the handle's: enqueue reads
 * the stream's message count and waits while it is at maxDepth. The stream itself has no message
 * limit: on nats-server 2.9 a replicated work-queue stream with `max_msgs` and `discard new`
 * desynchronises its replicas (each replica checks the limit when it applies a message, while the
 * acks that remove items reach the replicas at other moments, so a replica refuses a message the
 * leader stored and confirmed); a consumer leader on such a replica never delivers the message, and
 * a new stream leader reuses its sequence after a failover. Both lose items (issue 21).
 *
 * What JetStream does not give, the handle keeps locally: a claim's deadline (the consumer forgets
 * nothing when ack_wait lapses, so a late ack is refused here, a margin before the server's
 * redelivery), the claims it already settled, and the sequences acked lately on the topic (each ack
 * is announced on `nexus.freed.<topic>`): after its consumer leader is killed, nats-server 2.9 can
 * hand out again (with deliveries 1) items the old leader had delivered or seen acked; a handle
 * drops (and re-acks) the acked ones it knows of instead of returning them. Delivery stays
 * at-least-once; the collectors' batch ledger makes storage exactly-once.
 */
import { createHash } from 'node:crypto';
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { NexusError } from '../../errors.js';
import {
  normalizeClaimOptions,
  normalizeQueueOptions,
  type ClaimedItem,
  type ClaimOptions,
  type Queue,
  type QueueOptions,
} from '../../ports/queue.js';
import { ProducerLine } from '../producer-line.js';
import {
  apiCode,
  connectNats,
  freedSubject,
  itemSubject,
  streamName,
  toNexusError,
  type NatsConnectionOptions,
} from './connection.js';

/** Default durable consumer shared by every collector of a topic. */
export const DEFAULT_CONSUMER = 'collectors';
/** Default stream replicas (R1: one server; use 3 on a three-node cluster). */
export const DEFAULT_REPLICAS = 1;
/** Default window in which a re-published payload is recognised as a duplicate. */
export const DEFAULT_DUPLICATE_WINDOW_MS = 120_000;
/** Default time enqueue and ack keep retrying while JetStream is unreachable (leader election, failover). */
export const DEFAULT_RETRY_FOR_MS = 30_000;

const MAX_MESSAGES_EXCEEDED = 10077;
/** JetStream's "no limit" for a stream's max_msgs. */
const NO_LIMIT = -1;
const STREAM_NOT_FOUND = 10059;
/**
 * JetStream API errors that no retry will change: replicas > 1 on a server without a cluster, a
 * stream's replicas changed, a stream name in use with another configuration (with the two above).
 */
const PERMANENT_API_CODES: ReadonlySet<number> = new Set([
  MAX_MESSAGES_EXCEEDED,
  STREAM_NOT_FOUND,
  10074,
  10061,
  10058,
]);
const CONSUMER_NOT_FOUND = 10014;
/** Longest a producer held by backpressure waits for an ack announcement before counting again. */
const BACKPRESSURE_RECHECK_MS = 250;
/** How long a handle remembers the sequences acked on its topic (see the header). */
const ACKED_MEMORY_MS = 10 * 60_000;
/** Most acked sequences a handle remembers. */
const ACKED_MEMORY_MAX = 100_000;
/** Grace beyond a pull request's own expiry before the client gives up on the server's answer. */
const PULL_GRACE_MS = 2_000;
/** Longest a claim that does not wait gives the stream to signal its consumer of a stored item. */
const SIGNAL_LAG_MS = 1_000;
const encoder = new TextEncoder();
const ACK = encoder.encode('+ACK');
const NAK = encoder.encode('-NAK');

/** Options of {@link createNatsQueue}. */
export interface NatsQueueOptions extends QueueOptions, NatsConnectionOptions {
  /** Stream replicas when the adapter creates the stream (default 1; at most the cluster size). */
  replicas?: number;
  /** Durable consumer name shared by the collectors of the topic (default `collectors`). */
  consumer?: string;
  /** The stream's duplicate window in ms (default 120 000). */
  duplicateWindowMs?: number;
  /** How long enqueue and ack retry while JetStream is unreachable, in ms (default 30 000). */
  retryForMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Delivery count and stream sequence from a `$JS.ACK...` reply subject (v1 and v2 layouts). */
function parseAckSubject(reply: string): { deliveries: number; seq: number } | undefined {
  const t = reply.split('.');
  if (t[0] !== '$JS' || t[1] !== 'ACK') return undefined;
  const at = t.length === 9 ? 4 : t.length >= 11 ? 6 : -1;
  if (at < 0) return undefined;
  const deliveries = Number(t[at]);
  const seq = Number(t[at + 1]);
  return Number.isInteger(deliveries) && Number.isInteger(seq) ? { deliveries, seq } : undefined;
}

/** The claim token: the local deadline (ms since epoch) and the ack subject. */
function makeToken(deadline: number, reply: string): string {
  return `${deadline} ${reply}`;
}

function parseToken(token: string): { deadline: number; reply: string } | undefined {
  const space = token.indexOf(' ');
  const deadline = Number(token.slice(0, space));
  const reply = token.slice(space + 1);
  if (space < 0 || !Number.isFinite(deadline) || !reply.startsWith('$JS.ACK.')) return undefined;
  return { deadline, reply };
}

/**
 * Transient failures worth retrying while the cluster fails over: timeouts, no responders (no
 * stream leader yet: the client reports "jetstream is not enabled"), a connection being re-made,
 * and JetStream API errors other than a full or missing stream. Looks through `cause` chains.
 */
function transient(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = apiCode(e);
    if (code !== undefined) return !PERMANENT_API_CODES.has(code);
    if (/Timeout|NoResponders|RequestError|ClosedConnection/.test(e.name)) return true;
    if (/timeout|no responders|not enabled|503|disconnect|reconnect|closed/i.test(e.message)) return true;
  }
  return false;
}

/** {@link Queue} on a NATS JetStream work-queue stream; see the port for the delivery contract. */
export class NatsQueue implements Queue {
  readonly topic: string;
  private readonly claimTtlMs: number;
  private readonly maxDepth: number;
  /** Enqueues past the depth check whose publish is not confirmed yet: counted against maxDepth. */
  private admitting = 0;
  /** Refuse acks this long before the server's ack_wait lapses (network time of the ack itself). */
  private readonly marginMs: number;
  private readonly retryForMs: number;
  private readonly stream: string;
  private readonly subject: string;
  private readonly consumer: string;
  private readonly js: JetStreamClient;
  /** Claims this handle acked or released, with their deadlines (pruned once past them). */
  private readonly settled = new Map<string, number>();
  /** Stream sequences acked lately on the topic (by any handle), with when: never handed out again. */
  private readonly acked = new Map<number, number>();
  /** Pull requests in flight: ended (to `[]`) by close(). */
  private readonly pulls = new Set<() => void>();
  private readonly spaceWaiters = new Set<() => void>();
  private readonly producers = new ProducerLine();
  private readonly freedSub: Subscription;
  private closed = false;

  /** Use {@link createNatsQueue}, which connects and sets up the stream and consumer first. */
  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    options: NatsQueueOptions,
  ) {
    const normalized = normalizeQueueOptions(options);
    this.topic = normalized.topic;
    this.claimTtlMs = normalized.claimTtlMs;
    this.maxDepth = normalized.maxDepth;
    this.marginMs = Math.min(Math.max(this.claimTtlMs / 10, 5), 2_000);
    this.retryForMs = options.retryForMs ?? DEFAULT_RETRY_FOR_MS;
    this.stream = streamName(this.topic);
    this.subject = itemSubject(this.topic);
    this.consumer = options.consumer ?? DEFAULT_CONSUMER;
    this.js = jetstream(nc, { timeout: 5_000 });
    this.freedSub = this.nc.subscribe(freedSubject(this.topic), {
      callback: (_error, msg) => {
        const seq = Number(new TextDecoder().decode(msg.data));
        if (Number.isInteger(seq) && seq > 0) this.rememberAcked(seq);
        for (const wake of this.spaceWaiters) wake();
      },
    });
  }

  /** The JetStream stream holding this topic (for `nats stream info`). */
  get streamName(): string {
    return this.stream;
  }

  /**
   * Add one item. While the stream holds maxDepth items this waits (woken by acks, re-checked
   * every 250 ms); transient failures are retried for `retryForMs` with the same message id, so a
   * retried publish is stored once. The bound is exact for one handle; handles in different
   * processes that check at the same instant may each add one item past it.
   */
  async enqueue(payload: Uint8Array): Promise<string> {
    this.assertOpen();
    const data = payload.slice();
    const msgID = createHash('sha256').update(data).digest('base64url');
    if (this.producers.waiting === 0 && (await this.admit())) {
      const id = await this.publishAdmitted(data, msgID);
      if (id !== undefined) return id;
    }
    return this.producers.join(() => this.enqueueWhenFree(data, msgID));
  }

  /** Claim up to `max` items from the shared durable consumer, waiting up to `waitMs` for the first. */
  async claim(consumerId: string, options?: ClaimOptions): Promise<ClaimedItem[]> {
    this.assertOpen();
    const { max, waitMs } = normalizeClaimOptions(options);
    if (consumerId.length === 0) throw new NexusError('BAD_REQUEST', 'consumerId must not be empty');
    const deadline = performance.now() + waitMs;
    let items = await this.pull(max, 0);
    // A waiting pull is answered as soon as the consumer hears of an item, so only what a no_wait
    // pull returned (nothing while not waiting, or part of `max`) may miss stored items.
    while (items.length === 0 && waitMs > 0 && !this.closed) {
      const remaining = Math.floor(deadline - performance.now());
      if (remaining <= 0) return [];
      items = await this.pullFirst(max, remaining);
    }
    if (this.closed) return [];
    if (items.length < max && (await this.storedButUnannounced())) {
      // Bounded well inside the claims already taken (their deadlines run meanwhile).
      const lag = Math.max(1, Math.min(SIGNAL_LAG_MS, Math.floor(this.claimTtlMs / 4)));
      items = [...items, ...(await this.pullFirst(max - items.length, lag))];
    }
    return this.closed ? [] : items;
  }

  /** Wait up to `waitMs` for one item, then take up to `max - 1` more that are ready. */
  private async pullFirst(max: number, waitMs: number): Promise<ClaimedItem[]> {
    // Wait for one item only: a larger waiting request would keep claiming after we return.
    const first = await this.pull(1, waitMs);
    if (this.closed) return [];
    if (first.length === 0 || max === 1) return first;
    return [...first, ...(await this.pull(max - 1, 0))];
  }

  /**
   * Whether the stream holds items its consumer has not handed out yet. nats-server 2.9 confirms a
   * publish before the stream signals its consumers (another goroutine), so a no_wait pull sent
   * right after an enqueue returned can be answered "no messages" for an item that is stored: the
   * stream's message count beyond the consumer's unacked deliveries shows it.
   */
  private async storedButUnannounced(): Promise<boolean> {
    try {
      const [stream, consumer] = await Promise.all([
        this.jsm.streams.info(this.stream),
        this.jsm.consumers.info(this.stream, this.consumer),
      ]);
      return stream.state.messages > consumer.num_ack_pending;
    } catch {
      return false; // an empty answer to a claim that does not wait is always allowed
    }
  }

  /**
   * Ack if the claim still holds here; true once the stream leader no longer holds the item. The
   * consumer confirms an ack before its replicas have it, so the item leaving the stream is the
   * better answer (nats-server 2.9 can still lose the ack when its consumer leader is killed: see
   * the header). Waits for it until the claim's deadline, a little past it when the confirmation
   * never came (an ack the server took, its reply lost, counts too).
   */
  async ack(item: ClaimedItem): Promise<boolean> {
    const claim = this.takeClaim(item);
    if (claim === undefined) return false;
    const seq = Number(item.id);
    let removed = false;
    // An ack lost with a consumer leader is sent again (to the next leader) while the claim holds.
    while (!removed && Date.now() < claim.deadline) {
      await this.confirm(claim.reply, ACK, claim.deadline);
      removed = await this.awaitRemoved(seq, Math.min(claim.deadline, Date.now() + 1_000));
    }
    if (!removed) removed = await this.awaitRemoved(seq, claim.deadline + this.marginMs / 2);
    if (removed) {
      this.rememberAcked(seq);
      this.nc.publish(freedSubject(this.topic), String(seq));
    }
    return removed;
  }

  /** Nak: the item is redelivered at once (with `deliveries` one higher), if the claim still holds. */
  async release(item: ClaimedItem): Promise<boolean> {
    const claim = this.takeClaim(item);
    if (claim === undefined) return false;
    return this.confirm(claim.reply, NAK, claim.deadline);
  }

  /** Items in the stream (claimed ones included): `nats stream info`'s message count. */
  async depth(): Promise<number> {
    this.assertOpen();
    try {
      const info = await this.jsm.streams.info(this.stream);
      return info.state.messages;
    } catch (error) {
      throw this.failure(error, 'depth');
    }
  }

  /** Reserve a place below maxDepth (false when the stream is full); retried like a publish. */
  private async admit(): Promise<boolean> {
    // Publishes admitted here and not confirmed yet count too (erring on the full side).
    this.admitting += 1;
    let admitted = false;
    try {
      const giveUp = performance.now() + this.retryForMs;
      for (let attempt = 0; ; attempt++) {
        this.assertOpen();
        try {
          const info = await this.jsm.streams.info(this.stream);
          admitted = info.state.messages + this.admitting <= this.maxDepth;
          return admitted;
        } catch (error) {
          if (!transient(error) || performance.now() > giveUp) throw this.failure(error, 'enqueue');
          await sleep(Math.min(50 * 2 ** attempt, 1_000));
        }
      }
    } finally {
      if (!admitted) this.admitting -= 1;
    }
  }

  /** Publish an admitted item, releasing its reservation once the stream answered. */
  private async publishAdmitted(data: Uint8Array, msgID: string): Promise<string | undefined> {
    try {
      return await this.publish(data, msgID);
    } finally {
      this.admitting -= 1;
    }
  }

  /**
   * Stop: waiting claims resolve `[]`, held producers reject QUEUE_CLOSED, the connection closes.
   * Claims still held are not acked; JetStream redelivers them when their ack_wait lapses.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const end of this.pulls) end();
    this.pulls.clear();
    for (const wake of this.spaceWaiters) wake();
    this.spaceWaiters.clear();
    await this.nc.close().catch(() => undefined);
  }

  private assertOpen(): void {
    if (this.closed) throw new NexusError('QUEUE_CLOSED', `queue ${this.topic} is closed`);
  }

  /** QUEUE_CLOSED once closed, BACKEND_UNAVAILABLE otherwise. */
  private failure(error: unknown, what: string): NexusError {
    if (this.closed) return new NexusError('QUEUE_CLOSED', `queue ${this.topic} closed during ${what}`);
    return toNexusError(error, `NATS JetStream ${what} on ${this.stream} failed`);
  }

  /**
   * Publish once the stream takes it: its sequence; undefined when the stream refuses it as full
   * (only with a message limit an operator set on the stream: the adapter sets none).
   */
  private async publish(data: Uint8Array, msgID: string): Promise<string | undefined> {
    const giveUp = performance.now() + this.retryForMs;
    for (let attempt = 0; ; attempt++) {
      this.assertOpen();
      try {
        const ack = await this.js.publish(this.subject, data, { msgID });
        if (attempt === 0 || !ack.duplicate) return String(ack.seq);
        // A retry the stream calls a duplicate: the first attempt reached a leader, but after a
        // failover nats-server 2.9 can keep its id and lose the message. Store it again under a
        // new id: a second copy is a duplicate batch the collectors' ledger absorbs, a loss is not.
        const again = await this.js.publish(this.subject, data, { msgID: `${msgID}.${attempt}` });
        return String(again.seq);
      } catch (error) {
        if (apiCode(error) === MAX_MESSAGES_EXCEEDED) return undefined;
        if (!transient(error) || performance.now() > giveUp) throw this.failure(error, 'enqueue');
        await sleep(Math.min(50 * 2 ** attempt, 1_000));
      }
    }
  }

  private async enqueueWhenFree(data: Uint8Array, msgID: string): Promise<string> {
    for (;;) {
      this.assertOpen();
      // Register before trying so an ack between the try and the wait is not missed.
      let wake: () => void = () => undefined;
      const freed = new Promise<void>((resolve) => (wake = resolve));
      this.spaceWaiters.add(wake);
      try {
        if (await this.admit()) {
          const id = await this.publishAdmitted(data, msgID);
          if (id !== undefined) return id;
        }
        const timer = setTimeout(wake, BACKPRESSURE_RECHECK_MS);
        await freed;
        clearTimeout(timer);
      } finally {
        this.spaceWaiters.delete(wake);
      }
    }
  }

  /** Note `seq` as acked (bounded in count and age). */
  private rememberAcked(seq: number): void {
    const now = Date.now();
    this.acked.set(seq, now);
    for (const [old, at] of this.acked) {
      if (this.acked.size <= ACKED_MEMORY_MAX && at > now - ACKED_MEMORY_MS) break;
      this.acked.delete(old);
    }
  }

  /**
   * One pull request on the durable consumer: `batch` items, answered at once (`waitMs` 0: no_wait)
   * or held by the server up to `waitMs` until the batch fills. Ends early on close (to `[]`).
   */
  private pull(batch: number, waitMs: number): Promise<ClaimedItem[]> {
    const inbox = createInbox();
    const items: ClaimedItem[] = [];
    let received = 0;
    return new Promise<ClaimedItem[]>((resolve, reject) => {
      let sub: Subscription | undefined;
      let timer: NodeJS.Timeout | undefined;
      const finish = (error?: unknown): void => {
        clearTimeout(timer);
        sub?.unsubscribe();
        this.pulls.delete(end);
        if (this.closed) resolve([]);
        else if (error !== undefined && items.length === 0) reject(this.failure(error, 'claim'));
        else resolve(items);
      };
      const end = (): void => finish();
      const onMessage = (error: Error | null, msg: Msg): void => {
        if (error) return finish(error);
        const code = msg.headers?.code ?? 0;
        if (msg.data.length === 0 && code >= 100) {
          if (code === 100) return; // idle heartbeat
          if (code === 404 || code === 408 || code === 409) return finish(); // no (more) items, expired
          return finish(new Error(`pull request answered ${code} ${msg.headers?.description ?? ''}`));
        }
        const info = msg.reply === undefined ? undefined : parseAckSubject(msg.reply);
        if (info === undefined || msg.reply === undefined) return;
        received += 1;
        if (this.acked.has(info.seq)) {
          // Acked already, handed out again after a failover: ack it once more, never return it.
          this.nc.publish(msg.reply, ACK);
          if (received >= batch) finish();
          return;
        }
        // The server's ack_wait runs from its delivery, just before this receipt; the margin covers the gap.
        const deadline = Date.now() + this.claimTtlMs - this.marginMs;
        items.push({
          id: String(info.seq),
          payload: new Uint8Array(msg.data),
          deliveries: info.deliveries,
          claimToken: makeToken(deadline, msg.reply),
        });
        if (received >= batch) finish();
      };
      try {
        sub = this.nc.subscribe(inbox, { callback: onMessage });
        this.pulls.add(end);
        const request =
          waitMs > 0 ? { batch, expires: waitMs * 1_000_000 } : { batch, no_wait: true, expires: 0 };
        this.nc.publish(
          `$JS.API.CONSUMER.MSG.NEXT.${this.stream}.${this.consumer}`,
          JSON.stringify(request),
          {
            reply: inbox,
          },
        );
        timer = setTimeout(() => finish(), waitMs + PULL_GRACE_MS);
      } catch (error) {
        finish(error);
      }
    });
  }

  /** The claim behind `item` if this handle may still settle it; marks it settled. */
  private takeClaim(item: ClaimedItem): { deadline: number; reply: string } | undefined {
    this.assertOpen();
    const claim = parseToken(item.claimToken);
    if (claim === undefined || this.settled.has(item.claimToken)) return undefined;
    const now = Date.now();
    if (now >= claim.deadline) return undefined;
    if (this.settled.size >= 1024) {
      for (const [token, deadline] of this.settled) if (deadline <= now) this.settled.delete(token);
    }
    this.settled.set(item.claimToken, claim.deadline);
    return claim;
  }

  /** Send an ack or nak and wait for the server's confirmation, retrying until the claim's deadline. */
  private async confirm(reply: string, what: Uint8Array, deadline: number): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      this.assertOpen();
      const left = deadline - Date.now();
      if (left <= 0) return false;
      try {
        await this.nc.request(reply, what, { timeout: Math.min(left, 5_000) });
        return true;
      } catch (error) {
        if (this.closed) throw this.failure(error, 'ack');
        if (!transient(error)) throw this.failure(error, 'ack');
        await sleep(Math.min(50 * 2 ** attempt, 500));
      }
    }
  }

  /**
   * Wait until the stream leader no longer holds `seq` (true), or until `until` (ms since epoch)
   * passes with it still there or no leader answering (false).
   */
  private async awaitRemoved(seq: number, until: number): Promise<boolean> {
    for (let delay = 1; !this.closed; delay = Math.min(delay * 2, 50)) {
      try {
        if ((await this.jsm.streams.getMessage(this.stream, { seq })) === null) return true;
      } catch {
        // No stream leader at the moment (failover): ask again until the time is up.
      }
      if (Date.now() + delay > until) return false;
      await sleep(delay);
    }
    return false;
  }
}

/**
 * Create the topic's stream and shared consumer, or bring the duplicate window (and, when the
 * options name a claimTtlMs, the ack_wait) of existing ones in line. The stream gets no message
 * limit, and one an earlier version set (max_msgs = maxDepth) is removed: see the header for why
 * backpressure is the handle's. Resolves to the consumer's ack_wait in ms: a handle opened without
 * claimTtlMs (a producer) adopts it instead of resetting the collectors' setting.
 */
async function ensureStreamAndConsumer(jsm: JetStreamManager, options: NatsQueueOptions): Promise<number> {
  const { topic, claimTtlMs } = normalizeQueueOptions(options);
  const name = streamName(topic);
  const duplicateWindow = (options.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS) * 1_000_000;
  const consumer = options.consumer ?? DEFAULT_CONSUMER;
  const ackWait = Math.round(claimTtlMs * 1_000_000);
  const exists = await jsm.streams.info(name).catch((error: unknown) => {
    if (apiCode(error) === STREAM_NOT_FOUND) return undefined;
    throw error;
  });
  if (exists === undefined) {
    await jsm.streams
      .add({
        name,
        subjects: [itemSubject(topic)],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        num_replicas: options.replicas ?? DEFAULT_REPLICAS,
        max_msgs: NO_LIMIT,
        discard: DiscardPolicy.New,
        duplicate_window: duplicateWindow,
      })
      .catch(async (error: unknown) => {
        // Another handle created it first (with other limits): adopt it and apply ours below.
        if ((await jsm.streams.info(name).catch(() => undefined)) === undefined) throw error;
      });
  }
  const info = await jsm.streams.info(name);
  if (info.config.max_msgs !== NO_LIMIT || info.config.duplicate_window !== duplicateWindow) {
    await jsm.streams.update(name, { ...info.config, max_msgs: NO_LIMIT, duplicate_window: duplicateWindow });
  }
  const current = await jsm.consumers.info(name, consumer).catch((error: unknown) => {
    if (apiCode(error) === CONSUMER_NOT_FOUND) return undefined;
    throw error;
  });
  if (current === undefined) {
    await jsm.consumers
      .add(name, {
        durable_name: consumer,
        ack_policy: AckPolicy.Explicit,
        ack_wait: ackWait,
        deliver_policy: DeliverPolicy.All,
        max_deliver: -1,
        filter_subject: itemSubject(topic),
      })
      .catch(async (error: unknown) => {
        if ((await jsm.consumers.info(name, consumer).catch(() => undefined)) === undefined) throw error;
      });
  }
  const now = await jsm.consumers.info(name, consumer);
  let effective = now.config.ack_wait ?? ackWait;
  if (options.claimTtlMs !== undefined && effective !== ackWait) {
    await jsm.consumers.update(name, consumer, { ack_wait: ackWait });
    effective = ackWait;
  }
  await awaitSettled(jsm, name, consumer);
  return effective / 1_000_000;
}

/**
 * Wait (at most 5 s) until the stream and the consumer each have a leader and every replica is
 * current: a consumer leader that changes right after creation can forget deliveries it had not
 * replicated yet and hand the same item out twice.
 */
async function awaitSettled(jsm: JetStreamManager, stream: string, consumer: string): Promise<void> {
  const settled = (cluster: { leader?: string; replicas?: { current: boolean }[] } | undefined): boolean =>
    cluster === undefined || (Boolean(cluster.leader) && (cluster.replicas ?? []).every((r) => r.current));
  const until = performance.now() + 5_000;
  while (performance.now() < until) {
    const [s, c] = await Promise.all([jsm.streams.info(stream), jsm.consumers.info(stream, consumer)]);
    if (settled(s.cluster) && settled(c.cluster)) return;
    await sleep(50);
  }
}

/** How long opening a queue retries transient JetStream failures (ms). */
const OPEN_RETRY_MS = 30_000;

/**
 * Connect to NATS (`options.servers`) and open the queue `options.topic` there, creating its stream
 * (with `replicas`) and shared consumer when missing; the last handle opened with a claimTtlMs sets
 * ack_wait for all (one opened without adopts the consumer's), while each handle holds its own
 * producers at its own maxDepth. Rejects
 * with BACKEND_UNAVAILABLE when NATS or JetStream cannot be reached, CONFIG_INVALID on a bad option.
 */
export async function createNatsQueue(options: NatsQueueOptions): Promise<NatsQueue> {
  normalizeQueueOptions(options);
  const replicas = options.replicas ?? DEFAULT_REPLICAS;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new NexusError('CONFIG_INVALID', `NATS stream replicas must be an integer 1-5, got ${replicas}`);
  }
  const nc = await connectNats(options);
  try {
    // A busy or just-started server can miss one 5 s API timeout (seen on a loaded CI machine):
    // transient failures are retried for up to 30 s before the open fails.
    const deadline = Date.now() + OPEN_RETRY_MS;
    for (;;) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 5_000 });
        const claimTtlMs = await ensureStreamAndConsumer(jsm, options);
        return new NatsQueue(nc, jsm, { ...options, claimTtlMs });
      } catch (error) {
        if (!transient(error) || Date.now() >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw toNexusError(error, `cannot open the NATS JetStream queue ${options.topic}`);
  }
}
