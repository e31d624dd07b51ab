// Read limits on the API's sample-store reads (src/api/read-limiter.ts): bounded concurrency with a
// bounded queue (503 OVERLOADED beyond it), per-request row and time budgets (REST and GraphQL, a
// GraphQL array batch sharing one), and liveness that never waits behind reads. Reads are held on a
// gate the test opens, so every assertion is on counts and order, not on elapsed time.
import { afterEach, describe, expect, it } from 'vitest';
import { ReadBudget, ReadLimiter } from '../../src/api/read-limiter.js';
import { NexusError } from '../../src/errors.js';
import { fleetApp, hold, hostName, uuidOf, until, type Fleet, type Hold } from './fleet.js';

const TELEMETRY = `/api/v1/clusters/c1/hosts/${hostName(0)}/gpus/0/telemetry`;

let fleet: Fleet | undefined;
let gate: Hold | undefined;
afterEach(async () => {
  gate?.open();
  await fleet?.close();
  fleet = undefined;
  gate = undefined;
});

/** A fleet whose store reads wait on a gate (closed at start). */
async function heldFleet(reads: Parameters<typeof fleetApp>[0] = {}) {
  let h: Hold | undefined;
  fleet = await fleetApp({
    ...reads,
    wrap: (store) => {
      h = hold(store);
      return h.store;
    },
  });
  gate = h!;
  gate.close();
  return { fleet, gate };
}

const errorOf = (body: string) => (JSON.parse(body) as { error: { code: string; message: string } }).error;

describe('liveness while reads are held', () => {
  it('/health answers 200 while N telemetry reads and /ready wait; at most READ_CONCURRENCY run', async () => {
    let storeReady = false;
    const { fleet: f, gate: g } = await heldFleet({
      options: { reads: { concurrency: 2, maxQueued: 20, timeoutMs: 0 }, readinessTimeoutMs: 600_000 },
      deps: {
        readiness: {
          store: async () => {
            await gate!.store.ping();
            storeReady = true;
          },
        },
      },
    });
    const settled: string[] = [];
    const reads = Array.from({ length: 6 }, (_, i) =>
      f.app.inject({ method: 'GET', url: `${TELEMETRY}?limit=10` }).then((r) => {
        settled.push(`read${i}`);
        return r;
      }),
    );
    await until(() => g.started === 2, 'two reads in the store');
    const ready = f.app.inject({ method: 'GET', url: '/ready' }).then((r) => {
      settled.push('ready');
      return r;
    });
    const health = await f.app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    // /health answered while every read and /ready were still waiting.
    expect(settled).toEqual([]);
    expect(storeReady).toBe(false);
    expect(g.started).toBe(2);
    expect(g.running).toBe(2);

    g.open();
    const answers = await Promise.all(reads);
    expect(answers.map((r) => r.statusCode)).toEqual([200, 200, 200, 200, 200, 200]);
    expect((await ready).statusCode).toBe(200);
    expect(g.started).toBe(6);
    expect(g.maxRunning).toBe(2);
  });

  it('a read beyond the queue is refused with 503 OVERLOADED and Retry-After', async () => {
    const { fleet: f, gate: g } = await heldFleet({
      options: { reads: { concurrency: 1, maxQueued: 1, timeoutMs: 0 } },
    });
    const first = f.app.inject({ method: 'GET', url: TELEMETRY });
    await until(() => g.started === 1, 'one read in the store');
    const second = f.app.inject({ method: 'GET', url: TELEMETRY });
    // The second request waits in the queue; /metrics shows both.
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(g.started).toBe(1);
    const during = (await f.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(during).toMatch(/^nexus_api_reads_active 1$/m);
    expect(during).toMatch(/^nexus_api_reads_queued 1$/m);
    const third = await f.app.inject({ method: 'GET', url: TELEMETRY });
    expect(third.statusCode).toBe(503);
    expect(third.headers['retry-after']).toBe('1');
    expect(Object.keys(JSON.parse(third.body) as object)).toEqual(['error']);
    expect(errorOf(third.body).code).toBe('OVERLOADED');
    const after = (await f.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(after).toMatch(/^nexus_api_reads_refused_total 1$/m);
    const health = await f.app.inject({ method: 'GET', url: '/health' });
    expect(health.statusCode).toBe(200);
    g.open();
    expect((await first).statusCode).toBe(200);
    expect((await second).statusCode).toBe(200);
    expect(g.maxRunning).toBe(1);
  });

  it('a request whose reads outlast READ_TIMEOUT answers 503 READ_TIMEOUT (REST) or a coded error (GraphQL)', async () => {
    const { fleet: f, gate: g } = await heldFleet({
      options: { reads: { concurrency: 1, maxQueued: 10, timeoutMs: 30 } },
    });
    const rest = await f.app.inject({ method: 'GET', url: TELEMETRY });
    expect(rest.statusCode).toBe(503);
    expect(rest.headers['retry-after']).toBe('1');
    expect(errorOf(rest.body).code).toBe('READ_TIMEOUT');
    const gql = await f.app.inject({
      method: 'POST',
      url: '/graphql',
      payload: { query: `{ telemetry(gpuId: "${uuidOf(0, 0)}") { hasMore } }` },
    });
    expect(gql.statusCode).toBe(200);
    const body = gql.json() as { data: unknown; errors: { extensions: { code: string } }[] };
    expect(body.data).toBeNull();
    expect(body.errors.map((e) => e.extensions.code)).toEqual(['READ_TIMEOUT']);
    g.open();
    // The abandoned store calls finish and free their slot: reads work again.
    await until(() => g.running === 0, 'the held reads to finish');
    const after = await f.app.inject({ method: 'GET', url: TELEMETRY });
    expect(after.statusCode).toBe(200);
  });
});

describe('row budget (READ_MAX_ROWS)', () => {
  it('REST: a limit over the budget is 422 READ_BUDGET_EXCEEDED before any sample query; within it, 200', async () => {
    let queries = 0;
    fleet = await fleetApp({
      options: { reads: { maxRows: 50 } },
      wrap: (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            const value: unknown = Reflect.get(target, prop, receiver);
            if (prop === 'querySamples')
              return (...a: Parameters<typeof store.querySamples>) => {
                queries++;
                return store.querySamples(...a);
              };
            return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
          },
        }),
    });
    const over = await fleet.app.inject({ method: 'GET', url: `${TELEMETRY}?limit=100` });
    expect(over.statusCode).toBe(422);
    expect(errorOf(over.body).code).toBe('READ_BUDGET_EXCEEDED');
    expect(errorOf(over.body).message).toMatch(/READ_MAX_ROWS/);
    expect(queries).toBe(0);
    const within = await fleet.app.inject({ method: 'GET', url: `${TELEMETRY}?limit=3` });
    expect(within.statusCode).toBe(200);
    expect(JSON.parse(within.body)).toHaveLength(3);
    expect(queries).toBe(1);
  });

  it('GraphQL: fan-out stops at the budget with READ_BUDGET_EXCEEDED; a batch shares one budget', async () => {
    let queries = 0;
    fleet = await fleetApp({
      hosts: 1,
      gpusPerHost: 4,
      samplesPerGpu: 40,
      options: { reads: { maxRows: 50, concurrency: 1 } },
      wrap: (store) =>
        new Proxy(store, {
          get(target, prop, receiver) {
            const value: unknown = Reflect.get(target, prop, receiver);
            if (prop === 'querySamples')
              return (...a: Parameters<typeof store.querySamples>) => {
                queries++;
                return store.querySamples(...a);
              };
            return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
          },
        }),
    });
    // 4 GPUs x (20 + 1) rows (40 stored each): two fit in 50, the others are refused without a query.
    const res = await fleet.app.inject({
      method: 'POST',
      url: '/graphql',
      payload: {
        query: `{ host(clusterId: "c1", hostId: "${hostName(0)}") { gpus { telemetry(limit: 20) { hasMore } } } }`,
      },
    });
    const body = res.json() as { errors?: { extensions: { code: string } }[] };
    expect(body.errors?.map((e) => e.extensions.code)).toContain('READ_BUDGET_EXCEEDED');
    expect(queries).toBe(2);

    // One operation of 31 rows fits; two in one batch do not (31 + 31 > 50), each alone does.
    queries = 0;
    const op = { query: `{ telemetry(gpuId: "${uuidOf(0, 1)}", limit: 30) { hasMore } }` };
    const alone = await fleet.app.inject({ method: 'POST', url: '/graphql', payload: op });
    expect((alone.json() as { errors?: unknown }).errors).toBeUndefined();
    const batched = await fleet.app.inject({ method: 'POST', url: '/graphql', payload: [op, op] });
    const answers = batched.json() as { data: unknown; errors?: { extensions: { code: string } }[] }[];
    expect(answers[0]!.errors).toBeUndefined();
    expect(answers[1]!.errors?.[0]?.extensions.code).toBe('READ_BUDGET_EXCEEDED');
    expect(queries).toBe(2);
  });
});

