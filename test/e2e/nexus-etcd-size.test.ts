/**
 * etcd stays small while a million rows pass through the queue. 1,000,000 generated DCGM rows are
 * parsed and encoded into 2,000 batches of 500 rows (BATCH_SIZE=500 and the streamer's binary codec:
 * about 27 KiB each, 55 MiB in all; the JSON format 1 took 270 KiB and 531 MiB), enqueued through the etcd queue adapter (QUEUE_MAX_DEPTH 100),
 * claimed and acked by two consumers on a three-member etcd, while the elected maintenance leader
 * (the collectors' Maintenance class, fenced) compacts history every second keeping 300 revisions
 * (COMPACTION_KEEP_REVISIONS). No defragmentation: the bound holds on the physical file.
 *
 * Stated bound: every member's database file stays under 16 MiB (measured: about 10 MiB; 79 MiB with format 1), and
 * it levels off: the last three quarters of the volume grow it by less than half. The level is
 * roughly (queue depth + batches in the kept history + batches put between two compactions) x
 * batch size, whatever the volume. Without compaction etcd keeps every batch ever put: the
 * database would grow by the whole 55 MiB.
 */
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdCoordination, type EtcdCoordination } from '../../src/adapters/etcd/coordination.js';
import { createEtcdQueue, type EtcdQueue } from '../../src/adapters/etcd/queue.js';
import { Maintenance } from '../../src/collector/maintenance.js';
import { decodeBatch, encodeNewBatch } from '../../src/domain/batch-codec.js';
import type { Sample } from '../../src/domain/types.js';
import { generateDcgmCsv } from '../../src/generate/generator.js';
import { readDcgm } from '../../src/ingest/dcgm-reader.js';
import { createLogger } from '../../src/util/logger.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';

const ROWS = 1_000_000;
const BATCH_ROWS = 500;
const MAX_DEPTH = 100;
const KEEP_REVISIONS = 300;
/** The stated bound on every member's database file. */
const DB_BOUND_MIB = 16;

const MiB = 2 ** 20;

let etcd: EtcdHandle;
let raw: Etcd3;
let coordination: EtcdCoordination;
const queues: EtcdQueue[] = [];

/** Largest physical db size over the members, and the largest in-use size, in MiB. */
async function dbSizes(): Promise<{ file: number; inUse: number }> {
  let file = 0;
  let inUse = 0;
  for (const endpoint of etcd.endpoints) {
    const one = new Etcd3({ hosts: `http://${endpoint}` });
    try {
      const status = await one.maintenance.status();
      file = Math.max(file, Number(status.dbSize) / MiB);
      inUse = Math.max(inUse, Number(status.dbSizeInUse) / MiB);
    } finally {
      one.close();
    }
  }
  return { file, inUse };
}

/** Generated DCGM CSV, parsed and cut into 500-row encoded batches. */
async function* batches(): AsyncGenerator<{ id: string; payload: Uint8Array; rows: number }> {
  async function* chunks(): AsyncGenerator<string> {
    yield* generateDcgmCsv({ hosts: 16, gpusPerHost: 8, rows: ROWS, durationMs: 365 * 86_400_000, seed: 3 });
  }
  let pending: Sample[] = [];
  for await (const results of readDcgm(chunks(), { source: 'size-test.csv', clusterId: 'size' })) {
    for (const r of results) {
      if (!r.ok) throw new Error(`generated row rejected: ${r.deadLetter.reason}`);
      pending.push(r.sample);
      if (pending.length === BATCH_ROWS) {
        yield { ...encodeNewBatch('size-test.csv', pending, []), rows: BATCH_ROWS };
        pending = [];
      }
    }
  }
  if (pending.length > 0) yield { ...encodeNewBatch('size-test.csv', pending, []), rows: pending.length };
}

beforeAll(async () => {
  etcd = await startEtcd({ members: 3 });
  raw = new Etcd3({ hosts: etcd.endpoints.map((e) => `http://${e}`) });
  coordination = createEtcdCoordination({ endpoints: etcd.endpointList });
}, 120_000);

afterAll(async () => {
  for (const q of queues) await q.close();
  await coordination?.close();
  raw?.close();
  await etcd?.stop();
});

