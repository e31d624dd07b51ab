// Property-based (fast-check, bounded runs) over the edge of the API: arbitrary text and bytes in
// every path and query parameter of every REST route, arbitrary GraphQL documents (deep nesting,
// many aliases, fragment cycles, random text) and variables. Invariants: never a 500, every refusal
// is a 4xx in the documented error shape, nothing throws out of inject, and /health still answers.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetApp, hostName, uuidOf, type Fleet } from './fleet.js';

let fleet: Fleet;
beforeAll(async () => {
  fleet = await fleetApp({ hosts: 2, gpusPerHost: 2, samplesPerGpu: 3 });
});
afterAll(async () => fleet?.close());

/** Percent-encode arbitrary text; lone surrogates and raw bytes become arbitrary %XX sequences. */
const encodedText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }).map((s) => {
    try {
      return encodeURIComponent(s);
    } catch {
      return s.replace(/[^A-Za-z0-9]/g, '%ED%A0%80');
    }
  }),
  fc
    .uint8Array({ maxLength: 12 })
    .map((bytes) => [...bytes].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('')),
  fc.constantFrom(
    '%00',
    '0',
    '-1',
    '10001',
    'asc',
    'raw',
    '1m',
    '2025-07-18T20:42:34Z',
    'DCGM_FI_DEV_GPU_UTIL',
    '',
    '%',
    '%%',
  ),
);

const PARAMS = ['limit', 'start_time', 'end_time', 'metric', 'order', 'resolution', 'source', 'x', '%00'];

const routes = [
  (a: string) => `/api/v1/clusters/${a}`,
  (a: string) => `/api/v1/clusters/${a}/hosts`,
  (a: string) => `/api/v1/clusters/c1/hosts/${a}`,
  (a: string) => `/api/v1/clusters/c1/hosts/${a}/gpus`,
  (a: string) => `/api/v1/clusters/c1/hosts/${hostName(0)}/gpus/${a}`,
  (a: string) => `/api/v1/clusters/c1/hosts/${hostName(0)}/gpus/${a}/telemetry`,
  (a: string) => `/api/v1/clusters/${a}/hosts/${hostName(0)}/gpus/0/telemetry`,
  (a: string) => `/api/v1/gpus/${a}/telemetry`,
  () => `/api/v1/gpus/${uuidOf(0, 0)}/telemetry`,
  () => `/api/v1/clusters/c1/hosts/${hostName(1)}/gpus/1/telemetry`,
  () => '/api/v1/dead-letters',
  () => '/api/v1/gpus',
  () => '/api/v1/clusters',
  () => '/health',
  () => '/ready',
];

function expectErrorShape(status: number, body: string, what: string): void {
  expect(status, `${what}: ${body}`).toBeLessThan(500);
  if (status < 400) return;
  const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
  expect(Object.keys(parsed), what).toEqual(['error']);
  expect(typeof parsed.error?.code, what).toBe('string');
  expect(typeof parsed.error?.message, what).toBe('string');
}

describe('REST parameters (property)', () => {
  it('never answers 500 and always uses the error shape, whatever the parameters', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: routes.length - 1 }),
        encodedText.filter((s) => s !== '' && !s.includes('/') && !s.includes('?') && !s.includes('#')),
        fc.array(fc.tuple(fc.constantFrom(...PARAMS), encodedText), { maxLength: 4 }),
        async (route, segment, query) => {
          const qs = query.map(([k, v]) => `${k}=${v}`).join('&');
          const url = routes[route]!(segment) + (qs ? `?${qs}` : '');
          const res = await fleet.app.inject({ method: 'GET', url });
          expectErrorShape(res.statusCode, res.body, url);
          expect(res.body).not.toMatch(/invalid byte sequence|Unicode escape|Internal server error/);
        },
      ),
      { numRuns: 300 },
    );
    expect((await fleet.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });
});

/** Documents built from pieces: nesting, aliases, fragments (cycles included) and random text. */
const FIELDS = [
  'clusters',
  'cluster(id: "c1")',
  `host(clusterId: "c1", hostId: "${hostName(0)}")`,
  'hosts',
  'gpus',
  'id',
  'telemetry(limit: 2)',
  'samples',
  'value',
  '__typename',
  'deadLetters',
  'nope',
  'gpu(id: "0")',
];

const selection: fc.Arbitrary<string> = fc.letrec<{ sel: string }>((tie) => ({
  sel: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(...FIELDS),
    fc
      .tuple(fc.constantFrom(...FIELDS), fc.array(tie('sel'), { minLength: 1, maxLength: 3 }))
      .map(([f, subs]) => `${f} { ${subs.join(' ')} }`),
    fc.tuple(fc.nat({ max: 99 }), fc.constantFrom(...FIELDS)).map(([i, f]) => `a${i}: ${f}`),
    fc.constantFrom('...A', '...B', '... on Cluster { id }'),
  ),
})).sel;

const documents = fc.oneof(
  fc.array(selection, { minLength: 1, maxLength: 4 }).map((s) => `{ ${s.join(' ')} }`),
  fc
    .tuple(fc.array(selection, { minLength: 1, maxLength: 3 }), selection, selection)
    .map(
      ([top, a, b]) =>
        `query Q { ${top.join(' ')} } fragment A on Cluster { ${a} ...B } fragment B on Cluster { ${b} ...A }`,
    ),
  fc.nat({ max: 200 }).map((d) => `${'{ cluster(id: "c1") { hosts { '.repeat(d)}id${' } } }'.repeat(d)}`),
  fc
    .nat({ max: 400 })
    .map((n) => `{ ${Array.from({ length: n }, (_, i) => `x${i}: clusters { id }`).join(' ')} }`),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.constantFrom(
    '{',
    '}',
    'subscription { telemetryUpdates { cursor } }',
    'mutation { x }',
    '{ __schema { types { name } } }',
  ),
);

const variables = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue({ maxDepth: 4 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
);

describe('GraphQL documents (property)', () => {
  it('never answers 500 and always answers with GraphQL errors carrying a code, or data', async () => {
    await fc.assert(
      fc.asyncProperty(documents, variables, fc.boolean(), async (query, vars, batch) => {
        const one = { query, variables: vars };
        const res = await fleet.app.inject({
          method: 'POST',
          url: '/graphql',
          payload: batch ? [one, one] : one,
        });
        expect(res.statusCode, `${query}: ${res.body}`).toBeLessThan(500);
        const body = res.json() as unknown;
        for (const answer of Array.isArray(body) ? body : [body]) {
          const a = answer as {
            data?: unknown;
            errors?: { message: string; extensions?: { code?: string } }[];
          };
          expect('data' in a || (a.errors?.length ?? 0) > 0, JSON.stringify(a)).toBe(true);
          for (const e of a.errors ?? []) {
            expect(typeof e.extensions?.code, JSON.stringify(e)).toBe('string');
            expect(e.extensions?.code).not.toBe('INTERNAL');
          }
        }
      }),
      { numRuns: 200 },
    );
    expect((await fleet.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });

  it('GET /graphql with arbitrary query parameters never answers 500', async () => {
    await fc.assert(
      fc.asyncProperty(encodedText, encodedText, async (q, v) => {
        const res = await fleet.app.inject({
          method: 'GET',
          url: `/graphql?query=${q}&variables=${v}&operationName=${v}`,
        });
        expect(res.statusCode, res.body).toBeLessThan(500);
      }),
      { numRuns: 150 },
    );
    expect((await fleet.app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
  });
});
