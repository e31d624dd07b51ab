/**
 * Limits and refusals on both transports: hostile documents (depth 50, 1,000 aliases, fragment
 * cycles, a fragment bomb, a 100-operation batch) are refused with 4xx / GraphQL errors carrying a
 * code; graphql-ws protocol violations close with the protocol's codes; introspection can be turned
 * off; a bad request is never a 500 and never stops the server.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLUSTER,
  JsonSocket,
  startExtraApp,
  startSampleServer,
  waitUntil,
  type SampleServer,
} from '../ws/harness.js';

interface GqlBody {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

let server: SampleServer;
/** Same ports, strict settings: short init timeout, no introspection, small payloads. */
let strict: Awaited<ReturnType<typeof startExtraApp>>;

beforeAll(async () => {
  server = await startSampleServer();
  strict = await startExtraApp(
    server.runtime,
    {
      GRAPHQL_INTROSPECTION: false,
      WS_MAX_PAYLOAD: 4096,
      GRAPHQL_MAX_BATCH: 0,
      WS_MAX_SUBSCRIPTIONS: 2,
    },
    'api',
  );
});

afterAll(async () => {
  await strict?.close();
  await server?.close();
});

async function post(body: unknown, base = server.base, contentType = 'application/json') {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as GqlBody };
}

const codeOf = (body: GqlBody): string | undefined => body.errors?.[0]?.extensions?.code;

/**
 * `{ cluster(id) { host(id) { gpu(id) { host { gpu(id) { host ... { id } } } } } } }`, `depth` fields
 * deep (id included); single objects all the way, so only the depth limit can refuse it.
 */
