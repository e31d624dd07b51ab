/**
 * Soak: `start` ingests a file with good and bad rows while it is SIGKILLed at random moments and
 * restarted on the same data directory (each run re-reads the whole file, as an operator would), and
 * hostile clients hit /ws, graphql-ws and REST the whole time. At the end the store holds every good
 * row exactly once, every bad row is exactly one dead letter, and /health answered within 1 s
 * whenever the server was up. SOAK_SECONDS sets the length (default 75 s; longer runs by hand).
 * `npm test` runs it on its own after the other files (`npm run test:soak`, which builds first), so the
 * 1 s bound measures the server, not the other test files competing for the same two cores; and it
 * runs the compiled CLI (dist/), as deployed: under tsx, modules loaded after start-up are compiled
 * on the main thread, which the bound would measure instead.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDcgmCsv } from '../../src/generate/generator.js';
import { freePort } from '../harness/free-port.js';
import { killAll, spawnCli, type CliProcess } from '../support/cli-process.js';
import { prng, probeHealth, runHostileClients } from '../support/hostile-clients.js';
import { openDataDirStore } from '../support/data-dir-store.js';

const BUILT_CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const SOAK_MS = Number(process.env.SOAK_SECONDS ?? 75) * 1000;
const work = mkdtempSync(join(tmpdir(), 'nexus-soak-'));
const dataDir = join(work, 'data');
const csvPath = join(work, 'soak.csv');

beforeAll(() => {
  if (!existsSync(BUILT_CLI))
    throw new Error(
      `the soak runs the compiled CLI: ${BUILT_CLI} is missing; run npm run build (npm run test:soak does)`,
    );
});

afterAll(() => {
  killAll();
  rmSync(work, { recursive: true, force: true });
});

/** Bad rows of every kind the reader and the store refuse; each must become one dead letter. */
function badRows(template: string[]): string[] {
  const row = (changes: Record<number, string>): string => csvRow(template, changes);
  return [
    row({ 10: 'NaN' }),
    row({ 10: 'Infinity' }),
    row({ 10: 'twelve' }),
    row({ 0: 'yesterday' }),
    row({ 0: '2025-13-45T99:99:99Z' }),
    row({ 0: '0000-01-01T00:00:00Z' }),
    row({ 0: '9999-12-31T23:59:59Z' }), // far in the future
    row({ 6: 'h'.repeat(4000), 1: 'M'.repeat(4000) }), // identity too long for the store's indexes
    row({ 11: 'gpu=""0"",broken' }), // labels_raw without key=value
    `"2025-07-18T20:42:34Z","DCGM_FI_DEV_GPU_UTIL","0"`, // too few columns
    `${row({})},"extra"`, // too many columns
  ];
}

/** One quoted CSV row from unescaped fields, with some replaced. */
function csvRow(fields: string[], changes: Record<number, string> = {}): string {
  return fields.map((field, i) => `"${(changes[i] ?? field).replaceAll('"', '""')}"`).join(',');
}

/** The fields of a generated (fully quoted) row, unescaped. */
function fieldsOf(line: string): string[] {
  return line
    .slice(1, -1)
    .split('","')
    .map((f) => f.replaceAll('""', '"'));
}

interface Plan {
  goodRows: number;
  badRows: number;
}

/** Write the soak file: generated good rows with the bad ones spread through it. */
function writeSoakFile(): Plan {
  const text = [...generateDcgmCsv({ hosts: 16, gpusPerHost: 8, durationMs: 300_000, seed: 11 })].join('');
  const lines = text.split('\n').filter((l) => l.length > 0);
  const header = lines.shift()!;
  const good = lines;
  const bad = badRows(fieldsOf(good[0]!));
  // A conflicting duplicate (same series and time, another value) is refused; an identical one is a no-op.
  const fifth = fieldsOf(good[5]!);
  bad.push(csvRow(fifth, { 10: String(Number(fifth[10]) + 1) }));
  const out = [header];
  const every = Math.floor(good.length / (bad.length + 1));
  let b = 0;
  for (let i = 0; i < good.length; i++) {
    out.push(good[i]!);
    if (i === 7) out.push(good[3]!); // identical duplicate
    if ((i + 1) % every === 0 && b < bad.length) out.push(bad[b++]!);
  }
  while (b < bad.length) out.push(bad[b++]!);
  writeFileSync(csvPath, `${out.join('\n')}\n`);
  return { goodRows: good.length, badRows: bad.length };
}

