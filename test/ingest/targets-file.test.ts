// Prometheus file_sd targets files: parsing (Prometheus' scheme and path defaults, clear errors),
// and a followed file driving a running scrape: rewriting it stops removed targets (gone from the
// board), starts new ones, keeps unchanged ones with their state, and an invalid file keeps the set.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ScrapeTargetBoard, scrapeTargets } from '../../src/ingest/scrape.js';
import {
  followTargetsFile,
  parseTargetsFile,
  targetsFileFormat,
  readTargetsFile,
  targetUrl,
  TargetsFileError,
  watchTargetsFile,
} from '../../src/ingest/targets-file.js';
import type { Logger } from '../../src/util/logger.js';
import { startStandin, type Standin } from '../support/dcgm-exporter-standin.js';

const BODY =
  'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",device="nvidia0",modelName="M",Hostname="h1"} 41\n' +
  'DCGM_FI_DEV_GPU_TEMP{gpu="1",UUID="GPU-b",device="nvidia1",modelName="M",Hostname="h1"} 43\n';

const dirs: string[] = [];
const standins: Standin[] = [];
const closers: (() => void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await Promise.all(standins.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-targets-'));
  dirs.push(dir);
  return join(dir, 'targets.json');
}

/** Replace the file atomically (as editors and ConfigMap volumes do). */
function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** host:port of a stand-in (its URL is http://host:port/metrics). */
const hostPort = (s: Standin): string => new URL(s.url).host;

/** A logger that records messages (level, message). */
function recordingLogger(): { logger: Logger; lines: { level: string; msg: string; fields: object }[] } {
  const lines: { level: string; msg: string; fields: object }[] = [];
  const at =
    (level: string) =>
    (fields: object, msg: string): void => {
      lines.push({ level, msg, fields });
    };
  const logger = {
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    debug: at('debug'),
  } as unknown as Logger;
  return { logger, lines };
}

async function until(check: () => boolean, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('targetUrl', () => {
  it('applies the Prometheus defaults: http scheme and /metrics path', () => {
    expect(targetUrl('gpu-node-1:9400')).toBe('http://gpu-node-1:9400/metrics');
    expect(targetUrl('10.0.0.7:9400')).toBe('http://10.0.0.7:9400/metrics');
    expect(targetUrl('[::1]:9400')).toBe('http://[::1]:9400/metrics');
    expect(targetUrl('https://gpu-node-1:9400')).toBe('https://gpu-node-1:9400/metrics');
    expect(targetUrl('http://gpu-node-1:9400/custom/metrics')).toBe('http://gpu-node-1:9400/custom/metrics');
  });

  it('refuses what is not an http(s) target', () => {
    expect(() => targetUrl('ftp://x:21')).toThrow(/not an http or https URL/);
    expect(() => targetUrl('')).toThrow(/empty target/);
    expect(() => targetUrl('host:9400/path')).toThrow(/has a path/);
  });
});

describe('parseTargetsFile', () => {
  it('reads Prometheus file_sd groups with their labels, deduplicated in file order', () => {
    const targets = parseTargetsFile(
      JSON.stringify([
        { targets: ['a:9400', 'b:9400'], labels: { rack: 'r1' } },
        { targets: ['c:9400', 'a:9400'], labels: { rack: 'r2' } },
        { targets: [] },
      ]),
    );
    expect(targets).toEqual([
      { url: 'http://a:9400/metrics', labels: { rack: 'r1' } },
      { url: 'http://b:9400/metrics', labels: { rack: 'r1' } },
      { url: 'http://c:9400/metrics', labels: { rack: 'r2' } },
    ]);
    expect(parseTargetsFile('[]')).toEqual([]);
  });

  it('gives a reason naming the group at fault', () => {
    expect(() => parseTargetsFile('[{"targets": ["a:9400"]')).toThrow(/not valid JSON/);
    expect(() => parseTargetsFile('{"targets": []}')).toThrow(/expected a JSON list/);
    expect(() => parseTargetsFile('[{"targets": ["a:1"]}, {"targets": "b:1"}]')).toThrow(
      /group 1: "targets" must be an array/,
    );
    expect(() => parseTargetsFile('[{"targets": [7]}]')).toThrow(/group 0/);
    expect(() => parseTargetsFile('[{"targets": ["a:1"], "labels": {"rack": 1}}]')).toThrow(
      /group 0: label "rack" must be a string/,
    );
    expect(() => parseTargetsFile('[{"targets": ["a:1"], "labels": {"bad-name": "x"}}]')).toThrow(
      /not a valid label name/,
    );
  });

  it('reads the YAML form (by a .yml/.yaml name), scalars as strings, with reasons like JSON', async () => {
    const yaml = [
      '# racks of the east hall',
      '- targets: ["a:9400", b:9400]',
      '  labels:',
      '    rack: 1',
      '- targets:',
      '    - https://c.example:9400/dcgm',
      '    - a:9400',
      '',
    ].join('\n');
    expect(parseTargetsFile(yaml, 'yaml')).toEqual([
      { url: 'http://a:9400/metrics', labels: { rack: '1' } },
      { url: 'http://b:9400/metrics', labels: { rack: '1' } },
      { url: 'https://c.example:9400/dcgm', labels: {} },
    ]);
    expect(parseTargetsFile('', 'yaml')).toEqual([]);
    expect(() => parseTargetsFile('- targets: [a:1\n', 'yaml')).toThrow(/not valid YAML/);
    expect(() => parseTargetsFile('targets: []', 'yaml')).toThrow(/expected a YAML list/);
    expect(() => parseTargetsFile('- targets: a:1', 'yaml')).toThrow(/group 0: "targets" must be an array/);
    expect(() => parseTargetsFile('- targets: [a:1]\n  labels: {rack: r1, rack: r2}', 'yaml')).toThrow(
      /not valid YAML/,
    );
    expect(targetsFileFormat('/etc/nexus/targets.yml')).toBe('yaml');
    expect(targetsFileFormat('targets.YAML')).toBe('yaml');
    expect(targetsFileFormat('targets.json')).toBe('json');
    const path = `${tempFile()}.yaml`;
    writeFileSync(path, yaml);
    expect((await readTargetsFile(path)).map((t) => t.url)).toHaveLength(3);
  });

  it('readTargetsFile names the file when it is missing or invalid', async () => {
    const path = tempFile();
    await expect(readTargetsFile(path)).rejects.toThrow(`targets file ${path}: no such file`);
    writeFileSync(path, 'nope');
    await expect(readTargetsFile(path)).rejects.toBeInstanceOf(TargetsFileError);
  });
});

describe('watchTargetsFile', () => {
  it('reports each changed set once, keeps the set on a bad file, and notices changes by polling', async () => {
    const path = tempFile();
    writeFileSync(path, JSON.stringify([{ targets: ['a:1'] }]));
    const changes: string[][] = [];
    const errors: string[] = [];
    const watcher = await watchTargetsFile(path, {
      onChange: (t) => changes.push(t.map((x) => x.url)),
      onError: (e) => errors.push(e.message),
      pollIntervalMs: 50,
      debounceMs: 20,
    });
    closers.push(() => watcher.close());
    expect(watcher.targets.map((t) => t.url)).toEqual(['http://a:1/metrics']);

    writeAtomically(path, JSON.stringify([{ targets: ['a:1', 'b:2'] }]));
    await until(() => changes.length === 1);
    expect(changes[0]).toEqual(['http://a:1/metrics', 'http://b:2/metrics']);

    writeAtomically(path, '[{"targets": ');
    await until(() => errors.length >= 1);
    expect(errors[0]).toMatch(/not valid JSON/);
    expect(watcher.lastError).toBeInstanceOf(TargetsFileError);
    expect(watcher.targets.map((t) => t.url)).toEqual(['http://a:1/metrics', 'http://b:2/metrics']);

    // The same set again: no change reported, the error clears.
    writeAtomically(path, JSON.stringify([{ targets: ['b:2', 'a:1'].reverse() }]));
    await until(() => watcher.lastError === undefined);
    expect(changes).toHaveLength(1);
  });
});

describe('a followed targets file drives the scrape', () => {
  it('starts new targets, stops removed ones, keeps unchanged ones, and keeps the set on an invalid file', async () => {
    const [one, two, three] = await Promise.all([1, 2, 3].map(() => startStandin({ body: BODY })));
    standins.push(one!, two!, three!);
    const path = tempFile();
    writeFileSync(
      path,
      JSON.stringify([{ targets: [hostPort(one!), hostPort(two!)], labels: { rack: 'r1' } }]),
    );
    const { logger, lines } = recordingLogger();
    const follower = await followTargetsFile(path, [], logger, { pollIntervalMs: 100, debounceMs: 20 });
    closers.push(() => follower.close());
    expect(follower.initial).toEqual([one!.url, two!.url]);

    const board = new ScrapeTargetBoard([], 100, 1000);
    follower.attach(board);
    const abort = new AbortController();
    const scraped = new Map<string, number>();
    const run = (async () => {
      for await (const { source, rows } of scrapeTargets({
        targets: [],
        intervalMs: 100,
        timeoutMs: 1000,
        bodyLimitBytes: 1024 * 1024,
        clusterId: 'c',
        board,
        signal: abort.signal,
      })) {
        expect(rows).toHaveLength(2);
        scraped.set(source, (scraped.get(source) ?? 0) + 1);
      }
    })();
    try {
      await until(() => (board.get(one!.url)?.scrapes ?? 0) >= 2 && (board.get(two!.url)?.scrapes ?? 0) >= 2);
      expect(board.list().map((t) => t.url)).toEqual([one!.url, two!.url]);
      expect(board.list().every((t) => t.health === 'up')).toBe(true);
      const oneScrapesBefore = board.get(one!.url)!.scrapes;

      // One target kept, one removed, a new third one.
      writeAtomically(path, JSON.stringify([{ targets: [hostPort(one!), hostPort(three!)] }]));
      await until(() => (board.get(three!.url)?.scrapes ?? 0) >= 2);
      expect(board.list().map((t) => t.url)).toEqual([one!.url, three!.url]);
      expect(board.get(two!.url)).toBeUndefined();
      // The kept target kept its loop and its state: its scrape count goes on growing from where it
      // was, never starting over (waited for: on a loaded machine its next scrape may come later).
      let fewestSeen = Infinity;
      await until(() => {
        const scrapes = board.get(one!.url)?.scrapes ?? 0;
        fewestSeen = Math.min(fewestSeen, scrapes);
        return scrapes > oneScrapesBefore;
      });
      expect(fewestSeen).toBeGreaterThanOrEqual(oneScrapesBefore);
      expect(lines.some((l) => l.msg === 'targets file reloaded')).toBe(true);
      const reloaded = lines.find((l) => l.msg === 'targets file reloaded')!.fields;
      expect(reloaded).toMatchObject({ added: [three!.url], removed: [two!.url] });

      // The removed target is no longer requested.
      const twoRequests = two!.requests.length;
      await new Promise((r) => setTimeout(r, 400));
      expect(two!.requests.length).toBe(twoRequests);
      expect(three!.requests.length).toBeGreaterThanOrEqual(2);

      // An invalid file keeps the set; the error is logged with the file and the reason.
      writeAtomically(path, '[{"targets": [');
      await until(() => lines.some((l) => l.level === 'error'));
      const error = lines.find((l) => l.level === 'error')!;
      expect(error.msg).toBe('targets file not reloaded: keeping the previous targets');
      expect((error.fields as { reason: string }).reason).toMatch(/not valid JSON/);
      expect(follower.lastError).toBeInstanceOf(TargetsFileError);
      const threeBefore = board.get(three!.url)!.scrapes;
      await until(() => board.get(three!.url)!.scrapes >= threeBefore + 2);
      expect(board.list().map((t) => t.url)).toEqual([one!.url, three!.url]);

      // Every target emptied: the run goes on, waiting for targets.
      writeAtomically(path, '[]');
      await until(() => board.list().length === 0);
      writeAtomically(path, JSON.stringify([{ targets: [hostPort(two!)] }]));
      await until(() => (board.get(two!.url)?.scrapes ?? 0) >= 1);
      expect(board.list().map((t) => t.url)).toEqual([two!.url]);
    } finally {
      abort.abort();
      await run;
    }
    expect(scraped.get(three!.url)).toBeGreaterThanOrEqual(2);
  }, 30_000);

  it('unions the static targets with the file', async () => {
    const path = tempFile();
    writeFileSync(path, JSON.stringify([{ targets: ['b:2', 'a:1'] }]));
    const { logger } = recordingLogger();
    const follower = await followTargetsFile(path, ['http://a:1/metrics', 'http://z:9/metrics'], logger);
    closers.push(() => follower.close());
    expect(follower.initial).toEqual(['http://a:1/metrics', 'http://z:9/metrics', 'http://b:2/metrics']);
  });
});
