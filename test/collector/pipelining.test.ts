/**
 * Collector pipelining with a live hierarchy, on the real embedded adapters (EmbeddedQueue,
 * EmbeddedCoordination, an in-memory PGlite store), a real HierarchyWriter and a real Collector.
 * The coordination is wrapped so the test can count, hold back (gate) or fail the compare-and-swap
 * txns that write GPU records. The file shows that:
 * 1. a worker claims its next batch as soon as the current one is durable, so hierarchy rounds
 *    coalesce: a metric-major stream (each batch = one metric of the same 50 GPUs) writes each GPU
 *    record once per round, not once per batch, and every record still ends with the newest value
 *    of every metric;
 * 2. a batch is stored but not acked while its hierarchy round is held back, and acked once it ends;
 * 3. a failed round gives the batch back: it is redelivered, stored once (batch ledger) and the
 *    hierarchy ends current;
 * 4. `stop()` does not resolve while a written batch waits for its round, and acks it before it does.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { createEmbeddedQueue, type EmbeddedQueue } from '../../src/adapters/embedded/queue.js';
import { createPgliteSampleStore, type PgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { Collector, MAX_UNACKED_PER_WORKER } from '../../src/collector/collector.js';
import { encodeNewBatch } from '../../src/domain/batch-codec.js';
import type { Batch, Sample } from '../../src/domain/types.js';
import { NexusError } from '../../src/errors.js';
import { gpuKey, parseKey } from '../../src/hierarchy/paths.js';
import { HierarchyReader } from '../../src/hierarchy/reader.js';
import { GPUS_PER_TXN, HierarchyWriter } from '../../src/hierarchy/writer.js';
import type {
  Compare,
  Coordination,
  KeyValue,
  Lease,
  RangeResult,
  TxnOp,
  TxnResult,
  WatchOptions,
  Watcher,
} from '../../src/ports/coordination.js';
import { createLogger } from '../../src/util/logger.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const CLUSTER = 'c1';
const HOSTS = 10;
const GPUS_PER_HOST = 5;
const GPUS = HOSTS * GPUS_PER_HOST; // 50
/** Txns per hierarchy round: the writer updates up to GPUS_PER_TXN records per txn. */
const TXNS_PER_ROUND = Math.ceil(GPUS / GPUS_PER_TXN); // 2
const METRICS = [
  'DCGM_FI_DEV_GPU_UTIL',
  'DCGM_FI_DEV_GPU_TEMP',
  'DCGM_FI_DEV_POWER_USAGE',
  'DCGM_FI_DEV_MEM_COPY_UTIL',
  'DCGM_FI_DEV_FB_USED',
  'DCGM_FI_DEV_FB_FREE',
  'DCGM_FI_DEV_SM_CLOCK',
  'DCGM_FI_DEV_MEM_CLOCK',
];
const T0 = Date.parse('2026-01-01T00:00:00Z');

const hostOf = (g: number): string => `host-${String(Math.floor(g / GPUS_PER_HOST)).padStart(2, '0')}`;
const gpuIdOf = (g: number): string => String(g % GPUS_PER_HOST);
const metricOf = (k: number): string => METRICS[k % METRICS.length]!;
/** Time and value of GPU `g` in batch `k`: every batch has its own time, every GPU its own value. */
const timeOf = (k: number): number => T0 + k * 1000;
const valueOf = (k: number, g: number): number => k * 1000 + g;

/** Batch `k` of a metric-major DCGM stream: metric `k mod 8` of all 50 GPUs at its own time. */
function metricBatch(k: number): { batch: Batch; payload: Uint8Array } {
  const samples: Sample[] = [];
  for (let g = 0; g < GPUS; g++) {
    samples.push({
      clusterId: CLUSTER,
      hostname: hostOf(g),
      gpuId: gpuIdOf(g),
      uuid: `GPU-${g}`,
      device: `nvidia${gpuIdOf(g)}`,
      modelName: 'NVIDIA H100 80GB HBM3',
      metric: metricOf(k),
      container: '',
      pod: '',
      namespace: '',
      labels: { gpu: gpuIdOf(g) },
      timestampMs: timeOf(k),
      value: valueOf(k, g),
    });
  }
  const { id, payload } = encodeNewBatch('dcgm-export.csv', samples, []);
  return { batch: { id, source: 'dcgm-export.csv', samples, deadLetters: [] }, payload };
}

/** A promise the test resolves when it wants to. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/**
 * The port, delegating to a real coordination, with a hook awaited before every txn on a GPU
 * record key (it may delay, hold or throw) and counters of those txns.
 */
class InstrumentedCoordination implements Coordination {
  /** Txns on GPU record keys called (including the ones the hook made fail). */
  gpuTxns = 0;
  /** GPU record writes attempted in them, in all and by key. */
  gpuWrites = 0;
  readonly gpuWritesByKey = new Map<string, number>();
  /** GPU-record txns currently waiting in the hook. */
  heldGpuTxns = 0;
  beforeGpuTxn: ((keys: string[]) => Promise<void>) | undefined;

