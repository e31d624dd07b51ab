/**
 * Key layout, item ids and claim tokens of the etcd queue adapter (see queue.ts).
 *
 * ```
 * /telemetry/queue/{clusterId}/{topic}/items/{id}       one encoded batch (raw bytes)
 * /telemetry/queue/{clusterId}/{topic}/claims/{id}      {"consumer","expiresAt","nonce"} bound to the claimer's lease
 * /telemetry/queue/{clusterId}/{topic}/deliveries/{id}  version = deliveries; after ack "acked:{rev}" on a short tombstone lease
 * /telemetry/queue/{clusterId}/{topic}/enqueued         id of the last item enqueued (the claimers' wake-up key)
 * ```
 */
import { randomBytes } from 'node:crypto';
import { NexusError } from '../../errors.js';

/** Root of every queue key. */
export const QUEUE_ROOT = '/telemetry/queue/';

/** Item ids: 13-digit ms time, 4 base-36 digits of per-ms sequence, 8 hex random. */
const ID_PATTERN = /^\d{13}-[0-9a-z]{4}-[0-9a-f]{8}$/;

/** The keys of one topic. */
export interface QueueKeys {
  /** `/telemetry/queue/{clusterId}/{topic}/`: every key of the topic lies under it. */
  prefix: string;
  items: string;
  claims: string;
  deliveries: string;
  /** Written in the same txn as every item, so claimers can watch one small key instead of payloads. */
  enqueued: string;
}

function checkSegment(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('/')) {
    throw new NexusError('CONFIG_INVALID', `etcd queue ${name} must be a non-empty string without "/"`, {
      details: { [name]: value },
    });
  }
  return value;
}

/** The key layout of `topic` in cluster `clusterId`; CONFIG_INVALID for empty names or names with "/". */
export function queueKeys(clusterId: string, topic: string): QueueKeys {
  const prefix = `${QUEUE_ROOT}${checkSegment('clusterId', clusterId)}/${checkSegment('topic', topic)}/`;
  return {
    prefix,
    items: `${prefix}items/`,
    claims: `${prefix}claims/`,
    deliveries: `${prefix}deliveries/`,
    enqueued: `${prefix}enqueued`,
  };
}

/** True when `id` has the shape {@link IdGenerator} produces (guards key building from foreign items). */
export function isItemId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/**
 * Sortable, unique item ids: key order is enqueue order within a process and wall-clock order
 * across processes (as good as their clocks agree).
 */
export class IdGenerator {
  private lastMs = 0;
  private seq = 0;

  next(): string {
    let ms = Math.max(Date.now(), this.lastMs);
    if (ms === this.lastMs) {
      this.seq += 1;
      if (this.seq >= 36 ** 4) {
        ms += 1; // borrow the next millisecond rather than wrap the sequence
        this.seq = 0;
      }
    } else {
      this.seq = 0;
    }
    this.lastMs = ms;
    return `${String(ms).padStart(13, '0')}-${this.seq.toString(36).padStart(4, '0')}-${randomBytes(4).toString('hex')}`;
  }
}

/** The value of a claim key. */
export interface ClaimRecord {
  consumer: string;
  /** Wall-clock ms after which any consumer may take the item over. */
  expiresAt: number;
  /** Random per attempt: lets a retried claim txn recognise its own earlier write. */
  nonce: string;
}

/** Parse a claim key's value; undefined when it is not one (treated as claimable). */
export function parseClaim(value: Buffer | string): ClaimRecord | undefined {
  try {
    const parsed = JSON.parse(value.toString()) as Partial<ClaimRecord>;
    if (typeof parsed.expiresAt !== 'number' || typeof parsed.nonce !== 'string') return undefined;
    return { consumer: String(parsed.consumer), expiresAt: parsed.expiresAt, nonce: parsed.nonce };
  } catch {
    return undefined;
  }
}

/**
 * A claim token: the claim key's mod revision (what ack/release guard on) and the claim's
 * expiry (checked locally, since etcd cannot compare against time).
 */
export interface ClaimToken {
  revision: number;
  expiresAt: number;
}

/** Encode a claim token as `{revision}.{expiresAt}`. */
export function formatToken(token: ClaimToken): string {
  return `${token.revision}.${token.expiresAt}`;
}

/** Decode a claim token; undefined when it is not one of ours. */
export function parseToken(text: string): ClaimToken | undefined {
  const match = /^(\d+)\.(\d+)$/.exec(text);
  if (!match) return undefined;
  const revision = Number(match[1]);
  const expiresAt = Number(match[2]);
  if (!Number.isSafeInteger(revision) || revision <= 0 || !Number.isSafeInteger(expiresAt)) return undefined;
  return { revision, expiresAt };
}

/** The tombstone value an ack leaves in the deliveries key. */
export function ackMarker(revision: number): string {
  return `acked:${revision}`;
}
