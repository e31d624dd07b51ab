/**
 * Property-based tests (fast-check, bounded) of what a /ws client may send: parseClientMessage over
 * arbitrary values never throws anything but BAD_REQUEST and what it accepts can always be echoed;
 * the depth scan agrees with the parsed value's depth; and a live server on 127.0.0.1 answers a
 * couple of hundred arbitrary frames (JSON values, strings, protocol-shaped messages with garbage
 * fields, deep nesting, binary, invalid UTF-8, oversized) each with the documented reply or close
 * code, keeps answering /health, and holds no connection or subscription afterwards.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NexusError } from '../../src/errors.js';
import {
  jsonDepthExceeds,
  MAX_MESSAGE_DEPTH,
  parseClientMessage,
  valueDepthExceeds,
} from '../../src/api/ws/protocol.js';
import { deepJson } from '../support/hostile-clients.js';
import { JsonSocket, startSampleServer, waitUntil, type SampleServer } from './harness.js';

/** Depth of a JSON value, the message object being level 1 (recursive: test values are shallow). */
function depthOf(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  const children = Array.isArray(v) ? v : Object.values(v);
  return 1 + Math.max(0, ...children.map(depthOf));
}

/** A value nested `depth` arrays deep. */
function nested(depth: number): unknown {
  let v: unknown = 0;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

describe('parseClientMessage (property)', () => {
  const messageLike = fc.record(
    {
      type: fc.oneof(fc.constantFrom('ping', 'pong', 'subscribe', 'unsubscribe'), fc.anything()),
      id: fc.anything(),
      payload: fc.oneof(fc.anything(), fc.integer({ min: 0, max: 3000 }).map(nested)),
      filter: fc.oneof(
        fc.anything(),
        fc.record({ clusterId: fc.anything(), metrics: fc.anything(), eventTypes: fc.anything() }),
      ),
      after: fc.oneof(fc.anything(), fc.string()),
      snapshot: fc.anything(),
      batch: fc.anything(),
      stream: fc.oneof(fc.constantFrom('telemetry', 'alerts'), fc.anything()),
    },
    { requiredKeys: [] },
  );

  it('throws only BAD_REQUEST, and what it accepts can be echoed', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything({ withNullPrototype: true }), messageLike), (value) => {
        let message;
        try {
          message = parseClientMessage(value);
        } catch (error) {
          expect(error).toBeInstanceOf(NexusError);
          expect((error as NexusError).code).toBe('BAD_REQUEST');
          return;
        }
        expect(['ping', 'pong', 'subscribe', 'unsubscribe']).toContain(message.type);
        // The pong echo never overflows: an accepted payload is within the depth bound.
        expect(() => JSON.stringify({ ...message, type: 'pong' })).not.toThrow();
        if (message.type === 'ping')
          expect(valueDepthExceeds(message.payload, MAX_MESSAGE_DEPTH - 1)).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('the text depth scan agrees with the parsed depth', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 10 }), (value, max) => {
        const text = JSON.stringify(value);
        const depth = depthOf(JSON.parse(text));
        expect(jsonDepthExceeds(text, max)).toBe(depth > max);
        expect(valueDepthExceeds(JSON.parse(text), max)).toBe(depth > max);
      }),
      { numRuns: 2000 },
    );
  });
});

const MAX_PAYLOAD = 4096;

/** One frame a client may send. */
type Frame = { text: string } | { binary: Uint8Array } | { badText: Uint8Array };

const frames: fc.Arbitrary<Frame> = fc.oneof(
  fc.jsonValue({ maxDepth: 5 }).map((v) => ({ text: JSON.stringify(v) })),
  fc.string({ unit: 'binary', maxLength: 300 }).map((text) => ({ text })),
  fc
    .record(
      {
        type: fc.oneof(fc.constantFrom('ping', 'pong', 'subscribe', 'unsubscribe'), fc.string()),
        id: fc.oneof(fc.string({ maxLength: 80 }), fc.integer(), fc.jsonValue({ maxDepth: 2 })),
        payload: fc.jsonValue({ maxDepth: 4 }),
        filter: fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.record(
            {
              clusterId: fc.string({ maxLength: 10 }),
              gpuId: fc.constantFrom('0', 'GPU-x', 7),
              metrics: fc.oneof(fc.constantFrom(['gpuUtilization'], 'temperature,nope'), fc.jsonValue()),
              eventTypes: fc.jsonValue({ maxDepth: 2 }),
            },
            { requiredKeys: [] },
          ),
        ),
        after: fc.oneof(fc.constantFrom('1', '12.3', 'x', ''), fc.jsonValue({ maxDepth: 1 })),
        snapshot: fc.jsonValue({ maxDepth: 1 }),
        batch: fc.oneof(fc.boolean(), fc.jsonValue({ maxDepth: 1 })),
        stream: fc.oneof(fc.constantFrom('telemetry', 'alerts'), fc.jsonValue({ maxDepth: 1 })),
      },
      { requiredKeys: ['type'] },
    )
    .map((m) => ({ text: JSON.stringify(m) })),
  fc
    .integer({ min: 1, max: 3000 })
    .map((depth) => ({ text: `{"type":"ping","payload":${deepJson(depth)}}` })),
  fc.uint8Array({ maxLength: 64 }).map((binary) => ({ binary })),
  fc.constant({ badText: Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d]) }),
  fc
    .integer({ min: MAX_PAYLOAD - 40, max: MAX_PAYLOAD * 2 })
    .map((n) => ({ text: `{"type":"ping","payload":"${'x'.repeat(n)}"}` })),
);

