/**
 * The /ws JSON protocol (docs/ws-protocol.md): the messages a client may send, checked strictly,
 * and the shapes of what the server sends. Every message is one JSON object with a `type`, nested
 * at most {@link MAX_MESSAGE_DEPTH} levels deep: the depth is checked on the text before it is parsed
 * ({@link jsonDepthExceeds}, also used by graphql-ws on /graphql), so no deeper value ever reaches
 * code that walks it recursively (JSON.stringify of a ping's echoed payload).
 */
import { NexusError } from '../../errors.js';
import { type Cursor, parseCursor } from '../../events/cursor.js';
import type { EventFilter, TelemetryEventType } from '../../events/types.js';

/** Protocol name and version, announced in `welcome`. */
export const WS_PROTOCOL = 'nexus-telemetry.ws.v1';

/** Longest subscription id. */
const MAX_ID = 64;

/**
 * Deepest nesting of arrays and objects in a client message; the message object itself is level 1,
 * so `{"type":"ping","payload":{"a":[1]}}` is 3 levels deep. Deeper messages are refused (close 4400).
 */
export const MAX_MESSAGE_DEPTH = 32;

/**
 * Whether JSON `text` nests arrays and objects more than `max` levels deep, by one scan of the text
 * with no recursion and no allocation (brackets inside strings do not count). Meant to run before
 * `JSON.parse`; text that is not JSON gets some answer and is then refused by the parser.
 */
export function jsonDepthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      // A backslash escapes the next character, so `\"` does not end the string.
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Whether a decoded value nests arrays and objects more than `max` levels deep (the value itself, if
 * an array or object, is level 1). Iterative, so any depth is measured without recursion.
 */
export function valueDepthExceeds(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** Client -> server messages. */
export type ClientMessage =
  | { type: 'ping'; id?: string | number; payload?: unknown }
  | { type: 'pong' }
  | {
      type: 'subscribe';
      id: string;
      filter: EventFilter;
      after?: Cursor;
      snapshot: boolean;
      batch: boolean;
      stream: 'telemetry' | 'alerts';
    }
  | { type: 'unsubscribe'; id: string };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(message: string, parameter?: string): NexusError {
  return new NexusError('BAD_REQUEST', message, parameter ? { details: { parameter } } : {});
}

function optionalString(o: Record<string, unknown>, key: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(`filter.${key} must be a string`, key);
  return v;
}

function stringList(v: unknown, key: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  const list =
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
      : v;
  if (!Array.isArray(list) || !list.every((s): s is string => typeof s === 'string'))
    throw bad(`filter.${key} must be a list of strings`, key);
  return list;
}

/** A filter from a JSON object (message) or query parameters (comma-separated lists allowed). */
export function parseFilter(raw: unknown): EventFilter {
  if (raw === undefined || raw === null) return {};
  if (!isObject(raw)) throw bad('filter must be an object', 'filter');
  const known = new Set(['clusterId', 'hostId', 'gpuId', 'metrics', 'eventTypes']);
  for (const key of Object.keys(raw))
    if (!known.has(key)) throw bad(`unknown filter field '${key.slice(0, 32)}'`, key);
  const filter: EventFilter = {};
  const clusterId = optionalString(raw, 'clusterId');
  const hostId = optionalString(raw, 'hostId');
  const gpuId = optionalString(raw, 'gpuId');
  const metrics = stringList(raw.metrics, 'metrics');
  const eventTypes = stringList(raw.eventTypes, 'eventTypes');
  if (clusterId !== undefined) filter.clusterId = clusterId;
  if (hostId !== undefined) filter.hostId = hostId;
  if (gpuId !== undefined) filter.gpuId = gpuId;
  if (metrics) filter.metrics = metrics;
  if (eventTypes) filter.eventTypes = eventTypes as TelemetryEventType[];
  return filter;
}

/** An optional cursor: absent/empty, or what {@link parseCursor} accepts. */
export function parseCursorValue(v: unknown): Cursor | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  return parseCursor(v);
}

function parseId(v: unknown): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_ID)
    throw bad(`id must be a string of 1 to ${MAX_ID} characters`, 'id');
  return v;
}

/**
 * Check a decoded client message. Throws NexusError BAD_REQUEST naming what is wrong, and nothing
 * else, whatever the value. A ping's payload deeper than {@link MAX_MESSAGE_DEPTH} is refused, so what
 * this returns can always be echoed with JSON.stringify.
 */
export function parseClientMessage(value: unknown): ClientMessage {
  if (!isObject(value) || typeof value.type !== 'string')
    throw bad('a message is a JSON object with a "type"');
  switch (value.type) {
    case 'ping': {
      const id = value.id;
      if (id !== undefined && typeof id !== 'string' && !(typeof id === 'number' && Number.isFinite(id)))
        throw bad('ping id must be a string or a finite number', 'id');
      if (valueDepthExceeds(value.payload, MAX_MESSAGE_DEPTH - 1))
        throw bad(`ping payload nested more than ${MAX_MESSAGE_DEPTH - 1} levels deep`, 'payload');
      return {
        type: 'ping',
        ...(id !== undefined ? { id } : {}),
        ...(value.payload !== undefined ? { payload: value.payload } : {}),
      };
    }
    case 'pong':
      return { type: 'pong' };
    case 'subscribe': {
      const after = parseCursorValue(value.after);
      if (value.snapshot !== undefined && typeof value.snapshot !== 'boolean')
        throw bad('snapshot must be a boolean', 'snapshot');
      if (value.batch !== undefined && typeof value.batch !== 'boolean')
        throw bad('batch must be a boolean', 'batch');
      if (value.stream !== undefined && value.stream !== 'telemetry' && value.stream !== 'alerts')
        throw bad('stream must be "telemetry" or "alerts"', 'stream');
      return {
        type: 'subscribe',
        id: parseId(value.id),
        filter: parseFilter(value.filter),
        ...(after !== undefined ? { after } : {}),
        snapshot: value.snapshot === true,
        batch: value.batch === true,
        stream: value.stream === 'alerts' ? 'alerts' : 'telemetry',
      };
    }
    case 'unsubscribe':
      return { type: 'unsubscribe', id: parseId(value.id) };
    default:
      throw bad(
        `unknown message type '${value.type.slice(0, 32)}' (known: ping, subscribe, unsubscribe)`,
        'type',
      );
  }
}
