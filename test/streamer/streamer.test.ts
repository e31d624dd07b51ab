// The streamer over real sources: every row of every readable file reaches a batch; an unreadable
// file of a directory costs that file only (one dead letter in its batch); a stop drops only the
// record being read.
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import type { Queue } from '../../src/ports/queue.js';
import { runStreamer } from '../../src/streamer/streamer.js';
import { createLogger } from '../../src/util/logger.js';
import { recordingQueue } from '../support/recording-queue.js';

const HEADER =
  'timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw\n';
const row = (value: number, gpu = 0): string =>
  `"2025-07-18T20:42:34Z","DCGM_FI_DEV_GPU_TEMP","${gpu}","nvidia${gpu}","GPU-${gpu}","M","h1","","","","${value}","gpu=""${gpu}"""\n`;

const options = (queue: Queue) => ({
  queue,
  clusterId: 'c',
  batchSize: 100,
  flushIntervalMs: 60_000,
  timestamps: 'original' as const,
  logger: createLogger('silent'),
});

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-streamer-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runStreamer on a directory with unreadable entries', () => {
  it('makes each bad entry one dead letter and reads every good file to its end', async () => {
    await writeFile(join(dir, 'a.csv'), HEADER + row(1) + row(2));
    await writeFile(join(dir, 'b.csv'), 'name,size\nx,1\n'); // not DCGM
    await writeFile(join(dir, 'c.csv'), 'timestamp,metric_name,gpu_id\n' + row(99)); // header lacks columns
    await mkdir(join(dir, 'd.csv')); // a directory named *.csv
    await symlink(join(dir, 'gone.csv.target'), join(dir, 'e.csv')); // dangling link
    await writeFile(join(dir, 'f.csv'), HEADER + row(3) + row(4, 1));
    const { queue, batches } = recordingQueue();
    const summary = await runStreamer({ spec: dir }, options(queue));

    const values = batches.flatMap((b) => b.samples.map((s) => s.value));
    expect(values).toEqual([1, 2, 3, 4]);
    const deadLetters = batches.flatMap((b) => b.deadLetters);
    expect(deadLetters.map((d) => [d.source, d.line, d.reason])).toEqual([
      [join(dir, 'b.csv'), 1, 'bad_header'],
      [join(dir, 'c.csv'), 1, 'bad_header'],
      [join(dir, 'd.csv'), 1, 'unreadable_source'],
      [join(dir, 'e.csv'), 1, 'unreadable_source'],
    ]);
    expect(deadLetters[0]!.detail).toMatch(/not DCGM CSV/);
    expect(deadLetters[1]!.detail).toMatch(/missing required column\(s\) uuid, Hostname, value/);
    expect(deadLetters[2]!.detail).toBe(`cannot read input ${join(dir, 'd.csv')}: is a directory`);
    expect(deadLetters[3]!.detail).toBe(`cannot read input ${join(dir, 'e.csv')}: dangling symbolic link`);
    // Each dead letter rides in the batch of its own source.
    for (const b of batches) for (const d of b.deadLetters) expect(d.source).toBe(b.source);
    expect(summary).toMatchObject({ rows: 8, badRows: 4 });
  });

  it('still fails fast on a single file with a bad header', async () => {
    const file = join(dir, 'one.csv');
    await writeFile(file, 'name,size\nx,1\n');
    const { queue } = recordingQueue();
    const error = await runStreamer({ spec: file }, options(queue)).catch((e: unknown) => e);
    expect(hasCode(error, 'INPUT_UNREADABLE')).toBe(true);
    expect((error as Error).message).toContain(`${file}: not DCGM CSV`);
  });
});

describe('runStreamer when stopped', () => {
  it('drops the half-read record on abort (--follow, SIGTERM): no false dead letter, complete rows kept', async () => {
    const file = join(dir, 'live.csv');
    await writeFile(file, HEADER + row(1) + row(2) + row(3).slice(0, 40));
    const controller = new AbortController();
    const { queue, batches } = recordingQueue();
    const running = runStreamer(
      { spec: file, follow: true, signal: controller.signal },
      { ...options(queue), flushIntervalMs: 50 },
    );
    const deadline = Date.now() + 10_000;
    while (batches.flatMap((b) => b.samples).length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    controller.abort();
    const summary = await running;
    expect(batches.flatMap((b) => b.samples.map((s) => s.value))).toEqual([1, 2]);
    expect(batches.flatMap((b) => b.deadLetters)).toEqual([]);
    expect(summary).toMatchObject({ rows: 2, badRows: 0 });
  });
});

describe('runStreamer when a publish fails mid-window', () => {
  it('rejects with that failure once every outstanding publish has settled, and reads no further', async () => {
    // 2,000 rows in 20 batches of 100; the third enqueue fails after the fourth has started.
    await writeFile(
      join(dir, 'big.csv'),
      HEADER + Array.from({ length: 2000 }, (_, i) => row(i, i % 8)).join(''),
    );
    const { queue, batches } = recordingQueue();
    let calls = 0;
    let outstanding = 0;
    let settledAtReject = -1;
    const failing: Queue = {
      ...queue,
      topic: queue.topic,
      async enqueue(payload) {
        calls += 1;
        const call = calls;
        outstanding += 1;
        try {
          await new Promise((r) => setTimeout(r, call === 3 ? 5 : 30));
          if (call === 3) throw new Error('enqueue refused');
          return await queue.enqueue(payload);
        } finally {
          outstanding -= 1;
        }
      },
    };
    await expect(
      runStreamer({ spec: join(dir, 'big.csv') }, options(failing)).catch((error: unknown) => {
        settledAtReject = outstanding;
        throw error;
      }),
    ).rejects.toThrow('enqueue refused');
    expect(settledAtReject).toBe(0); // nothing left publishing behind the caller's back
    expect(calls).toBeLessThanOrEqual(3 + 4); // the window, not the whole file
    expect(batches.length).toBe(calls - 1);
  });
});