describe('ReadLimiter and ReadBudget', () => {
  it('hands slots over in FIFO order and never runs more than the concurrency', async () => {
    const limiter = new ReadLimiter({ concurrency: 2, maxQueued: 10, timeoutMs: 0, maxRows: 0 });
    const gates: (() => void)[] = [];
    const order: number[] = [];
    let running = 0;
    let most = 0;
    const runs = Array.from({ length: 6 }, (_, i) =>
      limiter.run(limiter.budget(), async () => {
        running++;
        most = Math.max(most, running);
        order.push(i);
        await new Promise<void>((r) => gates.push(r));
        running--;
        return i;
      }),
    );
    await until(() => gates.length === 2, 'two running');
    expect(limiter.stats()).toMatchObject({ active: 2, queued: 4 });
    while (order.length < 6 || gates.length > 0) {
      await until(() => gates.length > 0, 'a running read');
      gates.shift()!();
    }
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(most).toBe(2);
    expect(limiter.stats()).toEqual({ active: 0, queued: 0, refused: 0 });
  });

  it('reserves rows before reads and refuses what does not fit', () => {
    const budget = new ReadBudget({ timeoutMs: 0, maxRows: 100 });
    budget.reserve(60);
    budget.settle(60, 10);
    expect(budget.rows).toBe(10);
    budget.reserve(90);
    expect(() => budget.reserve(1)).toThrow(NexusError);
    try {
      budget.reserve(1);
    } catch (error) {
      expect((error as NexusError).code).toBe('READ_BUDGET_EXCEEDED');
      expect((error as NexusError).status).toBe(422);
    }
  });
});
