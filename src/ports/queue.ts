/**
 * Queue port: an at-least-once work queue of opaque payloads (encoded batches) for one topic.
 *
 * Delivery contract, for every adapter:
 * - `enqueue` resolves once the item is durably in the queue (as durable as the backend is).
 *   While the queue already holds `maxDepth` items or more, `enqueue` waits (backpressure)
 *   until depth falls below it, or rejects with `QUEUE_CLOSED` when the queue is closed.
 * - `claim` hands each available item to exactly one consumer at a time, oldest first.
 *   A claim lasts until `ack`, `release`, or the claim's expiry (`claimTtlMs`, or the
 *   consumer's lease on backends with leases); an expired claim makes the item claimable again,
 *   and its next delivery has `deliveries` one higher.
 * - `ack` removes the item for good, only if this claim still holds it, and returns whether it did.
 *   Call it only after the work is durable.
 * - `release` gives the item back for immediate redelivery (also guarded by the claim).
 * - After `close()`, every method rejects with `QUEUE_CLOSED`; waiting `claim` calls resolve to `[]`.
 *   Claims still held are not acked: on durable backends they come back like a crashed consumer's.
 * - A consumer id belongs to one live process at a time: a consumer restarting under its id takes
 *   back the items that id still holds.
 *
 * Besides the contract, the port holds the option validation every adapter applies
 * (`normalizeQueueOptions`, `normalizeClaimOptions`), so adapters reject the same inputs alike and
 * none of them imports another.
 */
import { NexusError } from '../errors.js';

/** An item handed to one consumer. */
export interface ClaimedItem {
  /** Queue-assigned id, unique within the topic. */
  id: string;
  payload: Uint8Array;
  /** 1 on first delivery, +1 on each redelivery after a lost claim. */
  deliveries: number;
  /** Opaque token that proves the claim; adapters put what they need in it. */
  claimToken: string;
}

export interface ClaimOptions {
  /** Most items to return (default 1). */
  max?: number;
  /** How long to wait for an item when none is available (default 0: return at once). */
  waitMs?: number;
}

export interface Queue {
  /** Topic this queue serves. */
  readonly topic: string;
  /** Add one item; waits while the queue is at its depth bound. Resolves to the item id. */
  enqueue(payload: Uint8Array): Promise<string>;
  /** Claim up to `max` items for `consumerId`, waiting up to `waitMs` for the first one. */
  claim(consumerId: string, options?: ClaimOptions): Promise<ClaimedItem[]>;
  /** Remove a claimed item for good; false when the claim no longer holds (expired, re-claimed). */
  ack(item: ClaimedItem): Promise<boolean>;
  /** Give a claimed item back for redelivery; false when the claim no longer holds. */
  release(item: ClaimedItem): Promise<boolean>;
  /** Items enqueued and not yet acked (claimed ones included). */
  depth(): Promise<number>;
  /** Stop: pending waits end, later calls reject with QUEUE_CLOSED. Idempotent. */
  close(): Promise<void>;
}

/** Settings every queue adapter accepts. */
export interface QueueOptions {
  topic: string;
  /** Backpressure bound on items held (default 1000). */
  maxDepth?: number;
  /** How long a claim lasts without ack on backends without consumer leases (default 30 s). */
  claimTtlMs?: number;
}

/** Default backpressure bound on items held. */
export const DEFAULT_MAX_DEPTH = 1000;
/** Default claim lifetime without ack. */
export const DEFAULT_CLAIM_TTL_MS = 30_000;

/** Validated claim options; every adapter calls it, so all of them reject the same inputs (BAD_REQUEST). */
export function normalizeClaimOptions(options: ClaimOptions | undefined): { max: number; waitMs: number } {
  const max = options?.max ?? 1;
  const waitMs = options?.waitMs ?? 0;
  if (!Number.isInteger(max) || max < 1) {
    throw new NexusError('BAD_REQUEST', `claim max must be a positive integer, got ${String(max)}`, {
      details: { max },
    });
  }
  if (!Number.isFinite(waitMs) || waitMs < 0) {
    throw new NexusError('BAD_REQUEST', `claim waitMs must be a finite number >= 0, got ${String(waitMs)}`, {
      details: { waitMs },
    });
  }
  return { max, waitMs };
}

/** Validated queue options with the defaults applied; CONFIG_INVALID names the bad option. */
export function normalizeQueueOptions(options: QueueOptions): Required<QueueOptions> {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const claimTtlMs = options.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS;
  if (typeof options.topic !== 'string' || options.topic.length === 0) {
    throw new NexusError('CONFIG_INVALID', 'queue topic must be a non-empty string');
  }
  if (!Number.isInteger(maxDepth) || maxDepth < 1) {
    throw new NexusError(
      'CONFIG_INVALID',
      `queue maxDepth must be a positive integer, got ${String(maxDepth)}`,
    );
  }
  if (!Number.isFinite(claimTtlMs) || claimTtlMs <= 0) {
    throw new NexusError(
      'CONFIG_INVALID',
      `queue claimTtlMs must be a positive number, got ${String(claimTtlMs)}`,
    );
  }
  return { topic: options.topic, maxDepth, claimTtlMs };
}
