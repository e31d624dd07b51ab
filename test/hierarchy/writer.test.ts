/**
 * The hierarchy writer against the embedded store and a real etcd: GPU records are merged many per
 * txn (one revision, many watch events), and two writers updating the same GPUs at once (two
 * collectors) never lose each other's values: their compare-and-swap txns conflict, re-read and
 * merge again, and every record ends with both writers' newest values.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { createEtcdCoordination } from '../../src/adapters/etcd/coordination.js';
import type { GpuRecord, Sample } from '../../src/domain/types.js';
import { CLUSTERS_PREFIX, parseKey } from '../../src/hierarchy/paths.js';
import { GPUS_PER_TXN, HierarchyWriter } from '../../src/hierarchy/writer.js';
import type { Coordination, WatchEvent } from '../../src/ports/coordination.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { sample } from '../support/samples.js';

const GPUS = 100;
const ROUNDS = 12;
const T0 = Date.parse('2026-01-01T00:00:00Z');

function samples(metric: string, round: number): Sample[] {
  return Array.from({ length: GPUS }, (_, g) =>
    sample({
      hostname: `host-${Math.floor(g / 8)}`,
      gpuId: String(g % 8),
      uuid: `GPU-${g}`,
      device: `nvidia${g % 8}`,
      metric,
      labels: {},
      timestampMs: T0 + round * 1000,
      value: round * 1000 + g,
    }),
  );
}

const batch = (metric: string, round: number) => ({
  id: `${metric}-${round}`,
  source: 'test',
  samples: samples(metric, round),
  deadLetters: [],
});

let etcd: EtcdHandle;

beforeAll(async () => {
  etcd = await startEtcd({ members: 1 });
}, 60_000);

afterAll(async () => {
  await etcd?.stop();
});

/** A view of `inner` that counts its txns and how many lost their compares. */
function countingTxns(inner: Coordination): { view: Coordination; txns: number; failed: number } {
  const counts = { view: inner, txns: 0, failed: 0 };
  counts.view = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'txn')
        return async (...args: Parameters<Coordination['txn']>) => {
          const result = await target.txn(...args);
          counts.txns += 1;
          if (!result.succeeded) counts.failed += 1;
          return result;
        };
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return counts;
}

