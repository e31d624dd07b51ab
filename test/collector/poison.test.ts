/**
 * Collector and bad rows, on the real embedded queue and an in-memory PGlite store (traditional
 * mode: no hierarchy), plus one case with a live hierarchy:
 * 1. a batch with one row the database refuses stores its good rows, yields exactly one dead
 *    letter (`unstorable_row`) and is acked at the first delivery; stats and metrics count it;
 * 2. a conflicting duplicate is counted (stats, `nexus_bad_rows_total{reason}`) and dead-lettered;
 * 3. whole-item dead letters are keyed by their payload: a later poison item after a restart
 *    (queue item ids start over) leaves its own dead letter, the same payload again does not;
 * 4. with a live hierarchy, the refused sample does not reach the GPU records.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { createEmbeddedQueue, type EmbeddedQueue } from '../../src/adapters/embedded/queue.js';
import { createPgliteSampleStore, type PgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { Collector, deadItemId } from '../../src/collector/collector.js';
import { encodeNewBatch } from '../../src/domain/batch-codec.js';
import type { Sample, SeriesKey } from '../../src/domain/types.js';
import { HierarchyReader } from '../../src/hierarchy/reader.js';
import { HierarchyWriter } from '../../src/hierarchy/writer.js';
import { createPipelineMetrics, type PipelineMetrics } from '../../src/metrics/registry.js';
import type { Coordination } from '../../src/ports/coordination.js';
import { createLogger } from '../../src/util/logger.js';
import { incompressible } from '../support/samples.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const KEY: SeriesKey = {
  clusterId: 'c1',
  hostname: 'host-00',
  gpuId: '0',
  uuid: 'GPU-0',
  device: 'nvidia0',
  modelName: 'NVIDIA H100 80GB HBM3',
  metric: 'DCGM_FI_DEV_GPU_UTIL',
  container: '',
  pod: '',
  namespace: '',
  labels: {},
};

/** `n` good samples of 8 GPUs (2 hosts x 4) x 5 metrics, one per series and second. */
function goodSamples(n: number, start = T0): Sample[] {
  return Array.from({ length: n }, (_, i) => {
    const g = i % 8;
    return {
      ...KEY,
      hostname: `host-0${Math.floor(g / 4)}`,
      gpuId: String(g % 4),
      uuid: `GPU-${g}`,
      metric: `DCGM_FI_M_${Math.floor(i / 8) % 5}`,
      timestampMs: start + Math.floor(i / 40) * 1000,
      value: i,
    };
  });
}

const POISON: Sample = {
  ...KEY,
  hostname: incompressible(4000, 1),
  metric: incompressible(4000, 2),
  uuid: 'GPU-poison',
  timestampMs: T0,
  value: 1,
};

interface Rig {
  queue: EmbeddedQueue;
  store: PgliteSampleStore;
  collector: Collector;
  metrics: PipelineMetrics;
  coordination?: Coordination;
}

const rigs: Rig[] = [];
const stores: PgliteSampleStore[] = [];

async function newStore(): Promise<PgliteSampleStore> {
  const store = await createPgliteSampleStore({ memory: true });
  await store.migrate();
  stores.push(store);
  return store;
}

function startCollector(store: PgliteSampleStore, coordination?: Coordination): Rig {
  const queue = createEmbeddedQueue({ topic: 'telemetry' });
  const metrics = createPipelineMetrics({ defaultMetrics: false });
  const collector = new Collector({
    queues: [queue],
    store,
    ...(coordination ? { hierarchy: new HierarchyWriter({ coordination }) } : {}),
    consumerId: 'poison-test',
    workers: 1,
    pollIntervalMs: 20,
    logger: createLogger('silent'),
    metrics,
    maxDeliveries: 3,
  });
  collector.start();
  const rig = { queue, store, collector, metrics, ...(coordination ? { coordination } : {}) };
  rigs.push(rig);
  return rig;
}

async function stopCollector(rig: Rig): Promise<void> {
  rigs.splice(rigs.indexOf(rig), 1);
  await rig.collector.stop();
  await rig.queue.close();
}

afterEach(async () => {
  for (const rig of rigs.splice(0)) {
    await rig.collector.stop();
    await rig.queue.close();
    await rig.coordination?.close();
  }
  for (const store of stores.splice(0)) await store.close();
});

