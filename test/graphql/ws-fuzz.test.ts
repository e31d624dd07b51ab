/**
 * Issue 16 on graphql-ws (/graphql over WebSocket): messages nested thousands of levels deep in
 * `connection_init`/`ping` payloads, `variables` or `extensions`, messages only a server sends,
 * overlong operation ids, huge and deeply nested documents, garbage, binary and invalid UTF-8 frames
 * each get the protocol's close code (4400, 4409, 1007, 1009) or an error message, never a 4500 or a
 * crash; then a bounded fast-check run of 200 arbitrary frames against a live server on 127.0.0.1
 * checks that every frame is either answered on a connection that stays usable or closed with a
 * documented code, and that /health and new connections keep working.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenGraphqlWsMessage } from '../../src/api/graphql/ws.js';
import { deepJson } from '../support/hostile-clients.js';
import { JsonSocket, startSampleServer, waitUntil, type SampleServer } from '../ws/harness.js';

const MAX_PAYLOAD = 128 * 1024;

let server: SampleServer;

beforeAll(async () => {
  server = await startSampleServer({ WS_MAX_PAYLOAD: MAX_PAYLOAD }, { ingest: false });
});

afterAll(async () => {
  await server?.close();
});

/** A graphql-transport-ws connection, acknowledged unless `init` is false. */
async function gql(init = true): Promise<JsonSocket> {
  const s = new JsonSocket(`${server.wsBase}/graphql`, 'graphql-transport-ws');
  await s.opened;
  if (init) {
    s.send({ type: 'connection_init' });
    await s.next((m) => m.type === 'connection_ack', 'connection_ack');
  }
  return s;
}

/** The connection still answers: a query runs and returns data. */
async function usable(s: JsonSocket, id: string): Promise<void> {
  s.send({ id, type: 'subscribe', payload: { query: '{ cursor }' } });
  const next = await s.next((m) => m.id === id && m.type === 'next', `result of ${id}`);
  expect((next.payload as { data: { cursor: string } }).data.cursor).toMatch(/^\d+$/);
}

const deep = deepJson(5000);

