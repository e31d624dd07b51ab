/**
 * The cost model counts the real fleet: hierarchy lists are costed with the number of hosts and
 * GPUs the live hierarchy holds (a snapshot refreshed from the hierarchy reader), not an assumed 32
 * hosts, and an HTTP array batch is costed as a whole. Counted on apps over an embedded
 * coordination store holding fleets of known sizes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { analyzeDocument, ASSUMED_CARDINALITY, DEFAULT_LIMITS } from '../../src/api/graphql/limits.js';
import { parse } from '../../src/api/graphql/graphql.js';
import { fleetApp, putFleet, TEST_GRAPHQL, type Fleet } from '../api/fleet.js';

/** 8 GPUs per host, 50 samples per GPU: under the old model (32 hosts assumed) about 41,500. */
const HEAVY = `{ cluster(id: "c1") { hosts { id gpus { id telemetry(limit: 50) { samples { value timestamp } } } } } }`;

let fleet: Fleet | undefined;
afterEach(async () => {
  await fleet?.close();
  fleet = undefined;
});

interface Answer {
  data?: unknown;
  errors?: { message: string; extensions: { code: string } }[];
}

async function post(payload: object): Promise<{ status: number; body: Answer | Answer[] }> {
  const res = await fleet!.app.inject({ method: 'POST', url: '/graphql', payload });
  return { status: res.statusCode, body: res.json() as Answer };
}

describe('cost with the real number of hosts and GPUs', () => {
  it('passes over 4 hosts, and is refused with QUERY_TOO_COSTLY once the fleet has 100 hosts', async () => {
    let sampleQueries = 0;
    fleet = await fleetApp({
      hosts: 4,
      gpusPerHost: 8,
      samplesPerGpu: 0,
      options: { graphql: { ...TEST_GRAPHQL, cardinalityTtlMs: 0 } },
      wrap: (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            const value: unknown = Reflect.get(target, prop, receiver);
            if (typeof value !== 'function') return value;
            return (...args: unknown[]) => {
              if (prop === 'querySamples') sampleQueries++;
              return (value as (...a: unknown[]) => unknown).apply(target, args);
            };
          },
        }),
    });
    const small = await post({ query: HEAVY });
    expect(small.status).toBe(200);
    expect((small.body as Answer).errors).toBeUndefined();
    expect(sampleQueries).toBe(32);

    await putFleet(fleet.coordination, 100, 8);
    sampleQueries = 0;
    const big = await post({ query: HEAVY });
    expect(big.status).toBe(400);
    const error = (big.body as Answer).errors![0]!;
    expect(error.extensions.code).toBe('QUERY_TOO_COSTLY');
    expect(error.message).toMatch(/estimated cost of \d+; the limit is 50000/);
    expect(sampleQueries).toBe(0);
  });

  it('costs lists from the snapshot: every host under clusters, the largest cluster under cluster(id)', () => {
    const sizes = {
      clusters: 2,
      hosts: 101,
      gpus: 808,
      maxHostsPerCluster: 100,
      maxGpusPerCluster: 800,
      maxGpusPerHost: 8,
    };
    const cost = (q: string) => analyzeDocument(parse(q), DEFAULT_LIMITS, undefined, sizes).costs.get('')!;
    // clusters(1) + 2 x [hosts(1) + 50.5 x [gpus(1) + 8 x id(1)]] = 1 + 2 + 101 + 808
    expect(cost('{ clusters { hosts { gpus { id } } } }')).toBeCloseTo(1 + 2 + 101 + 808);
    // cluster(1) + hosts(1) + 100 x [gpus(1) + 8 x id(1)]
    expect(cost('{ cluster(id: "x") { hosts { gpus { id } } } }')).toBeCloseTo(1 + 1 + 100 + 800);
    // host(1) + gpus(1) + 8 ids; a sample-store field adds 100
    expect(cost('{ host(clusterId: "x", hostId: "y") { gpus { id } } }')).toBe(10);
    // The analytics fields scan the sample store: 100 each on top of field and selection.
    expect(cost('{ analyticsAttribution { key } }')).toBe(102);
    expect(cost('{ analyticsIdle { hostname } analyticsOutliers { hostname } }')).toBe(204);
    expect(cost('{ alerts { name } }')).toBe(7);
    expect(cost('{ telemetry(gpuId: "g", limit: 1) { hasMore } }')).toBe(102);
    // Without a snapshot, the assumed sizes.
    const assumed = analyzeDocument(parse('{ cluster(id: "x") { hosts { id } } }'), DEFAULT_LIMITS).costs.get(
      '',
    );
    expect(assumed).toBe(2 + ASSUMED_CARDINALITY.maxHostsPerCluster);
  });
});

describe('an array batch is costed as a whole', () => {
  it('refuses a batch whose operations together exceed GRAPHQL_MAX_COST, running none of them', async () => {
    let sampleQueries = 0;
    fleet = await fleetApp({
      hosts: 4,
      gpusPerHost: 8,
      samplesPerGpu: 0,
      wrap: (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            const value: unknown = Reflect.get(target, prop, receiver);
            if (typeof value !== 'function') return value;
            return (...args: unknown[]) => {
              if (prop === 'querySamples') sampleQueries++;
              return (value as (...a: unknown[]) => unknown).apply(target, args);
            };
          },
        }),
    });
    // About 8,000 each: 7 of them are over 50,000 together.
    const op = { query: HEAVY };
    const refused = await post(Array.from({ length: 7 }, () => op));
    expect(refused.status).toBe(400);
    const error = (refused.body as Answer).errors![0]!;
    expect(error.extensions.code).toBe('QUERY_TOO_COSTLY');
    expect(error.message).toMatch(/batch of 7 operations/);
    expect(sampleQueries).toBe(0);

    const fine = await post([op, op]);
    expect(fine.status).toBe(200);
    expect((fine.body as Answer[]).map((a) => a.errors)).toEqual([undefined, undefined]);
    expect(sampleQueries).toBe(64);
  });
});
