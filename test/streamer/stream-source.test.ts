/**
 * The streamer over the source port: it owns batching per input, the flush timer and shutdown, for
 * any RowSource. The sources here are scripted chunk sequences (the port itself is checked against
 * the real adapters by test/ingest/source.conformance.test.ts); the queue is the real embedded one.
 */
import { describe, expect, it } from 'vitest';
import type { RowSource, SourceChunk } from '../../src/ports/source.js';
import { streamSource } from '../../src/streamer/streamer.js';
import { createLogger } from '../../src/util/logger.js';
import { recordingQueue } from '../support/recording-queue.js';
import { sample } from '../support/samples.js';

const rows = (from: number, count: number) =>
  Array.from({ length: count }, (_, k) => ({
    ok: true as const,
    sample: sample({ value: from + k, timestampMs: 1e12 + from + k }),
    line: from + k + 2,
  }));

/** A source yielding `chunks`, then (unless `end`) waiting for the abort. */
function scripted(chunks: SourceChunk[], hold = false): RowSource {
  return {
    description: 'scripted',
    async *read(options) {
      for (const chunk of chunks) yield chunk;
      if (!hold) return;
      await new Promise<void>((resolve) => {
        if (options?.signal?.aborted) return resolve();
        options?.signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    },
  };
}

const settings = (queue: ReturnType<typeof recordingQueue>['queue'], flushIntervalMs = 60_000) => ({
  queue,
  clusterId: 'c',
  batchSize: 4,
  flushIntervalMs,
  timestamps: 'original' as const,
  logger: createLogger('silent'),
});

describe('streamSource', () => {
  it('batches per input, flushes an input at its end with its presence', async () => {
    const { queue, batches } = recordingQueue();
    const presence = {
      target: 'b',
      clusterId: 'c',
      scrapeMs: 1,
      gpus: [{ hostname: 'host-a', gpuId: '0', uuid: 'GPU-aaaa-0' }],
    };
    const summary = await streamSource(
      scripted([
        { source: 'a', rows: rows(0, 3) },
        { source: 'b', rows: rows(100, 5) },
        { source: 'a', rows: rows(3, 2), end: {} },
        { source: 'b', rows: [], end: { presence } },
      ]),
      settings(queue),
    );
    expect(summary).toMatchObject({ rows: 10, badRows: 0, batches: 4 });
    expect(batches.map((b) => [b.source, b.samples.map((s) => s.value), b.presence?.target])).toEqual([
      ['b', [100, 101, 102, 103], undefined],
      ['a', [0, 1, 2, 3], undefined],
      ['a', [4], undefined],
      ['b', [104], 'b'],
    ]);
  });

  it('publishes a quiet input on the flush timer, and what was read when stopped', async () => {
    const { queue, batches } = recordingQueue();
    const abort = new AbortController();
    const run = streamSource(scripted([{ source: 'a', rows: rows(0, 2) }], true), {
      ...settings(queue, 100),
      signal: abort.signal,
    });
    for (let waited = 0; batches.length === 0 && waited < 5000; waited += 20)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect(batches.map((b) => b.samples.map((s) => s.value))).toEqual([[0, 1]]);
    abort.abort();
    await run;

    const stopped = recordingQueue();
    const stop = new AbortController();
    const second = streamSource(scripted([{ source: 'a', rows: rows(0, 3) }], true), {
      ...settings(stopped.queue),
      signal: stop.signal,
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stopped.batches).toEqual([]);
    stop.abort();
    const summary = await second;
    expect(summary.rows).toBe(3);
    expect(stopped.batches.map((b) => b.samples.map((s) => s.value))).toEqual([[0, 1, 2]]);
  });

  it('reports each checkpoint after its rows were handed to a batch', async () => {
    const { queue } = recordingQueue();
    const seen: number[] = [];
    await streamSource(
      scripted([
        { source: 'a', rows: rows(0, 2), checkpoint: { source: 'a', pass: 0, records: 2 } },
        { source: 'a', rows: rows(2, 2), checkpoint: { source: 'a', pass: 0, records: 4 }, end: {} },
      ]),
      { ...settings(queue), onCheckpoint: (c) => seen.push(c.records) },
    );
    expect(seen).toEqual([2, 4]);
  });
});
