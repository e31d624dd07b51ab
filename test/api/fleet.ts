/**
 * A small fleet for the read-path tests: an embedded coordination store holding the hierarchy of
 * `hosts` hosts with `gpusPerHost` GPUs each, an in-memory PGlite sample store with `samplesPerGpu`
 * samples of each GPU, and an app over them (REST and GraphQL; no /ws). `hold` wraps the store so
 * that its reads wait on a gate the test opens, counting reads started and the most at once.
 */
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { buildApp, type ApiDeps, type ApiOptions } from '../../src/api/app.js';
import { DEFAULT_LIMITS } from '../../src/api/graphql/limits.js';
import type { GpuRecord, HostRecord, Sample } from '../../src/domain/types.js';
import { clusterKey, gpuKey, hostKey } from '../../src/hierarchy/paths.js';
import { createPipelineMetrics } from '../../src/metrics/registry.js';
import type { Coordination } from '../../src/ports/coordination.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import { batch, sample } from '../support/samples.js';

export const NOW = Date.parse('2025-07-18T21:00:00Z');
export const T0 = Date.parse('2025-07-18T20:42:34Z');
export const CLUSTER = 'c1';
export const hostName = (h: number): string => `host-${String(h).padStart(3, '0')}`;
export const uuidOf = (h: number, g: number): string => `GPU-${String(h).padStart(4, '0')}-${g}`;

/** Put the hierarchy of a fleet into `c`; `extra` GPU records are added as they are. */
export async function putFleet(
  c: Coordination,
  hosts: number,
  gpusPerHost: number,
  extra: GpuRecord[] = [],
): Promise<void> {
  await c.put(
    clusterKey(CLUSTER),
    JSON.stringify({ clusterId: CLUSTER, name: 'C1', region: 'r', lastSeenMs: NOW }),
  );
  for (let h = 0; h < hosts; h++) {
    const host: HostRecord = { clusterId: CLUSTER, hostname: hostName(h), lastSeenMs: NOW };
    await c.put(hostKey(CLUSTER, host.hostname), JSON.stringify(host));
    for (let g = 0; g < gpusPerHost; g++) {
      const gpu: GpuRecord = {
        clusterId: CLUSTER,
        hostname: hostName(h),
        gpuId: String(g),
        uuid: uuidOf(h, g),
        device: `nvidia${g}`,
        modelName: 'NVIDIA H100 80GB HBM3',
        metrics: { DCGM_FI_DEV_GPU_UTIL: { value: 50, timestampMs: T0 } },
        lastSampleMs: T0,
        lastSeenMs: NOW,
      };
      await c.put(gpuKey(CLUSTER, gpu.hostname, gpu.gpuId), JSON.stringify(gpu));
    }
  }
  for (const gpu of extra) {
    const host: HostRecord = { clusterId: gpu.clusterId, hostname: gpu.hostname, lastSeenMs: NOW };
    await c.put(hostKey(gpu.clusterId, gpu.hostname), JSON.stringify(host));
    await c.put(gpuKey(gpu.clusterId, gpu.hostname, gpu.gpuId), JSON.stringify(gpu));
  }
}

/** `n` samples of one GPU, one second apart from T0. */
export function gpuSamples(h: number, g: number, n: number, overrides: Partial<Sample> = {}): Sample[] {
  return Array.from({ length: n }, (_, i) =>
    sample({
      clusterId: CLUSTER,
      hostname: hostName(h),
      gpuId: String(g),
      uuid: uuidOf(h, g),
      device: `nvidia${g}`,
      timestampMs: T0 + i * 1000,
      value: i,
      labels: { gpu: String(g) },
      ...overrides,
    }),
  );
}

/** A gate: reads wait on it until `open()`; counts reads started, running, and the most at once. */
export interface Hold {
  store: SampleStore;
  started: number;
  running: number;
  maxRunning: number;
  held: boolean;
  open(): void;
  close(): void;
}

/** Wrap `store` so that querySamples, listGpus, listDeadLetters and ping wait while the gate is held. */
export function hold(store: SampleStore): Hold {
  let release: () => void = () => {};
  let gate: Promise<void> = Promise.resolve();
  const h: Hold = {
    store: undefined as unknown as SampleStore,
    started: 0,
    running: 0,
    maxRunning: 0,
    held: false,
    open() {
      h.held = false;
      release();
    },
    close() {
      h.held = true;
      gate = new Promise((resolve) => (release = resolve));
    },
  };
  const gated = new Set(['querySamples', 'listGpus', 'listDeadLetters', 'ping']);
  h.store = new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const fn = value as (...a: unknown[]) => Promise<unknown>;
      if (!gated.has(String(prop))) return fn.bind(target);
      return async (...args: unknown[]) => {
        const counted = prop !== 'ping';
        if (counted) {
          h.started++;
          h.running++;
          h.maxRunning = Math.max(h.maxRunning, h.running);
        }
        try {
          await gate;
          return await fn.apply(target, args);
        } finally {
          if (counted) h.running--;
        }
      };
    },
  });
  return h;
}

/** Options of {@link fleetApp}. */
export interface FleetOptions {
  hosts?: number;
  gpusPerHost?: number;
  samplesPerGpu?: number;
  /** Wrap the store (e.g. {@link hold}) before the app sees it. */
  wrap?: (store: SampleStore) => SampleStore;
  options?: ApiOptions;
  deps?: Partial<ApiDeps>;
  /** Extra samples written to the store. */
  samples?: Sample[];
  extraGpus?: GpuRecord[];
}

/** A built app over a fleet; `close()` closes app, store and coordination. */
export interface Fleet {
  app: FastifyInstance;
  coordination: Coordination;
  store: SampleStore;
  close(): Promise<void>;
}

/** GraphQL settings for test apps: the default limits, batching on, no subscriptions. */
export const TEST_GRAPHQL = { introspection: true, limits: DEFAULT_LIMITS, maxBatch: 10 };

/** Build a fleet and an app over it. */
export async function fleetApp(o: FleetOptions = {}): Promise<Fleet> {
  const hosts = o.hosts ?? 2;
  const gpusPerHost = o.gpusPerHost ?? 2;
  const coordination = createEmbeddedCoordination();
  await putFleet(coordination, hosts, gpusPerHost, o.extraGpus);
  const store = await createPgliteSampleStore({ memory: true });
  await store.migrate();
  const all: Sample[] = [...(o.samples ?? [])];
  for (let h = 0; h < hosts; h++)
    for (let g = 0; g < gpusPerHost; g++) all.push(...gpuSamples(h, g, o.samplesPerGpu ?? 5));
  if (all.length > 0) await store.writeBatch(batch(all));
  const app = await buildApp(
    {
      coordination,
      store: o.wrap ? o.wrap(store) : store,
      logger: pino({ level: 'silent' }),
      metrics: createPipelineMetrics(),
      staleAfterMs: 60_000,
      readiness: {},
      now: () => NOW,
      ...o.deps,
    },
    { docs: false, graphql: TEST_GRAPHQL, ...o.options },
  );
  await app.ready();
  return {
    app,
    coordination,
    store,
    async close() {
      await app.close();
      await store.close();
      await coordination.close();
    },
  };
}

/** Wait (polling the event loop, no fixed sleeps) until `condition` holds; fails after many turns. */
export async function until(condition: () => boolean, what: string, turns = 20_000): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, i < 100 ? 0 : 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}
