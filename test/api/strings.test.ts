// NUL, other control characters and invalid UTF-8 in any string parameter are refused at the edge
// with 400 BAD_REQUEST naming the parameter, on every REST route that takes a string and in GraphQL
// arguments and variables: they never reach the sample store (PostgreSQL refuses them with
// store-internal messages).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badCharacters, checkQueryEncoding } from '../../src/api/params.js';
import { fleetApp, hostName, uuidOf, type Fleet } from './fleet.js';

let fleet: Fleet;
let storeReads = 0;
beforeAll(async () => {
  fleet = await fleetApp({
    wrap: (store) =>
      new Proxy(store, {
        get(target, prop, receiver) {
          const value: unknown = Reflect.get(target, prop, receiver);
          if (typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            if (['querySamples', 'listGpus', 'listDeadLetters'].includes(String(prop))) storeReads++;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      }),
  });
});
afterAll(async () => fleet?.close());

const H = hostName(0);
const bad = ['%00', 'a%00b', '%01', '%0A', '%1F', '%7F', '%C2%85', '%FF', '%C3', '%ED%A0%80'];

/** Every route with a string parameter: [template, parameter name]; `$` is replaced by the bad text. */
const cases: [string, string][] = [
  ['/api/v1/clusters/$', 'clusterId'],
  ['/api/v1/clusters/$/hosts', 'clusterId'],
  ['/api/v1/clusters/c1/hosts/$', 'hostId'],
  ['/api/v1/clusters/c1/hosts/$/gpus', 'hostId'],
  [`/api/v1/clusters/c1/hosts/${H}/gpus/$`, 'gpuId'],
  [`/api/v1/clusters/c1/hosts/x$x/gpus/0/telemetry`, 'hostId'],
  [`/api/v1/clusters/c1/hosts/${H}/gpus/$/telemetry`, 'gpuId'],
  [`/api/v1/clusters/c1/hosts/${H}/gpus/0/telemetry?metric=$`, 'metric'],
  [`/api/v1/clusters/c1/hosts/${H}/gpus/0/telemetry?metric=DCGM_FI_DEV_GPU_UTIL&metric=$`, 'metric'],
  [`/api/v1/clusters/c1/hosts/${H}/gpus/0/telemetry?start_time=$`, 'start_time'],
  [`/api/v1/clusters/c1/hosts/${H}/gpus/0/telemetry?end_time=$`, 'end_time'],
  [`/api/v1/clusters/c1/hosts/${H}/gpus/0/telemetry?order=$`, 'order'],
  [`/api/v1/clusters/c1/hosts/${H}/gpus/0/telemetry?resolution=$`, 'resolution'],
  [`/api/v1/clusters/c1/hosts/${H}/gpus/0/telemetry?limit=$`, 'limit'],
  ['/api/v1/gpus/$/telemetry', 'id'],
  [`/api/v1/gpus/${uuidOf(0, 0)}/telemetry?metric=$`, 'metric'],
  ['/api/v1/dead-letters?source=$', 'source'],
];

describe('REST string parameters', () => {
  it.each(cases)(
    '%s refuses every bad value with 400 naming %s, reading nothing',
    async (template, parameter) => {
      for (const text of bad) {
        const before = storeReads;
        const url = template.replace('$', text);
        const res = await fleet.app.inject({ method: 'GET', url });
        // A path segment that decodes to nothing but a C1 character is dropped by the router: the
        // route then refuses the empty value, still naming the parameter.
        expect(res.statusCode, `${url}: ${res.body}`).toBe(400);
        const body = JSON.parse(res.body) as { error: { code: string; message: string; parameter?: string } };
        expect(Object.keys(body)).toEqual(['error']);
        expect(body.error.code, url).toBe('BAD_REQUEST');
        // Bad URL encoding in the path is refused by the router before the route is known.
        if (!(text.startsWith('%FF') || text === '%C3' || text === '%ED%A0%80') || template.includes('?'))
          expect(body.error.parameter, url).toBe(parameter);
        expect(res.body).not.toMatch(/invalid byte sequence|Unicode escape/);
        expect(res.body.includes('\u0000')).toBe(false);
        expect(storeReads, url).toBe(before);
      }
    },
  );

  it('refuses a control character in the name of an unknown parameter too', async () => {
    const res = await fleet.app.inject({ method: 'GET', url: '/api/v1/clusters?a%00=1' });
    expect(res.statusCode).toBe(400);
    expect((JSON.parse(res.body) as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
  });

  it('still serves good values (unicode included)', async () => {
    const ok = await fleet.app.inject({ method: 'GET', url: '/api/v1/clusters/c1' });
    expect(ok.statusCode).toBe(200);
    const unicode = await fleet.app.inject({ method: 'GET', url: '/api/v1/clusters/%C3%A9t%C3%A9' });
    expect(unicode.statusCode).toBe(404);
  });
});

describe('GraphQL string arguments and variables', () => {
  const post = (payload: Record<string, unknown>) =>
    fleet.app.inject({ method: 'POST', url: '/graphql', payload });
  const documents: [string, string][] = [
    ['{ cluster(id: "a\\u0000b") { id } }', 'id'],
    ['{ host(clusterId: "c1", hostId: "\\u0001") { id } }', 'hostId'],
    ['{ gpu(id: "GPU-\\u0000") { id } }', 'id'],
    ['{ telemetry(gpuId: "GPU-x", metrics: ["ok", "\\u007f"]) { hasMore } }', 'metrics'],
    ['{ deadLetters(source: "a\\nb") { id } }', 'source'],
  ];
  it.each(documents)('%s is 400 BAD_REQUEST naming %s', async (query, parameter) => {
    const before = storeReads;
    const res = await post({ query });
    expect(res.statusCode, res.body).toBe(400);
    const body = res.json() as {
      data?: unknown;
      errors: { extensions: { code: string; parameter?: string } }[];
    };
    expect(body.data).toBeUndefined();
    expect(body.errors[0]!.extensions).toEqual({ code: 'BAD_REQUEST', parameter });
    expect(storeReads).toBe(before);
  });

  it('checks variables at any depth, naming the variable', async () => {
    const res = await post({
      query:
        'query ($m: [String!], $s: String) { deadLetters(source: $s) { id } telemetry(gpuId: "GPU-x", metrics: $m) { hasMore } }',
      variables: { m: ['fine', 'bad\u0000'], s: 'ok' },
    });
    expect(res.statusCode).toBe(400);
    expect((res.json() as { errors: { extensions: unknown }[] }).errors[0]!.extensions).toEqual({
      code: 'BAD_REQUEST',
      parameter: 'm',
    });
    const surrogate = await post({
      query: 'query ($g: ID!) { telemetry(gpuId: $g) { hasMore } }',
      variables: { g: 'GPU-\ud800' },
    });
    expect(surrogate.statusCode).toBe(400);
    expect((surrogate.json() as { errors: { extensions: unknown }[] }).errors[0]!.extensions).toEqual({
      code: 'BAD_REQUEST',
      parameter: 'g',
    });
    const get = await fleet.app.inject({
      method: 'GET',
      url: `/graphql?query=${encodeURIComponent('{ cluster(id: "x\\u0000") { id } }')}`,
    });
    expect(get.statusCode).toBe(400);
  });

  it('keeps newlines in the document itself', async () => {
    const res = await post({ query: '{\n  cluster(id: "c1") {\n    id\n  }\n}' });
    expect(res.json()).toEqual({ data: { cluster: { id: 'c1' } } });
  });
});

describe('badCharacters and checkQueryEncoding', () => {
  it('flags control characters and lone surrogates only', () => {
    expect(badCharacters('mtv5-dgx1-hgpu-031')).toBeUndefined();
    expect(badCharacters('été 🚀')).toBeUndefined();
    expect(badCharacters('a\u0000')).toMatch(/control/);
    expect(badCharacters('\u009f')).toMatch(/control/);
    expect(badCharacters('\ud800x')).toMatch(/UTF-8/);
    expect(badCharacters('x\udc00')).toMatch(/UTF-8/);
  });

  it('names the parameter whose percent-encoding is not UTF-8', () => {
    expect(() => checkQueryEncoding('/x?a=1&b=%C3%A9')).not.toThrow();
    expect(() => checkQueryEncoding('/x?a=1&b=%FF')).toThrow(/'b'/);
  });
});