  constructor(readonly inner: Coordination) {}

  async txn(compares: Compare[], success: TxnOp[], failure?: TxnOp[]): Promise<TxnResult> {
    const keys = compares.map((c) => c.key).filter((key) => parseKey(key)?.kind === 'gpu');
    if (keys.length > 0) {
      this.gpuTxns += 1;
      this.gpuWrites += keys.length;
      for (const key of keys) this.gpuWritesByKey.set(key, (this.gpuWritesByKey.get(key) ?? 0) + 1);
      const hook = this.beforeGpuTxn;
      if (hook) {
        this.heldGpuTxns += 1;
        try {
          await hook(keys);
        } finally {
          this.heldGpuTxns -= 1;
        }
      }
    }
    return this.inner.txn(compares, success, failure);
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.inner.get(key);
  }
  range(prefix: string, options?: { limit?: number; keysOnly?: boolean }): Promise<RangeResult> {
    return this.inner.range(prefix, options);
  }
  put(key: string, value: string, options?: { lease?: string }): Promise<number> {
    return this.inner.put(key, value, options);
  }
  delete(key: string): Promise<number> {
    return this.inner.delete(key);
  }
  deletePrefix(prefix: string): Promise<number> {
    return this.inner.deletePrefix(prefix);
  }
  watch(prefix: string, options: WatchOptions): Promise<Watcher> {
    return this.inner.watch(prefix, options);
  }
  grantLease(ttlSeconds: number): Promise<Lease> {
    return this.inner.grantLease(ttlSeconds);
  }
  revision(): Promise<number> {
    return this.inner.revision();
  }
  compact(revision: number): Promise<void> {
    return this.inner.compact(revision);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Rig {
  queue: EmbeddedQueue;
  store: PgliteSampleStore;
  coordination: InstrumentedCoordination;
  hierarchy: HierarchyWriter;
  collector: Collector;
  reader: HierarchyReader;
  /** Batches in the order the collector acked them (its `onBatch`), with what each inserted. */
  acked: { id: string; inserted: number }[];
  /** Store writes that resolved, and `hierarchy.apply` calls made. */
  counts: { written: number; applied: number };
}

let rig: Rig | undefined;
/** Gates a test may leave closed when it fails; afterEach opens them so stop() can end. */
const gates: { open: () => void }[] = [];

async function startRig(): Promise<Rig> {
  const queue = createEmbeddedQueue({ topic: 'telemetry' });
  const store = await createPgliteSampleStore({ memory: true });
  await store.migrate();
  const coordination = new InstrumentedCoordination(createEmbeddedCoordination());
  const hierarchy = new HierarchyWriter({ coordination });
  const counts = { written: 0, applied: 0 };
  const writeBatch = store.writeBatch.bind(store);
  vi.spyOn(store, 'writeBatch').mockImplementation(async (batch) => {
    const result = await writeBatch(batch);
    counts.written += 1;
    return result;
  });
  const apply = hierarchy.apply.bind(hierarchy);
  vi.spyOn(hierarchy, 'apply').mockImplementation((batch) => {
    counts.applied += 1;
    return apply(batch);
  });
  const acked: Rig['acked'] = [];
  const collector = new Collector({
    queues: [queue],
    store,
    hierarchy,
    consumerId: 'collector-test',
    workers: 1,
    pollIntervalMs: 20,
    logger: createLogger('silent'),
    onBatch: (batch, inserted) => acked.push({ id: batch.id, inserted }),
  });
  const reader = new HierarchyReader(coordination, 60_000);
  rig = { queue, store, coordination, hierarchy, collector, reader, acked, counts };
  return rig;
}

afterEach(async () => {
  for (const g of gates.splice(0)) g.open();
  const r = rig;
  rig = undefined;
  if (r) {
    r.coordination.beforeGpuTxn = undefined;
    await r.collector.stop();
    await r.queue.close();
    await r.store.close();
    await r.coordination.close();
  }
  vi.restoreAllMocks();
});

/** The 50 GPU records, by "host/gpuId". */
async function gpuRecords(
  r: Rig,
): Promise<Map<string, Awaited<ReturnType<HierarchyReader['listAllGpus']>>[number]>> {
  const gpus = await r.reader.listAllGpus();
  return new Map(gpus.map((gpu) => [`${gpu.hostname}/${gpu.gpuId}`, gpu]));
}

/** Every GPU record holds, for each metric, the value and time of the newest of batches 0..n-1. */
async function expectHierarchyCurrent(r: Rig, n: number): Promise<void> {
  const records = await gpuRecords(r);
  expect(records.size).toBe(GPUS);
  const newest = new Map<string, number>(); // metric -> newest batch index carrying it
  for (let k = 0; k < n; k++) newest.set(metricOf(k), k);
  for (let g = 0; g < GPUS; g++) {
    const record = records.get(`${hostOf(g)}/${gpuIdOf(g)}`);
    expect(record, `GPU ${g}`).toBeDefined();
    const expected = Object.fromEntries(
      [...newest].map(([metric, k]) => [metric, { value: valueOf(k, g), timestampMs: timeOf(k) }]),
    );
    expect(record!.metrics).toEqual(expected);
    expect(record!.lastSampleMs).toBe(timeOf(n - 1));
  }
}

describe('Collector with a live hierarchy: pipelined rounds', () => {
  it('coalesces a metric-major stream into few hierarchy rounds, each GPU record ending current', async () => {
    const TOTAL = 40;
    const r = await startRig();
    // A coordination slower than the store: a round's GPU txns are held until the worker has filled
    // its window (MAX_UNACKED_PER_WORKER batches written and not acked), or every batch is written,
    // or 2 s have passed. The fallback only matters for a collector that never fills its window (the
    // old one, which waited for each round before claiming again: it would run 40 rounds of one
    // batch, 2 s each, and time out, instead of waiting forever). 2 s, not less: a loaded machine
    // may take that long to write a window's batches to PGlite.
    let maxUnacked = 0;
    const outstanding = (): number => r.counts.written - r.acked.length;
    r.coordination.beforeGpuTxn = async () => {
      const deadline = Date.now() + 2_000;
      while (outstanding() < MAX_UNACKED_PER_WORKER && r.counts.written < TOTAL && Date.now() < deadline) {
        maxUnacked = Math.max(maxUnacked, outstanding());
        await sleep(2);
      }
      maxUnacked = Math.max(maxUnacked, outstanding());
    };
    for (let k = 0; k < TOTAL; k++) await r.queue.enqueue(metricBatch(k).payload);
    r.collector.start();

    await vi.waitFor(() => expect(r.acked).toHaveLength(TOTAL), { timeout: 45_000, interval: 20 });

    expect(await r.store.countSamples()).toBe(TOTAL * GPUS);
    expect(await r.queue.depth()).toBe(0);
    expect(r.acked.map((a) => a.id)).toEqual(
      Array.from({ length: TOTAL }, (_, k) => metricBatch(k).batch.id),
    );
    expect(r.acked.every((a) => a.inserted === GPUS)).toBe(true);
    expect(r.collector.stats).toEqual({
      batches: TOTAL,
      duplicates: 0,
      samplesWritten: TOTAL * GPUS,
      failures: 0,
      redeliveries: 0,
      unstorable: 0,
      conflicts: 0,
    });
    await expectHierarchyCurrent(r, TOTAL);

    // The worker kept claiming while rounds were held, up to its window and never beyond it.
    expect(maxUnacked).toBe(MAX_UNACKED_PER_WORKER);
    // One writer, so no compare-and-swap ever conflicts: a round writes each of the 50 GPU
    // records exactly once, in ceil(50 / GPUS_PER_TXN) = 2 txns.
    expect(r.coordination.gpuWrites % GPUS).toBe(0);
    const rounds = r.coordination.gpuWrites / GPUS;
    expect(r.coordination.gpuTxns).toBe(rounds * TXNS_PER_ROUND);
    expect(r.coordination.gpuWritesByKey.size).toBe(GPUS);
    for (const count of r.coordination.gpuWritesByKey.values()) expect(count).toBe(rounds);
    // Old behaviour (one round per batch): 40 rounds x 50 GPUs = 2000 GPU writes. Here a round holds
    // the batches written while the previous round was held: with one worker and a window of 16
    // (the batches of the round in flight count in it), round sizes go 1, 15, 1, 15, 1, 7 -> 6
    // rounds, 300 writes when the store keeps up; slower store writes give smaller rounds through
    // the 500 ms fallback. The bound, a quarter of the old figure (10 rounds), leaves room for that
    // and fails the old behaviour by a factor of 4.
    expect(r.coordination.gpuWrites).toBeLessThan((TOTAL * GPUS) / 4);
    // And a round never coalesces more than one window: at least ceil(40 / 16) = 3 rounds.
    expect(rounds).toBeGreaterThanOrEqual(Math.ceil(TOTAL / MAX_UNACKED_PER_WORKER));
  }, 60_000);

  it('stores a batch but acks it only after its hierarchy round, and claims the next one meanwhile', async () => {
    const r = await startRig();
    const held = gate();
    gates.push(held);
    r.coordination.beforeGpuTxn = () => held.promise;
    const batches = [0, 1, 2].map((k) => metricBatch(k));
    for (const { payload } of batches) await r.queue.enqueue(payload);
    r.collector.start();

    // All three are durable and handed to the hierarchy although the first round cannot finish.
    await vi.waitFor(
      () => {
        expect(r.counts.applied).toBe(3);
        expect(r.coordination.heldGpuTxns).toBe(TXNS_PER_ROUND);
      },
      { timeout: 10_000, interval: 10 },
    );
    expect(await r.store.countSamples()).toBe(3 * GPUS);
    await sleep(200);
    // ... and none is acked while the round is held.
    expect(r.acked).toEqual([]);
    expect(r.collector.stats.batches).toBe(0);
    expect(await r.queue.depth()).toBe(3);
    expect(await r.reader.listAllGpus()).toEqual([]);
    // Only the first round (batch 0) has started; batches 1 and 2 wait for the next one.
    expect(r.coordination.gpuWrites).toBe(GPUS);

    held.open();
    await vi.waitFor(() => expect(r.acked).toHaveLength(3), { timeout: 10_000, interval: 10 });
    expect(r.acked).toEqual(batches.map(({ batch }) => ({ id: batch.id, inserted: GPUS })));
    expect(await r.queue.depth()).toBe(0);
    expect(r.collector.stats.batches).toBe(3);
    expect(r.collector.stats.samplesWritten).toBe(3 * GPUS);
    await expectHierarchyCurrent(r, 3);
    // Two rounds: batch 0, then batches 1 and 2 together (one write per GPU for both metrics).
    expect(r.coordination.gpuWrites).toBe(2 * GPUS);
    expect(r.coordination.gpuTxns).toBe(2 * TXNS_PER_ROUND);
  }, 20_000);

  it('gives the batch back when its round fails; it is redelivered, stored once and the hierarchy ends current', async () => {
    const r = await startRig();
    const flaky = gpuKey(CLUSTER, hostOf(0), gpuIdOf(0));
    const FAILS = 3;
    let thrown = 0;
    r.coordination.beforeGpuTxn = async (keys) => {
      if (keys.includes(flaky) && thrown < FAILS) {
        thrown += 1;
        throw new NexusError('BACKEND_UNAVAILABLE', `etcd unavailable (test failure ${thrown})`);
      }
    };
    const { batch, payload } = metricBatch(0);
    await r.queue.enqueue(payload);
    r.collector.start();

    await vi.waitFor(() => expect(r.acked).toHaveLength(1), { timeout: 15_000, interval: 10 });
    expect(thrown).toBe(FAILS);
    // Three failed rounds, three releases, four deliveries; acked once, on the fourth.
    expect(r.collector.stats).toMatchObject({
      batches: 1,
      failures: FAILS,
      redeliveries: FAILS,
      duplicates: 1,
    });
    // Stored once: the first delivery inserted the 50 samples, the redeliveries found the batch in
    // the ledger; the acked (fourth) delivery reports 0 inserted.
    expect(await r.store.countSamples()).toBe(GPUS);
    expect(r.counts.written).toBe(FAILS + 1);
    expect(r.acked).toEqual([{ id: batch.id, inserted: 0 }]);
    expect(await r.store.listDeadLetters()).toEqual([]);
    expect(await r.queue.depth()).toBe(0);
    // Each delivery had a round of its own writing every GPU record once (the flaky txn failing).
    expect(r.coordination.gpuWrites).toBe((FAILS + 1) * GPUS);
    expect(r.coordination.gpuWritesByKey.get(flaky)).toBe(FAILS + 1);
    await expectHierarchyCurrent(r, 1);
  }, 20_000);

  it('stop() waits for the round of a written batch and acks it before resolving', async () => {
    const r = await startRig();
    const held = gate();
    gates.push(held);
    r.coordination.beforeGpuTxn = () => held.promise;
    const batches = [0, 1].map((k) => metricBatch(k));
    for (const { payload } of batches) await r.queue.enqueue(payload);
    r.collector.start();
    await vi.waitFor(() => expect(r.counts.applied).toBe(2), { timeout: 10_000, interval: 10 });

    let stopped = false;
    const stopping = r.collector.stop().then(() => {
      stopped = true;
    });
    await sleep(200);
    expect(stopped).toBe(false);
    expect(r.acked).toEqual([]);
    expect(await r.queue.depth()).toBe(2);
    // Claiming has ended: a batch enqueued now stays in the queue.
    await r.queue.enqueue(metricBatch(2).payload);

    held.open();
    await stopping;
    expect(stopped).toBe(true);
    expect(r.acked).toEqual(batches.map(({ batch }) => ({ id: batch.id, inserted: GPUS })));
    expect(r.collector.stats.batches).toBe(2);
    expect(await r.queue.depth()).toBe(1);
    expect(await r.store.countSamples()).toBe(2 * GPUS);
    expect(r.counts.written).toBe(2);
    await expectHierarchyCurrent(r, 2);
  }, 20_000);
});