function deepQuery(depth: number): string {
  const levels = [`cluster(id: "${CLUSTER}")`, 'host(id: "mtv5-dgx1-hgpu-001")'];
  for (let i = 2; i < depth - 1; i++) levels.push(i % 2 === 0 ? 'gpu(id: "0")' : 'host');
  return `{ ${levels.map((n) => `${n} {`).join(' ')} id ${'}'.repeat(levels.length)} }`;
}

const hostile = {
  depth50: deepQuery(50),
  aliases1000: `{ ${Array.from({ length: 1000 }, (_, i) => `a${i}: clusters { id }`).join(' ')} }`,
  aliases60: `{ ${Array.from({ length: 60 }, (_, i) => `a${i}: __typename`).join(' ')} }`,
  fragmentCycle: `query { clusters { ...A } }
    fragment A on Cluster { hosts { cluster { ...B } } }
    fragment B on Cluster { ...A }`,
  // Each fragment spreads the next twice: 2^30 selections as written.
  fragmentBomb: `query { clusters { ...F0 } } ${Array.from(
    { length: 30 },
    (_, i) => `fragment F${i} on Cluster { ...F${i + 1} ...F${i + 1} }`,
  ).join(' ')} fragment F30 on Cluster { hosts { gpus { telemetry(limit: 10000) { samples { value } } } } }`,
  costly: '{ clusters { hosts { gpus { telemetry(limit: 10000) { samples { value } } } } } }',
};

describe('hostile documents over HTTP', () => {
  it.each([
    { name: 'depth 50', query: hostile.depth50, code: 'QUERY_TOO_DEEP' },
    { name: '1,000 aliases', query: hostile.aliases1000, code: 'TOO_MANY_TOKENS' },
    { name: '60 aliases', query: hostile.aliases60, code: 'TOO_MANY_ALIASES' },
    { name: 'a fragment cycle', query: hostile.fragmentCycle, code: 'GRAPHQL_VALIDATION_FAILED' },
    { name: 'a fragment bomb', query: hostile.fragmentBomb, code: 'QUERY_TOO_COSTLY' },
    { name: 'a costly fan-out', query: hostile.costly, code: 'QUERY_TOO_COSTLY' },
    { name: 'a syntax error', query: '{ clusters { id ', code: 'GRAPHQL_PARSE_FAILED' },
    { name: 'an unknown field', query: '{ nope }', code: 'GRAPHQL_VALIDATION_FAILED' },
  ])('refuses $name with 400 and $code', async ({ query, code }) => {
    const { status, body } = await post({ query });
    expect(status).toBe(400);
    expect(codeOf(body)).toBe(code);
    expect(body.data).toBeUndefined();
  });

  it('accepts the deepest query within the limit', async () => {
    const { status, body } = await post({ query: deepQuery(15) });
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(JSON.stringify(body.data)).toContain('"id":"mtv5-dgx1-hgpu-001"');
  });

  it('refuses a 100-operation batch, runs a small one, and refuses batches when batching is off', async () => {
    const batch100 = Array.from({ length: 100 }, () => ({ query: '{ clusters { id } }' }));
    const big = await post(batch100);
    expect(big.status).toBe(400);
    expect(codeOf(big.body)).toBe('BATCH_TOO_LARGE');

    const res = await fetch(`${server.base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ clusters { id } }' }, { query: '{ nope }' }]),
    });
    expect(res.status).toBe(200);
    const answers = (await res.json()) as GqlBody[];
    expect(answers[0]!.data).toEqual({ clusters: [{ id: CLUSTER }] });
    expect(codeOf(answers[1]!)).toBe('GRAPHQL_VALIDATION_FAILED');

    const off = await post([{ query: '{ clusters { id } }' }], strict.base);
    expect(off.status).toBe(400);
    expect(codeOf(off.body)).toBe('BATCH_DISABLED');
  });

  it('needs operationName for a 100-operation document, and runs the named one', async () => {
    const doc = Array.from({ length: 100 }, (_, i) => `query Q${i} { clusters { id } }`).join('\n');
    const unnamed = await post({ query: doc });
    expect(unnamed.status).toBe(400);
    const named = await post({ query: doc, operationName: 'Q42' });
    expect(named.status).toBe(200);
    expect(named.body.data).toEqual({ clusters: [{ id: CLUSTER }] });
  });

  it('answers bad requests with 4xx GraphQL errors, never 500', async () => {
    const cases: [unknown, string | undefined][] = [
      ['{not json', 'application/json'],
      [{ query: 42 }, undefined],
      [{ variables: {} }, undefined],
      [{ query: '{ clusters { id } }', variables: 'x' }, undefined],
      [{ query: 'query ($n: Int!) { deadLetters(limit: $n) { id } }', variables: { n: 'many' } }, undefined],
      ['null', 'application/json'],
      [[], undefined],
      ['query { clusters { id } }', 'text/plain'],
    ];
    for (const [body, type] of cases) {
      const { status, body: answer } = await post(body, server.base, type ?? 'application/json');
      expect(status, JSON.stringify(body)).toBeGreaterThanOrEqual(400);
      expect(status, JSON.stringify(body)).toBeLessThan(500);
      expect(answer.errors?.length, JSON.stringify(body)).toBeGreaterThan(0);
    }
    const alive = await post({ query: '{ clusters { id } }' });
    expect(alive.status).toBe(200);
  });

  it('reports bad arguments and unknown clusters as errors with codes, and other unknown things as null', async () => {
    const { status, body } = await post({
      query: `{ cluster(id: "nope") { id } host(clusterId: "${CLUSTER}", hostId: "nope") { id }
        gpu(id: "GPU-nope") { id } }`,
    });
    expect(status).toBe(200);
    expect(body.data).toEqual({ cluster: null, host: null, gpu: null });
    // An unknown cluster is an error (test/graphql/unknown-cluster.test.ts); an unknown host or GPU is null.
    expect(body.errors).toHaveLength(1);
    expect(codeOf(body)).toBe('NOT_FOUND');

    const ambiguous = await post({ query: '{ gpu(id: "0") { id } }' });
    expect(codeOf(ambiguous.body)).toBe('AMBIGUOUS_GPU_ID');
    const badLimit = await post({ query: '{ deadLetters(limit: 0) { id } }' });
    expect(codeOf(badLimit.body)).toBe('BAD_REQUEST');
    const badTime = await post({ query: '{ telemetry(gpuId: "GPU-x", from: "yesterday") { hasMore } }' });
    expect(badTime.status).toBe(400);
    const badResolution = await post({
      query: '{ telemetry(gpuId: "GPU-x", resolution: "fast") { hasMore } }',
    });
    expect(codeOf(badResolution.body)).toBe('BAD_REQUEST');
  });

  it('turns introspection off (GRAPHQL_INTROSPECTION=false) but keeps __typename', async () => {
    const schema = await post({ query: '{ __schema { types { name } } }' }, strict.base);
    expect(schema.status).toBe(400);
    expect(codeOf(schema.body)).toBe('INTROSPECTION_DISABLED');
    const type = await post({ query: '{ __type(name: "GPU") { name } }' }, strict.base);
    expect(codeOf(type.body)).toBe('INTROSPECTION_DISABLED');
    const typename = await post({ query: '{ __typename clusters { id } }' }, strict.base);
    expect(typename.body.data).toEqual({ __typename: 'Query', clusters: [{ id: CLUSTER }] });
  });

  it('refuses subscriptions over HTTP and runs queries over GET', async () => {
    const sub = await post({ query: 'subscription { telemetryUpdates { cursor } }' });
    expect(sub.status).toBe(400);
    expect(sub.body.errors?.[0]?.message).toMatch(/WebSocket/);
    const get = await fetch(
      `${server.base}/graphql?query=${encodeURIComponent('{ clusters { id totalGPUs } }')}`,
    );
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ data: { clusters: [{ id: CLUSTER, totalGPUs: 247 }] } });
  });
});

/** A raw graphql-transport-ws client. */
function gqlSocket(
  base: string,
  protocol = 'graphql-transport-ws',
  headers: Record<string, string> = {},
): JsonSocket {
  return new JsonSocket(`${base}/graphql`, protocol, { headers });
}

describe('graphql-ws protocol violations', () => {
  it('closes 4401 on subscribe before connection_init', async () => {
    const s = gqlSocket(server.wsBase);
    await s.opened;
    s.send({ id: '1', type: 'subscribe', payload: { query: '{ clusters { id } }' } });
    expect((await s.closed).code).toBe(4401);
  });

  it('closes 4429 on a second connection_init', async () => {
    const s = gqlSocket(server.wsBase);
    await s.opened;
    s.send({ type: 'connection_init' });
    await s.next((m) => m.type === 'connection_ack', 'ack');
    s.send({ type: 'connection_init' });
    expect((await s.closed).code).toBe(4429);
  });

  it('closes 4408 when connection_init does not come within WS_INIT_TIMEOUT', async () => {
    // A server of its own: on the shared strict one, 300 ms would also cut the other tests' sockets
    // whenever a loaded machine stalled between their open and their connection_init.
    const hasty = await startExtraApp(server.runtime, { WS_INIT_TIMEOUT: 300 }, 'api');
    try {
      const s = gqlSocket(hasty.wsBase);
      await s.opened;
      const started = Date.now();
      expect((await s.closed).code).toBe(4408);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await hasty.close();
    }
  });

  it('closes 4400 on a message that is not the protocol, and 4406 without the subprotocol', async () => {
    const s = gqlSocket(server.wsBase);
    await s.opened;
    s.ws.send('{"type":"bogus"');
    expect((await s.closed).code).toBe(4400);
    const t = new JsonSocket(`${server.wsBase}/graphql`);
    expect((await t.closed).code).toBe(4406);
  });

  it('closes 1009 on a message over WS_MAX_PAYLOAD', async () => {
    const s = gqlSocket(strict.wsBase);
    await s.opened;
    s.send({ type: 'connection_init', payload: { pad: 'x'.repeat(10_000) } });
    expect((await s.closed).code).toBe(1009);
  });

  it('refuses the handshake from an Origin outside CORS_ORIGINS with 403', async () => {
    const evil = gqlSocket(server.wsBase, 'graphql-transport-ws', { Origin: 'http://evil.example' });
    await evil.closed;
    expect(evil.refusedWith).toBe(403);
    const allowed = gqlSocket(server.wsBase, 'graphql-transport-ws', { Origin: 'http://localhost:3000' });
    await allowed.opened;
    allowed.close();
  });

  it('answers hostile documents with error messages and keeps the connection usable', async () => {
    const s = gqlSocket(server.wsBase);
    await s.opened;
    s.send({ type: 'connection_init' });
    await s.next((m) => m.type === 'connection_ack', 'ack');
    const cases: [string, string][] = [
      ['d', hostile.depth50],
      ['a', hostile.aliases1000],
      ['c', hostile.fragmentCycle],
      ['b', hostile.fragmentBomb],
      ['s', 'subscription { telemetryUpdates(gpuId: "0") { cursor } }'],
    ];
    for (const [id, query] of cases) s.send({ id, type: 'subscribe', payload: { query } });
    await waitUntil(
      () => cases.every(([id]) => s.messages.some((m) => m.id === id)),
      `an answer to each, got ${JSON.stringify(s.messages).slice(0, 2000)}`,
    );
    const codes = Object.fromEntries(
      cases.map(([id]) => {
        const m = s.messages.find((x) => x.id === id)!;
        const errors = (m.type === 'error' ? m.payload : (m.payload as GqlBody).errors) as GqlBody['errors'];
        return [id, errors?.[0]?.extensions?.code];
      }),
    );
    expect(codes).toEqual({
      d: 'QUERY_TOO_DEEP',
      a: 'TOO_MANY_TOKENS',
      c: 'GRAPHQL_VALIDATION_FAILED',
      b: 'QUERY_TOO_COSTLY',
      s: 'AMBIGUOUS_GPU_ID',
    });
    s.send({ id: 'ok', type: 'subscribe', payload: { query: '{ clusters { id } }' } });
    const next = await s.next((m) => m.id === 'ok' && m.type === 'next', 'a result');
    expect(next.payload).toEqual({ data: { clusters: [{ id: CLUSTER }] } });
    s.close();
  });

  it('limits operations per connection (WS_MAX_SUBSCRIPTIONS)', async () => {
    const s = gqlSocket(strict.wsBase);
    await s.opened;
    s.send({ type: 'connection_init' });
    await s.next((m) => m.type === 'connection_ack', 'ack');
    for (const id of ['1', '2', '3'])
      s.send({ id, type: 'subscribe', payload: { query: 'subscription { telemetryUpdates { cursor } }' } });
    const refused = await s.next((m) => m.type === 'error', 'a refusal');
    expect(refused.id).toBe('3');
    expect((refused.payload as GqlBody['errors'])?.[0]?.extensions?.code).toBe('TOO_MANY_OPERATIONS');
    s.close();
  });
});