describe.each([
  {
    name: 'embedded',
    // One in-process store shared by both writers, as two collector workers of one process.
    openPair: (): Coordination[] => {
      const store = createEmbeddedCoordination();
      return [store, store];
    },
  },
  {
    name: 'etcd',
    // Two clients, as two collector processes.
    openPair: (): Coordination[] => [
      createEtcdCoordination({ endpoints: etcd.endpointList }),
      createEtcdCoordination({ endpoints: etcd.endpointList }),
    ],
  },
])('HierarchyWriter on $name', ({ openPair }) => {
  const closeAll = async (stores: Coordination[]) => {
    for (const store of new Set(stores)) await store.close();
  };

  it('writes a round of 100 GPUs in ceil(100 / 32) txns, one revision each', async () => {
    const pair = openPair();
    const coordination = pair[0]!;
    try {
      const events: WatchEvent[] = [];
      const watcher = await coordination.watch(CLUSTERS_PREFIX, { onEvent: (e) => events.push(e) });
      const writer = new HierarchyWriter({ coordination });
      await writer.apply(batch('DCGM_FI_DEV_GPU_UTIL', 1));
      const deadline = Date.now() + 5_000;
      while (events.filter((e) => e.type === 'put' && parseKey(e.kv.key)?.kind === 'gpu').length < GPUS) {
        if (Date.now() > deadline) throw new Error(`only ${events.length} watch events`);
        await new Promise((r) => setTimeout(r, 10));
      }
      await watcher.cancel();
      const gpuEvents = events.filter((e) => e.type === 'put' && parseKey(e.kv.key)?.kind === 'gpu');
      const revisions = new Set(gpuEvents.map((e) => e.revision));
      expect(gpuEvents).toHaveLength(GPUS);
      expect(revisions.size).toBe(Math.ceil(GPUS / GPUS_PER_TXN));
    } finally {
      await closeAll(pair);
    }
  });

  it('with minRoundIntervalMs, batches applied within the interval share one round: one write per GPU', async () => {
    /** Apply three metrics' batches of `round`, 60 ms apart, and wait for all of them. */
    const applySpaced = async (writer: HierarchyWriter, round: number): Promise<void> => {
      const applied: Array<Promise<void>> = [];
      for (const metric of ['DCGM_FI_DEV_GPU_TEMP', 'DCGM_FI_DEV_POWER_USAGE', 'DCGM_FI_DEV_SM_CLOCK']) {
        applied.push(writer.apply(batch(metric, round)));
        await new Promise((r) => setTimeout(r, 60));
      }
      await Promise.all(applied);
    };
    const pair = openPair();
    try {
      const plain = countingTxns(pair[0]!);
      const spaced = countingTxns(pair[0]!);
      const txnsPerRound = Math.ceil(GPUS / GPUS_PER_TXN);
      // Default (0): a batch applied while no round runs starts one at once, so three batches
      // applied a tick apart take three rounds after the first.
      const eager = new HierarchyWriter({ coordination: plain.view });
      await eager.apply(batch('DCGM_FI_DEV_GPU_UTIL', 1));
      const before = plain.txns;
      await applySpaced(eager, 2);
      expect(plain.txns - before).toBe(3 * txnsPerRound);

      const writer = new HierarchyWriter({ coordination: spaced.view, minRoundIntervalMs: 400 });
      const firstRoundAsked = performance.now();
      await writer.apply(batch('DCGM_FI_DEV_GPU_UTIL', 3));
      const start = spaced.txns;
      await applySpaced(writer, 4);
      // One round for the three batches, started no sooner than 400 ms after the first one started.
      expect(spaced.txns - start).toBe(txnsPerRound);
      expect(performance.now() - firstRoundAsked).toBeGreaterThanOrEqual(395);
      const { kvs } = await pair[0]!.range(CLUSTERS_PREFIX);
      const record = kvs.find((kv) => parseKey(kv.key)?.kind === 'gpu');
      const metrics = (JSON.parse(record!.value) as GpuRecord).metrics;
      for (const metric of ['DCGM_FI_DEV_GPU_TEMP', 'DCGM_FI_DEV_POWER_USAGE', 'DCGM_FI_DEV_SM_CLOCK'])
        expect(metrics[metric]?.timestampMs).toBe(T0 + 4 * 1000);
      expect(() => new HierarchyWriter({ coordination: pair[0]!, minRoundIntervalMs: -1 })).toThrow(
        RangeError,
      );
    } finally {
      await pair[0]!.deletePrefix(CLUSTERS_PREFIX); // etcd is shared by the cases of this file
      await closeAll(pair);
    }
  });

  it('two writers on the same GPUs at once lose nothing: every record ends with both newest values', async () => {
    const pair = openPair();
    const [a, b] = pair as [Coordination, Coordination];
    try {
      const writerA = new HierarchyWriter({ coordination: a });
      // Count writer B's txn outcomes to show the writers did conflict.
      const counted = countingTxns(b);
      const writerB = new HierarchyWriter({ coordination: counted.view });
      const run = async (writer: HierarchyWriter, metric: string): Promise<void> => {
        for (let round = 1; round <= ROUNDS; round++) await writer.apply(batch(metric, round));
      };
      await Promise.all([run(writerA, 'DCGM_FI_DEV_GPU_UTIL'), run(writerB, 'DCGM_FI_DEV_GPU_TEMP')]);
      const { kvs } = await a.range(CLUSTERS_PREFIX);
      const records = kvs
        .filter((kv) => parseKey(kv.key)?.kind === 'gpu')
        .map((kv) => JSON.parse(kv.value) as GpuRecord);
      expect(records).toHaveLength(GPUS);
      for (const record of records) {
        const g = Number(record.uuid.slice('GPU-'.length));
        expect(record.metrics).toEqual({
          DCGM_FI_DEV_GPU_UTIL: { value: ROUNDS * 1000 + g, timestampMs: T0 + ROUNDS * 1000 },
          DCGM_FI_DEV_GPU_TEMP: { value: ROUNDS * 1000 + g, timestampMs: T0 + ROUNDS * 1000 },
        });
        expect(record.lastSampleMs).toBe(T0 + ROUNDS * 1000);
      }
      console.info(
        `two writers: writer B ran ${counted.txns} txns, ${counted.failed} lost a compare-and-swap and merged again`,
      );
      expect(counted.failed).toBeGreaterThan(0);
    } finally {
      await closeAll(pair);
    }
  });
});