/** Value of `nexus_bad_rows_total{reason}`. */
async function badRows(metrics: PipelineMetrics, reason: string): Promise<number> {
  const { values } = await metrics.badRows.get();
  return values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

async function drained(rig: Rig, batches: number): Promise<void> {
  await vi.waitFor(
    async () => {
      expect(rig.collector.stats.batches).toBe(batches);
      expect(await rig.queue.depth()).toBe(0);
    },
    { timeout: 30_000, interval: 20 },
  );
}

describe('Collector: bad rows never cost their batch', () => {
  it('a batch with a poison row stores the good rows, yields exactly one dead letter and acks at once', async () => {
    const store = await newStore();
    const rig = startCollector(store);
    const good = goodSamples(1999);
    const rows = [...good.slice(0, 1234), POISON, ...good.slice(1234)];
    const { id, payload } = encodeNewBatch('poison.csv', rows, []);
    await rig.queue.enqueue(payload);
    await drained(rig, 1);

    expect(await store.countSamples()).toBe(1999);
    const letters = await store.listDeadLetters();
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ source: 'poison.csv', line: 0, reason: 'unstorable_row' });
    expect(letters[0]!.detail).toMatch(
      new RegExp(`^batch ${id}, sample 1234 of 2000: index row size \\d+ exceeds .*\\(SQLSTATE 54000\\)$`),
    );
    expect(rig.collector.stats).toEqual({
      batches: 1,
      duplicates: 0,
      samplesWritten: 1999,
      failures: 0,
      redeliveries: 0,
      unstorable: 1,
      conflicts: 0,
    });
    expect(await badRows(rig.metrics, 'unstorable_row')).toBe(1);
    expect(await badRows(rig.metrics, 'batch_failed')).toBe(0);
  });

  it('counts a conflicting duplicate and dead-letters it; an identical replay stays silent', async () => {
    const store = await newStore();
    const rig = startCollector(store);
    const first = goodSamples(80);
    await rig.queue.enqueue(encodeNewBatch('a.csv', first, []).payload);
    await drained(rig, 1);
    // The same rows (identical: a replay) plus one changed value, as another batch.
    const changed = first.map((s, i) => (i === 17 ? { ...s, value: 1e6 } : s));
    await rig.queue.enqueue(encodeNewBatch('b.csv', changed, []).payload);
    await drained(rig, 2);

    expect(await store.countSamples()).toBe(80);
    expect(rig.collector.stats).toMatchObject({
      batches: 2,
      samplesWritten: 80,
      conflicts: 1,
      unstorable: 0,
    });
    expect(await badRows(rig.metrics, 'conflicting_duplicate')).toBe(1);
    const letters = await store.listDeadLetters();
    expect(letters.map((d) => [d.source, d.reason])).toEqual([['b.csv', 'conflicting_duplicate']]);
    expect(letters[0]!.detail).toContain('stored value 17, refused value 1000000');
  });

  it('a later poison item after a restart leaves its own dead letter; the same payload again does not', async () => {
    const store = await newStore();
    const first = new TextEncoder().encode('{"not": "a batch"}');
    const second = new TextEncoder().encode('garbage that is not JSON');
    expect(deadItemId('telemetry', first)).not.toBe(deadItemId('telemetry', second));
    expect(deadItemId('telemetry', first)).toBe(deadItemId('telemetry', new Uint8Array(first)));

    // Run 1: the first poison item (queue item id 1).
    let rig = startCollector(store);
    expect(await rig.queue.enqueue(first)).toBe('1');
    await vi.waitFor(async () => expect(await store.listDeadLetters()).toHaveLength(1), { timeout: 30_000 });
    await vi.waitFor(async () => expect(await rig.queue.depth()).toBe(0));
    await stopCollector(rig);

    // Run 2, after a restart: the queue's item ids start over at 1.
    rig = startCollector(store);
    expect(await rig.queue.enqueue(second)).toBe('1');
    await vi.waitFor(async () => expect(await store.listDeadLetters()).toHaveLength(2), { timeout: 30_000 });
    await vi.waitFor(async () => expect(await rig.queue.depth()).toBe(0));
    // The same poison payload delivered again (a replay): acked, not recorded twice.
    await rig.queue.enqueue(first);
    await vi.waitFor(async () => expect(await rig.queue.depth()).toBe(0), { timeout: 30_000 });
    await stopCollector(rig);

    const letters = await store.listDeadLetters();
    expect(letters.map((d) => [d.reason, d.raw, d.source])).toEqual([
      ['undecodable_batch', 'garbage that is not JSON', 'queue:telemetry'],
      ['undecodable_batch', '{"not": "a batch"}', 'queue:telemetry'],
    ]);
    expect(letters[0]!.id).not.toBe(letters[1]!.id);
  });

  it('with a live hierarchy, the refused sample does not reach the GPU records', async () => {
    const store = await newStore();
    const coordination = createEmbeddedCoordination();
    const rig = startCollector(store, coordination);
    const poison = {
      ...POISON,
      hostname: 'host-00',
      gpuId: '0',
      uuid: 'GPU-0',
      metric: 'DCGM_FI_M_0',
      value: NaN,
    };
    const rows = [...goodSamples(40), poison];
    await rig.queue.enqueue(encodeNewBatch('h.csv', rows, []).payload);
    await drained(rig, 1);
    expect(rig.collector.stats).toMatchObject({ unstorable: 1, samplesWritten: 40 });
    const gpus = await new HierarchyReader(coordination, 60_000).listAllGpus();
    const gpu0 = gpus.find((g) => g.hostname === 'host-00' && g.gpuId === '0');
    // GPU-0's DCGM_FI_M_0 is sample 0 (value 0); the refused NaN must not replace it.
    expect(gpu0?.metrics.DCGM_FI_M_0).toEqual({ value: 0, timestampMs: T0 });
  });
});