describe('soak: SIGKILL during ingest, hostile clients, /health', () => {
  it(
    'stores every good row once, dead-letters every bad row once, and answers /health within 1 s',
    async () => {
      const plan = writeSoakFile();
      expect(plan.goodRows).toBe(16 * 8 * 10 * 30);
      const random = prng(42);
      let current: string | undefined;
      const stop = new AbortController();
      const hostile = runHostileClients(() => current, stop.signal, 7);
      const health = probeHealth(() => current, stop.signal);
      const env = { LOG_LEVEL: 'warn', HOST: '127.0.0.1' };
      const runs: string[] = [];
      const runStarts: number[] = [];

      const startRun = async (): Promise<{ cli: CliProcess; port: number }> => {
        const port = await freePort();
        const cli = spawnCli(['start', csvPath, '--data-dir', dataDir, '--port', String(port)], env, {
          built: true,
        });
        await cli.waitFor(/API listening on/, 90_000);
        current = `http://127.0.0.1:${port}`;
        runStarts.push(Date.now());
        return { cli, port };
      };

      const deadline = Date.now() + SOAK_MS;
      let kills = 0;
      while (Date.now() < deadline) {
        const { cli } = await startRun();
        await new Promise((resolve) => setTimeout(resolve, 1000 + random() * 5000));
        current = undefined;
        cli.kill('SIGKILL');
        await cli.exited;
        kills += 1;
        runs.push(cli.output().slice(-300));
      }

      // A last run reads the whole file to the end and is stopped cleanly.
      const last = await startRun();
      const summary = await last.cli.waitFor(/ingested [\d,]+ rows \(\d+ bad/, 180_000);
      await new Promise((resolve) => setTimeout(resolve, 2000)); // hostile clients on the idle server too
      stop.abort();
      current = undefined;
      last.cli.kill('SIGTERM');
      expect(await last.cli.exited, last.cli.output().slice(-3000)).toBe(0);
      const stats = await hostile;
      const probes = await health;

      console.log(
        `soak: ${kills} SIGKILLs in ${SOAK_MS / 1000} s; last run: ${summary}; hostile: ${JSON.stringify({ ...stats, restServerErrors: stats.restServerErrors.length })}; ` +
          `/health probes ${probes.length}, slowest ${Math.max(...probes.map((p) => p.ms))} ms`,
      );
      // Where the slow answers fell: ms after that run's "API listening" line.
      const slow = probes
        .filter((p) => p.ms > 250)
        .map((p) => `${p.ms} ms at +${p.at - (runStarts.filter((t) => t <= p.at).at(-1) ?? p.at)} ms`);
      console.log(`soak: /health answers over 250 ms: ${slow.length > 0 ? slow.join(', ') : 'none'}`);
      expect(kills).toBeGreaterThanOrEqual(3);
      expect(stats.wsMessages).toBeGreaterThan(0);
      expect(stats.graphqlWsMessages).toBeGreaterThan(0);
      expect(stats.restRequests).toBeGreaterThan(0);
      expect(stats.restServerErrors).toEqual([]);
      expect(probes.length).toBeGreaterThan(20);
      expect(probes.filter((p) => p.status !== 200 || p.ms > 1000)).toEqual([]);

      // The store `start` chose (SQLite on a new directory), read through the sample-store port: its
      // natural key makes a sample stored twice impossible, so the count says exactly once.
      const store = await openDataDirStore(dataDir);
      try {
        expect(await store.countSamples()).toBe(plan.goodRows);
        const dead = await store.listDeadLetters({ limit: 10_000 });
        expect(dead.map((d) => d.reason).length, JSON.stringify(dead)).toBe(plan.badRows);
        expect(new Set(dead.map((d) => d.line)).size).toBe(plan.badRows);
      } finally {
        await store.close();
      }
    },
    30 * 60_000,
  );
});
