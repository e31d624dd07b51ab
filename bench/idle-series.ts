/**
 * Analytics reads over a store where most series are idle:
 *
 *   npx tsx bench/idle-series.ts [--store sqlite|pglite] [--idle-gpus 1000] [--runs 3]
 *
 * Writes `--idle-gpus` GPUs x 10 metrics with one sample 40 days old (idle series) and 10 GPUs x
 * 10 metrics every 10 minutes over 30 days (active), compacts past a 2-hour hot window, then times
 * `summarizeSeries` (1h buckets over 29 days, 1m over the last day, raw over the last hour: the
 * windows the analytics scan asks for) and `sampleSpacing` over the 30 days, for every series, and
 * checks both answer for the 100 active series only. Prints the milliseconds of each run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPgliteSampleStore } from '../src/adapters/pglite/sample-store.js';
import { createSqliteSampleStore } from '../src/adapters/sqlite/sample-store.js';
import type { Sample } from '../src/domain/types.js';
import type { SampleStore } from '../src/ports/sample-store.js';
import { sample as testSample } from '../test/support/samples.js';
import { intArg } from './args.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const storeKind = process.argv.includes('--store')
  ? process.argv[process.argv.indexOf('--store') + 1]
  : 'sqlite';
if (storeKind !== 'sqlite' && storeKind !== 'pglite')
  throw new Error(`--store must be sqlite or pglite, got ${storeKind}`);
const idleGpus = intArg('--idle-gpus', 1000);
const runs = intArg('--runs', 3);

const dir = mkdtempSync(join(tmpdir(), 'nexus-idle-series-'));
const store: SampleStore =
  storeKind === 'sqlite'
    ? createSqliteSampleStore({ file: join(dir, 'samples.db') })
    : await createPgliteSampleStore({ dataDir: join(dir, 'pglite') });
try {
  await store.migrate();
  const now = Math.floor(Date.now() / HOUR) * HOUR;
  // test/support's builder (its model, empty workload fields), with this bench's names.
  const sample = (host: string, gpu: number, metric: string, timestampMs: number, value: number): Sample =>
    testSample({
      clusterId: 'bench',
      hostname: host,
      gpuId: String(gpu),
      uuid: `GPU-${host}-${gpu}`,
      device: `nvidia${gpu}`,
      metric,
      labels: {},
      timestampMs,
      value,
    });
  let pending: Sample[] = [];
  let batches = 0;
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    await store.writeBatch({ id: `idle-${batches++}`, source: 'bench', samples: pending, deadLetters: [] });
    pending = [];
  };
  const add = async (s: Sample): Promise<void> => {
    pending.push(s);
    if (pending.length >= 5000) await flush();
  };
  for (let g = 0; g < idleGpus; g++)
    for (let m = 0; m < 10; m++) await add(sample(`idle-${g >> 3}`, g & 7, `M${m}`, now - 40 * DAY, m));
  for (let t = now - 30 * DAY; t < now; t += 600_000)
    for (let g = 0; g < 10; g++)
      for (let m = 0; m < 10; m++) await add(sample('active', g, `M${m}`, t, ((t / 1000) % 97) + m));
  await flush();
  await store.compact?.({ hotMs: 2 * HOUR, nowMs: now });
  process.stderr.write(
    `${storeKind}: ${idleGpus * 10} idle series, 100 active, ${(await store.countSamples()).toLocaleString('en-US')} samples\n`,
  );

  const windows = [
    { startMs: now - 30 * DAY, endMs: now - DAY, resolution: '1h' as const },
    { startMs: now - DAY, endMs: now - HOUR, resolution: '1m' as const },
    { startMs: now - HOUR, endMs: now, resolution: 'raw' as const },
  ];
  for (let r = 0; r < runs; r++) {
    let started = performance.now();
    const summaries = await store.summarizeSeries!({ filter: {}, ...windows[0]!, more: windows.slice(1) });
    const summaryMs = performance.now() - started;
    started = performance.now();
    const spacing = await store.sampleSpacing!({
      filter: {},
      startMs: now - 30 * DAY,
      endMs: now,
      instanceLabel: 'GPU_I_ID',
    });
    const spacingMs = performance.now() - started;
    if (summaries.length !== 100 || spacing.length !== 10)
      throw new Error(`expected 100 summaries and 10 GPUs, got ${summaries.length} and ${spacing.length}`);
    console.log(
      `${storeKind} run ${r + 1}: summarizeSeries ${summaryMs.toFixed(0)} ms, sampleSpacing ${spacingMs.toFixed(0)} ms`,
    );
  }
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