describe('graphql-ws hostile messages', () => {
  const closing: [string, (s: JsonSocket) => void, boolean, number][] = [
    [
      'connection_init payload 5,000 deep',
      (s) => s.ws.send(`{"type":"connection_init","payload":{"a":${deep}}}`),
      false,
      4400,
    ],
    ['ping payload 5,000 deep', (s) => s.ws.send(`{"type":"ping","payload":{"a":${deep}}}`), true, 4400],
    [
      'subscribe variables 5,000 deep',
      (s) =>
        s.ws.send(
          `{"id":"v","type":"subscribe","payload":{"query":"query($x: String) { cursor }","variables":{"x":${deep}}}}`,
        ),
      true,
      4400,
    ],
    [
      'subscribe extensions 5,000 deep',
      (s) =>
        s.ws.send(
          `{"id":"e","type":"subscribe","payload":{"query":"{ cursor }","extensions":{"a":${deep}}}}`,
        ),
      true,
      4400,
    ],
    ['a bare array 20,000 deep', (s) => s.ws.send(deepJson(20_000)), false, 4400],
    [
      'a next message from the client',
      (s) => s.send({ id: '1', type: 'next', payload: { data: {} } }),
      true,
      4400,
    ],
    ['an error message from the client', (s) => s.send({ id: '1', type: 'error', payload: [] }), true, 4400],
    ['a connection_ack from the client', (s) => s.send({ type: 'connection_ack' }), true, 4400],
    ['text that is not JSON', (s) => s.ws.send('{"type": "subscribe", oops'), true, 4400],
    ['binary garbage', (s) => s.ws.send(Buffer.from([0, 1, 2, 255]), { binary: true }), true, 4400],
    ['invalid UTF-8', (s) => s.ws.send(Buffer.from([0x7b, 0xff, 0x7d]), { binary: false }), true, 1007],
    [
      'a frame over WS_MAX_PAYLOAD',
      (s) => s.ws.send(`{"type":"ping","payload":{"x":"${'x'.repeat(MAX_PAYLOAD)}"}}`),
      true,
      1009,
    ],
  ];

  for (const [what, send, init, code] of closing) {
    it(`closes ${code} on ${what}`, async () => {
      const s = await gql(init);
      send(s);
      const closed = await Promise.race([
        s.closed,
        new Promise<{ code: number; reason: string }>((r) =>
          setTimeout(() => r({ code: -2, reason: '' }), 5000),
        ),
      ]);
      expect(closed.code).toBe(code);
      expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
    });
  }

  it('closes 4409 (not 4500) on a duplicate operation id too long for a close reason', async () => {
    const s = await gql();
    const id = '\u00e9'.repeat(200);
    const query = 'subscription { telemetryUpdates { cursor } }';
    s.send({ id, type: 'subscribe', payload: { query } });
    s.send({ id, type: 'subscribe', payload: { query } });
    const closed = await Promise.race([
      s.closed,
      new Promise<{ code: number; reason: string }>((r) =>
        setTimeout(() => r({ code: -2, reason: '' }), 5000),
      ),
    ]);
    expect(closed.code).toBe(4409);
    expect(closed.reason.startsWith('Subscriber for \u00e9')).toBe(true);
  });

  it('answers huge and deeply nested documents with error messages and stays usable', async () => {
    const s = await gql();
    const cases: [string, string, string][] = [
      ['big', `{ cursor ${' '.repeat(110_000)}}`, 'QUERY_TOO_LARGE'],
      ['tokens', `{ ${'a { '.repeat(1500)}b${' }'.repeat(1500)} }`, 'TOO_MANY_TOKENS'],
      ['depth', `{ ${'a { '.repeat(40)}b${' }'.repeat(40)} }`, 'QUERY_TOO_DEEP'],
      ['parse', '{ cursor ', 'GRAPHQL_PARSE_FAILED'],
      ['novar', 'query($x: Int!) { cursor }', 'BAD_REQUEST'],
    ];
    for (const [id, query] of cases) s.send({ id, type: 'subscribe', payload: { query } });
    await waitUntil(
      () => cases.every(([id]) => s.messages.some((m) => m.id === id && m.type === 'error')),
      'an error message for each',
    );
    for (const [id, , code] of cases) {
      const error = s.messages.find((m) => m.id === id && m.type === 'error')!;
      const codes = (error.payload as { extensions?: { code?: string } }[]).map((e) => e.extensions?.code);
      if (id === 'novar') expect(codes.length).toBe(1);
      else expect(codes).toContain(code);
    }
    await usable(s, 'after');
    s.close();
    expect((await fetch(`${server.base}/health`)).status).toBe(200);
  });

  it('screens frames before the protocol engine sees them', () => {
    expect(screenGraphqlWsMessage('{"type":"connection_init"}')).toBeUndefined();
    expect(screenGraphqlWsMessage('{"type":"subscribe","id":"1","payload":{"a":[[[1]]]}}')).toBeUndefined();
    expect(screenGraphqlWsMessage(`{"type":"ping","payload":${deepJson(32)}}`)).toMatch(/nested/);
    expect(screenGraphqlWsMessage(`{"type":"ping","payload":${deepJson(31)}}`)).toBeUndefined();
    expect(screenGraphqlWsMessage('{"type":"next"}')).toMatch(/Unexpected message of type next/);
    expect(screenGraphqlWsMessage('nope')).toBe('Invalid message received');
    expect(screenGraphqlWsMessage('{"type":"dance"}')).toMatch(/Unexpected message of type dance/);
    // Left to the engine, which closes 4400 on its own.
    expect(screenGraphqlWsMessage('[1]')).toBeUndefined();
    expect(screenGraphqlWsMessage('{"type":""}')).toBeUndefined();
  });
});

/** One frame a graphql-ws client may send. */
type Frame = { text: string } | { binary: Uint8Array } | { badText: Uint8Array };

const QUERIES = [
  '{ cursor }',
  '{ clusters { id name } }',
  'subscription { telemetryUpdates { cursor eventType } }',
  'query($id: String!) { cluster(id: $id) { id } }',
  'mutation { x }',
  '{ ',
  '',
];