describe('etcd database size under a million rows through the queue', () => {
  it(`stays under ${DB_BOUND_MIB} MiB per member with leader compaction (keep ${KEEP_REVISIONS} revisions)`, async () => {
    const started = Date.now();
    const maintenance = new Maintenance({
      coordination,
      clusterId: 'size',
      candidateId: 'size-leader',
      logger: createLogger('silent'),
      intervalMs: 1_000,
      keepRevisions: KEEP_REVISIONS,
      ttlSeconds: 5,
    });
    maintenance.start();
    const options = { topic: 'batches', clusterId: 'size', maxDepth: MAX_DEPTH, endpoints: etcd.endpoints };
    const producer = await createEtcdQueue(options);
    const consumers = [await createEtcdQueue(options), await createEtcdQueue(options)];
    queues.push(producer, ...consumers);

    let bytesThrough = 0;
    let enqueued = 0;
    let produced = false;
    const ackedRows = new Map<string, number>();
    let peak = { file: 0, inUse: 0 };
    const samples: string[] = [];
    const sampler = setInterval(() => {
      void dbSizes().then((s) => {
        peak = { file: Math.max(peak.file, s.file), inUse: Math.max(peak.inUse, s.inUse) };
        if (samples.length < 400) samples.push(s.file.toFixed(1));
      });
    }, 1_000);

    let atQuarter: number | undefined;
    const produce = async (): Promise<void> => {
      const inFlight = new Set<Promise<unknown>>();
      for await (const batch of batches()) {
        bytesThrough += batch.payload.byteLength;
        enqueued += 1;
        if (enqueued === ROWS / BATCH_ROWS / 4) atQuarter = (await dbSizes()).file;
        const p = producer.enqueue(batch.payload).finally(() => inFlight.delete(p));
        inFlight.add(p);
        if (inFlight.size >= 8) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      produced = true;
    };
    const consume = async (queue: EtcdQueue, worker: number): Promise<void> => {
      for (;;) {
        const items = await queue.claim(`consumer-${worker}`, { max: 4, waitMs: 500 });
        if (items.length === 0 && produced && (await queue.depth()) === 0) return;
        for (const item of items) {
          const batch = decodeBatch(item.payload);
          if (await queue.ack(item))
            ackedRows.set(batch.id, (ackedRows.get(batch.id) ?? 0) + batch.samples.length);
        }
      }
    };
    try {
      await Promise.all([
        produce(),
        ...consumers.flatMap((q, i) => [0, 1, 2].map((w) => consume(q, i * 10 + w))),
      ]);
      await maintenance.runOnce();
    } finally {
      clearInterval(sampler);
      await maintenance.stop();
    }
    const end = await dbSizes();
    peak = { file: Math.max(peak.file, end.file), inUse: Math.max(peak.inUse, end.inUse) };
    const rows = [...ackedRows.values()].reduce((a, b) => a + b, 0);
    const revision = await coordination.revision();
    console.log(
      `etcd size: ${rows.toLocaleString('en-US')} rows in ${enqueued} batches (${(bytesThrough / MiB).toFixed(0)} MiB) through the queue ` +
        `in ${((Date.now() - started) / 1000).toFixed(0)} s, ${revision} revisions; db file peak ${peak.file.toFixed(1)} MiB ` +
        `(in use peak ${peak.inUse.toFixed(1)} MiB), ${atQuarter?.toFixed(1)} MiB after a quarter, end ${end.file.toFixed(1)} MiB; ` +
        `bound ${DB_BOUND_MIB} MiB; ` +
        `samples: ${samples.join(' ')}`,
    );
    expect(rows).toBe(ROWS);
    expect(ackedRows.size).toBe(ROWS / BATCH_ROWS);
    expect(bytesThrough / MiB).toBeGreaterThan(DB_BOUND_MIB * 2);
    expect(peak.file).toBeLessThan(DB_BOUND_MIB);
    // It levels off: three times the volume after the first quarter grows the file by less than half.
    expect(end.file).toBeLessThan(atQuarter! * 1.5);
    // History really was compacted by the leader: a read at an early revision fails.
    const old = await raw
      .get('/telemetry/queue/')
      .revision(2)
      .exec()
      .then(
        () => 'readable',
        (error: unknown) => String(error),
      );
    expect(old).toContain('compacted');
  }, 240_000);
});
