/**
 * The `start` process's life cycle as an operator meets it: one process per data directory (a
 * second gets a clear error and touches nothing; a SIGKILLed holder leaves no stale lock), and a
 * signal during ingest exits 0 once everything read is stored, with no half-read row stored or
 * dead-lettered.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeDcgmCsv } from '../../src/generate/generator.js';
import { killAll, spawnCli, type CliProcess } from '../support/cli-process.js';
import { storedCounts } from '../support/data-dir-store.js';
import { until } from '../support/until.js';
import { freePort } from '../harness/free-port.js';

const work = mkdtempSync(join(tmpdir(), 'nexus-lifecycle-'));
const csv = join(work, 'fleet.csv');
const env = { LOG_LEVEL: 'info', HOST: '127.0.0.1' };

beforeAll(async () => {
  // 25 hosts x 8 GPUs x 10 metrics x 10 scrapes: a pass takes long enough to be interrupted.
  const written = await writeDcgmCsv(csv, { hosts: 25, gpusPerHost: 8, durationMs: 100_000, seed: 3 });
  expect(written.rows).toBe(20_000);
});

afterAll(() => {
  killAll();
  rmSync(work, { recursive: true, force: true });
});

async function startServing(
  dataDir: string,
  extraEnv: Record<string, string> = {},
  ingest = false,
): Promise<{ cli: CliProcess; port: number }> {
  const port = await freePort();
  const cli = spawnCli(
    ['start', ...(ingest ? [] : ['--no-ingest']), '--data-dir', dataDir, '--port', String(port)],
    { ...env, ...extraEnv },
  );
  await cli.waitFor(ingest ? /ingested [\d,]+ rows/ : /API listening on/, 90_000);
  return { cli, port };
}

/** `nexus_samples_written_total` of the server on `port` (0 while /metrics does not answer yet). */
async function samplesWritten(port: number): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
  if (response?.status !== 200) return 0;
  const line = /^nexus_samples_written_total(?:\{[^}]*\})? (\S+)$/m.exec(await response.text());
  return line ? Number(line[1]) : 0;
}

// Every test has its own data directory and port, so they run concurrently: each mostly waits on
// its child processes (PGlite's start, an ingest), and one after another they took most of a minute.
// Both embedded stores: SQLite is what a new directory gets; PGlite is what older ones keep.
describe.concurrent.each(['sqlite', 'pglite'] as const)('one process per data directory (%s)', (store) => {
  it('refuses a second start with the holder named, and recovers at once after the holder is SIGKILLed', async ({
    expect,
  }) => {
    const dataDir = join(work, `locked-${store}`);
    const storeEnv = { EMBEDDED_STORE: store };
    // The bundled sample, stored before the kill.
    const first = await startServing(dataDir, storeEnv, true);
    expect(first.cli.output()).toContain(
      `samples in ${store === 'sqlite' ? 'SQLite' : 'PGlite'} under ${dataDir}`,
    );
    const pid = first.cli.child.pid!;

    const second = spawnCli(['start', '--data-dir', dataDir, '--port', String(await freePort())], {
      ...env,
      ...storeEnv,
    });
    expect(await second.exited).toBe(1);
    expect(second.output()).toContain(
      `DATA_DIR_LOCKED: data directory ${dataDir} is in use by process ${pid}`,
    );
    expect(second.output()).not.toContain('ingesting');

    // The first still serves; the refused one changed nothing.
    const health = await fetch(`http://127.0.0.1:${first.port}/health`);
    expect(health.status).toBe(200);

    first.cli.kill('SIGKILL');
    expect(await first.cli.exited).toBe('SIGKILL');
    // `auto` (no EMBEDDED_STORE) finds the store the directory holds, and its data survived the kill.
    const third = await startServing(dataDir);
    expect(third.cli.output()).toContain(
      `samples in ${store === 'sqlite' ? 'SQLite' : 'PGlite'} under ${dataDir}`,
    );
    const cluster = (await (await fetch(`http://127.0.0.1:${third.port}/api/v1/clusters/local`)).json()) as {
      metadata: { total_gpus: number };
    };
    expect(cluster.metadata.total_gpus).toBe(247);
    third.cli.kill('SIGTERM');
    expect(await third.cli.exited).toBe(0);
    expect((await storedCounts(dataDir)).samples).toBe(2470);
  }, 240_000);
});

describe.concurrent('a signal during ingest', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} during --loop exits 0 after storing every row read, none half-read`, async ({ expect }) => {
      const dataDir = join(work, `signal-${signal}`);
      const port = await freePort();
      const cli = spawnCli(
        ['start', csv, '--loop', '--timestamps', 'now', '--data-dir', dataDir, '--port', String(port)],
        env,
      );
      await cli.waitFor(/ingesting .* \(looping\)/, 90_000);
      // Signal in the middle of the ingest: once some rows are stored (the loop never ends by itself).
      await until(
        'samples stored (nexus_samples_written_total > 0)',
        90_000,
        async () => (await samplesWritten(port)) > 0,
        () => cli.output().slice(-3000),
        100,
      );
      cli.kill(signal);
      expect(await cli.exited).toBe(0);
      const output = cli.output();
      expect(output).not.toContain('Fastify has already been closed');
      const stopped = /stopped: ingested ([\d,]+) rows \((\d+) bad\)/.exec(output);
      expect(stopped, output.slice(-3000)).not.toBeNull();
      const rows = Number(stopped![1]!.replaceAll(',', ''));
      expect(Number(stopped![2])).toBe(0);
      expect(rows).toBeGreaterThan(0);

      // Every row read is stored (each pass is restamped, so all are distinct), and nothing else.
      const counts = await storedCounts(dataDir);
      expect(counts.deadLetters).toEqual([]);
      expect(counts.samples).toBe(rows);
    }, 240_000);
  }
});
