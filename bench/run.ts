/**
 * `npm run bench [-- --rows N --runs K]`: generates DCGM CSV with the project's generator, then
 * measures in one run, so every figure has a floor taken on the same machine at the same hour:
 *   - the CSV parser vs a raw read of the file (bench/parser.ts)
 *   - embedded end-to-end (file -> streamer -> queue -> collector -> PGlite on disk), rows/s and
 *     the ratio to the parser alone
 * Prints a table and writes JSON to bench/results/. Each figure: median of K runs (default 3) and spread.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.js';
import { writeDcgmCsv } from '../src/generate/generator.js';
import { startEmbedded } from '../src/runtime/embedded.js';
import { createLogger } from '../src/util/logger.js';
import { benchParser } from './parser.js';

interface Figure {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

function figure(values: number[]): Figure {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: sorted[Math.floor(sorted.length / 2)]!,
    min: sorted[0]!,
    max: sorted.at(-1)!,
    runs: values,
  };
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i === -1) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${name} needs a positive integer, got ${process.argv[i + 1]}`);
  return n;
}

async function embeddedEndToEnd(file: string, rows: number): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'nexus-bench-'));
  const runtime = await startEmbedded({
    config: loadConfig({}, { DATA_DIR: dataDir, LOG_LEVEL: 'silent', CLUSTER_ID: 'bench' }),
    logger: createLogger('silent'),
    listen: false,
  });
  try {
    const started = performance.now();
    await runtime.ingest({ spec: file });
    const seconds = (performance.now() - started) / 1000;
    const stored = await runtime.store.countSamples();
    if (stored !== rows) throw new Error(`embedded run stored ${stored} samples, expected ${rows}`);
    return rows / seconds;
  } finally {
    await runtime.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const rows = arg('--rows', 1_000_000);
  const runs = arg('--runs', 3);
  const dir = mkdtempSync(join(tmpdir(), 'nexus-bench-data-'));
  const file = join(dir, 'bench.csv');
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  try {
    log(`bench: generating ${rows.toLocaleString('en-US')} rows ...`);
    // 8 GPUs x 10 metrics per host; enough hosts and scrapes to reach the row count.
    await writeDcgmCsv(file, { hosts: 125, gpusPerHost: 8, rows, seed: 7 });

    log('bench: parser vs raw read ...');
    const parser = await benchParser(rows, runs);

    const embedded: number[] = [];
    for (let i = 0; i < runs; i++) {
      log(`bench: embedded end-to-end, run ${i + 1}/${runs} ...`);
      embedded.push(await embeddedEndToEnd(file, rows));
    }
    const e2e = figure(embedded);

    const results = {
      date: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
      },
      rows,
      runs,
      parser: {
        rawReadRowsPerSec: parser.rawRead.rowsPerSec,
        pipelineRowsPerSec: parser.pipeline.rowsPerSec,
        recordsRowsPerSec: parser.records.rowsPerSec,
        target: 400_000,
      },
      embedded: { rowsPerSec: e2e, ratioToParser: e2e.median / parser.pipeline.rowsPerSec, target: 50_000 },
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    };

    const k = (n: number): string => `${Math.round(n).toLocaleString('en-US')}`;
    const rowsOut = [
      ['stage', 'rows/s (median)', 'spread', 'ratio', 'target'],
      ['raw read of the file (floor)', k(parser.rawRead.rowsPerSec), '', '1.00x', ''],
      [
        'CSV records (RFC 4180 split)',
        k(parser.records.rowsPerSec),
        '',
        `${(parser.records.rowsPerSec / parser.rawRead.rowsPerSec).toFixed(2)}x raw`,
        '',
      ],
      [
        'parser (records + validation)',
        k(parser.pipeline.rowsPerSec),
        '',
        `${(parser.pipeline.rowsPerSec / parser.rawRead.rowsPerSec).toFixed(2)}x raw`,
        `>= 400,000 ${parser.pipeline.rowsPerSec >= 400_000 ? 'met' : 'MISSED'}`,
      ],
      [
        'embedded end-to-end (PGlite disk)',
        k(e2e.median),
        `${k(e2e.min)}..${k(e2e.max)}`,
        `${results.embedded.ratioToParser.toFixed(2)}x parser`,
        `>= 50,000 ${e2e.median >= 50_000 ? 'met' : 'MISSED'}`,
      ],
    ];
    const widths = rowsOut[0]!.map((_, c) => Math.max(...rowsOut.map((r) => r[c]!.length)));
    console.log(
      `\nnexus-telemetry bench: ${rows.toLocaleString('en-US')} rows, median of ${runs}, ${results.machine.cpus} cores, node ${process.version}`,
    );
    for (const r of rowsOut) console.log(r.map((cell, c) => cell.padEnd(widths[c]!)).join('  '));
    console.log(`peak RSS of the bench process: ${results.peakRssMiB} MiB`);

    const outDir = new URL('./results/', import.meta.url);
    mkdirSync(outDir, { recursive: true });
    const outFile = new URL(`bench-${results.date.replace(/[:.]/g, '-')}.json`, outDir);
    writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`results: ${outFile.pathname}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
