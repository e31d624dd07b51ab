// Input sources: file, directory order, stdin-like streams, follow (tail -F) and loop replay.
import { appendFile, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasCode } from '../../src/errors.js';
import { readDcgm } from '../../src/ingest/dcgm-reader.js';
import { openSources, type Source } from '../../src/ingest/sources.js';

const HEADER =
  'timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw\n';
const row = (value: number, gpu = 0): string =>
  `"2025-07-18T20:42:34Z","DCGM_FI_DEV_GPU_TEMP","${gpu}","nvidia${gpu}","GPU-${gpu}","M","h1","","","","${value}",""\n`;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-sources-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function text(chunks: AsyncIterable<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts).toString('utf8');
}

/** Values of the samples read from one source, pushed as they arrive. */
async function values(source: Source, into: number[]): Promise<void> {
  for await (const rows of readDcgm(source.chunks, { source: source.source, clusterId: 'c' })) {
    for (const r of rows) if (r.ok) into.push(r.sample.value);
  }
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('openSources', () => {
  it('reads a file in chunks', async () => {
    const path = join(dir, 'one.csv');
    await writeFile(path, HEADER + row(1) + row(2));
    const sources: Source[] = [];
    for await (const s of openSources(path, { chunkBytes: 16 })) sources.push(s);
    expect(sources.map((s) => [s.source, s.pass, s.fromDirectory])).toEqual([[path, 0, false]]);
    expect(await text(sources[0]!.chunks)).toBe(HEADER + row(1) + row(2));
  });

  it('reads the *.csv files of a directory in name order', async () => {
    await writeFile(join(dir, 'b.csv'), HEADER + row(2));
    await writeFile(join(dir, 'a.csv'), HEADER + row(1));
    await writeFile(join(dir, '10.csv'), HEADER + row(0));
    await writeFile(join(dir, 'notes.txt'), 'ignored');
    const seen: [string, string][] = [];
    for await (const s of openSources(dir)) {
      expect(s.fromDirectory).toBe(true);
      seen.push([s.source, await text(s.chunks)]);
    }
    expect(seen).toEqual([
      [join(dir, '10.csv'), HEADER + row(0)],
      [join(dir, 'a.csv'), HEADER + row(1)],
      [join(dir, 'b.csv'), HEADER + row(2)],
    ]);
  });

  it('reads a stdin-like stream for "-"', async () => {
    const stdin = Readable.from([Buffer.from(HEADER), row(5), Buffer.from(row(6))]);
    const got: number[] = [];
    const names: string[] = [];
    for await (const s of openSources('-', { stdin })) {
      names.push(s.source);
      await values(s, got);
    }
    expect(names).toEqual(['stdin']);
    expect(got).toEqual([5, 6]);
  });

  it('names a missing path, an empty directory and refuses impossible combinations', async () => {
    const missing = join(dir, 'nope.csv');
    const error = await openSources(missing)
      .next()
      .catch((e: unknown) => e);
    expect(hasCode(error, 'INPUT_UNREADABLE')).toBe(true);
    expect((error as Error).message).toContain(missing);
    expect((error as Error).message).toContain('no such file or directory');
    const empty = await openSources(dir)
      .next()
      .catch((e: unknown) => e);
    expect(hasCode(empty, 'INPUT_UNREADABLE')).toBe(true);
    expect((empty as Error).message).toMatch(/no \*\.csv file/);
    await expect(openSources(dir, { follow: true, loop: true }).next()).rejects.toThrow(/cannot be combined/);
    await expect(openSources('-', { loop: true }).next()).rejects.toThrow(/stdin/);
  });

  it('follows a growing file, including a line written in two parts, until aborted', async () => {
    const path = join(dir, 'live.csv');
    await writeFile(path, HEADER + row(1));
    const controller = new AbortController();
    const got: number[] = [];
    const reading = (async () => {
      for await (const s of openSources(path, { follow: true, pollMs: 20, signal: controller.signal })) {
        await values(s, got);
      }
    })();
    await until(() => got.length === 1);
    await appendFile(path, row(2) + row(3));
    await until(() => got.length === 3);
    const half = row(4);
    await appendFile(path, half.slice(0, 20));
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toEqual([1, 2, 3]);
    await appendFile(path, half.slice(20));
    await until(() => got.length === 4);
    controller.abort();
    await reading;
    expect(got).toEqual([1, 2, 3, 4]);
  });

  it('starts again from the top when a followed file is truncated', async () => {
    const path = join(dir, 'trunc.csv');
    await writeFile(path, HEADER + row(1) + row(2));
    const controller = new AbortController();
    const got: number[] = [];
    const reading = (async () => {
      for await (const s of openSources(path, { follow: true, pollMs: 20, signal: controller.signal })) {
        await values(s, got);
      }
    })();
    await until(() => got.length === 2);
    await truncate(path, 0);
    await new Promise((r) => setTimeout(r, 100));
    await writeFile(path, HEADER + row(9));
    await until(() => got.length === 3);
    controller.abort();
    await reading;
    expect(got).toEqual([1, 2, 9]);
  });

  it('follows a directory: moves on to a newer file when it appears', async () => {
    await writeFile(join(dir, 'a.csv'), HEADER + row(1));
    const controller = new AbortController();
    const got: number[] = [];
    const names: string[] = [];
    const reading = (async () => {
      for await (const s of openSources(dir, { follow: true, pollMs: 20, signal: controller.signal })) {
        names.push(s.source);
        await values(s, got);
      }
    })();
    await until(() => got.length === 1);
    await appendFile(join(dir, 'a.csv'), row(2));
    await until(() => got.length === 2);
    await writeFile(join(dir, 'b.csv'), HEADER + row(3));
    await until(() => got.length === 3);
    await appendFile(join(dir, 'b.csv'), row(4));
    await until(() => got.length === 4);
    controller.abort();
    await reading;
    expect(names).toEqual([join(dir, 'a.csv'), join(dir, 'b.csv')]);
    expect(got).toEqual([1, 2, 3, 4]);
  });

  it('replays the input with loop until aborted', async () => {
    await writeFile(join(dir, 'a.csv'), HEADER + row(1));
    await writeFile(join(dir, 'b.csv'), HEADER + row(2));
    const controller = new AbortController();
    const got: number[] = [];
    const passes: number[] = [];
    for await (const s of openSources(dir, { loop: true, signal: controller.signal })) {
      passes.push(s.pass);
      await values(s, got);
      if (got.length === 6) controller.abort();
    }
    expect(got).toEqual([1, 2, 1, 2, 1, 2]);
    expect(passes).toEqual([0, 0, 1, 1, 2, 2]);
  });
});