const frames: fc.Arbitrary<Frame> = fc.oneof(
  fc.jsonValue({ maxDepth: 5 }).map((v) => ({ text: JSON.stringify(v) })),
  fc.string({ unit: 'binary', maxLength: 300 }).map((text) => ({ text })),
  fc
    .record(
      {
        id: fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue({ maxDepth: 1 })),
        type: fc.oneof(
          fc.constantFrom(
            'connection_init',
            'ping',
            'pong',
            'subscribe',
            'complete',
            'next',
            'error',
            'connection_ack',
          ),
          fc.string({ maxLength: 10 }),
        ),
        payload: fc.oneof(
          fc.jsonValue({ maxDepth: 4 }),
          fc.record(
            {
              query: fc.oneof(fc.constantFrom(...QUERIES), fc.string({ maxLength: 100 })),
              variables: fc.jsonValue({ maxDepth: 4 }),
              operationName: fc.oneof(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 1 })),
              extensions: fc.jsonValue({ maxDepth: 3 }),
            },
            { requiredKeys: ['query'] },
          ),
        ),
      },
      { requiredKeys: ['type'] },
    )
    .map((m) => ({ text: JSON.stringify(m) })),
  fc
    .integer({ min: 1, max: 3000 })
    .map((depth) => ({ text: `{"type":"ping","payload":{"a":${deepJson(depth)}}}` })),
  fc.uint8Array({ maxLength: 64 }).map((binary) => ({ binary })),
  fc.constant({ badText: Uint8Array.from([0x7b, 0xc3, 0x28, 0x7d]) }),
  fc
    .integer({ min: MAX_PAYLOAD - 40, max: MAX_PAYLOAD + 4096 })
    .map((n) => ({ text: `{"type":"ping","payload":{"x":"${'x'.repeat(n)}"}}` })),
);

/** Close codes a hostile frame may earn on an acknowledged connection (graphql.md, ws-protocol.md). */
const DOCUMENTED = new Set([4400, 4409, 4429, 1007, 1009]);

describe('graphql-ws live fuzz', () => {
  it('answers 200 arbitrary frames with a documented close code or keeps the connection usable', async () => {
    const started = Date.now();
    const outcomes = new Map<number, number>();
    let n = 0;
    await fc.assert(
      fc.asyncProperty(frames, async (frame) => {
        const s = await gql();
        const probe = { probe: ++n };
        try {
          if ('text' in frame) s.ws.send(frame.text);
          else if ('binary' in frame) s.ws.send(frame.binary, { binary: true });
          else s.ws.send(frame.badText, { binary: false });
          s.send({ type: 'ping', payload: probe });
          const answered = (m: Record<string, unknown>) =>
            m.type === 'pong' && JSON.stringify(m.payload) === JSON.stringify(probe);
          const outcome = await Promise.race([
            s.closed.then((c) => c.code),
            s.next(answered, 'the probe pong', 5000).then(() => 0),
          ]);
          expect(outcome === 0 || DOCUMENTED.has(outcome), `outcome ${outcome}`).toBe(true);
          if ('badText' in frame) expect(outcome).toBe(1007);
          if ('text' in frame && Buffer.byteLength(frame.text) > MAX_PAYLOAD) expect(outcome).toBe(1009);
          if ('text' in frame && frame.text.startsWith('{"type":"ping","payload":{"a":[')) {
            // The message object and the payload are 2 levels; the depth bound is 32.
            const depth = 2 + (frame.text.match(/\[/g) ?? []).length;
            expect(outcome).toBe(depth > 32 ? 4400 : 0);
          }
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        } finally {
          s.close();
        }
      }),
      { numRuns: 200, interruptAfterTimeLimit: 25_000 },
    );
    expect(Date.now() - started).toBeLessThan(30_000);
    for (const code of [0, 4400, 1007, 1009]) expect(outcomes.get(code) ?? 0).toBeGreaterThan(0);

    expect((await fetch(`${server.base}/health`)).status).toBe(200);
    const s = await gql();
    await usable(s, 'final');
    s.close();
    const endpoint = server.realtime.endpoints.get('/graphql')!;
    await waitUntil(() => endpoint.wss.clients.size === 0, 'every fuzz connection gone', 5000);
  });
});