/** What the server must do with a frame: close with a code, or answer and keep the connection. */
type Expected = { close: number } | { keep: true; reply?: (m: Record<string, unknown>) => boolean };

function expected(frame: Frame): Expected {
  if ('binary' in frame) return { close: frame.binary.length > MAX_PAYLOAD ? 1009 : 4400 };
  if ('badText' in frame) return { close: 1007 };
  // What the server receives: the UTF-8 encoding turns lone surrogates into U+FFFD.
  const text = Buffer.from(frame.text).toString('utf8');
  if (Buffer.byteLength(text) > MAX_PAYLOAD) return { close: 1009 };
  if (jsonDepthExceeds(text, MAX_MESSAGE_DEPTH)) return { close: 4400 };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { close: 4400 };
  }
  try {
    const message = parseClientMessage(value);
    if (message.type === 'ping')
      return {
        keep: true,
        reply: (m) =>
          m.type === 'pong' &&
          JSON.stringify(m.id) === JSON.stringify(message.id) &&
          JSON.stringify(m.payload) === JSON.stringify(message.payload),
      };
    if (message.type === 'unsubscribe')
      return {
        keep: true,
        reply: (m) => m.type === 'error' && m.code === 'NOT_FOUND' && m.id === message.id,
      };
    // subscribe answers asynchronously (subscribed or an error); pong answers nothing.
    return { keep: true };
  } catch (error) {
    const code = (error as NexusError).code;
    return { keep: true, reply: (m) => m.type === 'error' && m.code === code };
  }
}

describe('/ws live fuzz', () => {
  let server: SampleServer;

  beforeAll(async () => {
    server = await startSampleServer({ WS_MAX_PAYLOAD: MAX_PAYLOAD }, { ingest: false });
  });

  afterAll(async () => {
    await server?.close();
  });

  it('answers 200 arbitrary frames as documented and keeps serving', async () => {
    const started = Date.now();
    const outcomes = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(frames, async (frame) => {
        const s = new JsonSocket(`${server.wsBase}/ws?subscribe=none`);
        try {
          await s.opened;
          if ('text' in frame) s.ws.send(frame.text);
          else if ('binary' in frame) s.ws.send(frame.binary, { binary: true });
          else s.ws.send(frame.badText, { binary: false });
          s.send({ type: 'ping', id: '__probe__' });
          const want = expected(frame);
          const probe = (m: Record<string, unknown>) => m.type === 'pong' && m.id === '__probe__';
          if ('close' in want) {
            const closed = await Promise.race([
              s.closed,
              new Promise<{ code: number }>((r) => setTimeout(() => r({ code: -2 }), 5000)),
            ]);
            expect(closed.code).toBe(want.close);
            expect(s.messages.some(probe)).toBe(false);
            outcomes.set(want.close, (outcomes.get(want.close) ?? 0) + 1);
          } else {
            await s.next(probe, 'the probe pong', 5000);
            const before = s.messages.slice(0, s.messages.findIndex(probe));
            if (want.reply) expect(before.some(want.reply)).toBe(true);
            expect(s.ws.readyState).toBe(s.ws.OPEN);
            outcomes.set(0, (outcomes.get(0) ?? 0) + 1);
          }
        } finally {
          s.close();
        }
      }),
      { numRuns: 200, interruptAfterTimeLimit: 20_000 },
    );
    expect(Date.now() - started).toBeLessThan(25_000);
    // Every kind of outcome happened: kept, 4400, 1009, 1007.
    expect([...outcomes.keys()].sort()).toEqual([0, 1007, 1009, 4400]);

    expect((await fetch(`${server.base}/health`)).status).toBe(200);
    const ws = server.realtime.endpoints.get('/ws')!;
    await waitUntil(() => ws.wss.clients.size === 0, 'every fuzz connection gone', 5000);
    await waitUntil(() => server.realtime.hub.stats.subscribers === 0, 'every subscription closed', 5000);
  });
});
