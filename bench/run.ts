/**
 * `npm run bench [-- --rows N --runs K --query-sizes A,B --nexus-budget-s S --traditional-budget-s S --jetstream-budget-s S --cost-gpus G --analytics-gpus G --analytics-days D]`:
 * generates DCGM CSV with the project's generator, then measures in one run, so every figure has a
 * floor taken on the same machine at the same hour:
 *   1. the CSV parser vs a raw read of the file, and the exposition parser on the same rows (bench/parser.ts)
 *   2. `psql \copy` of the same rows into a narrow indexed table (the storage floor), nexus
 *      (etcd queue -> 2 collectors -> PostgreSQL), traditional (Redis -> 2 collectors ->
 *      PostgreSQL) and jetstream (NATS JetStream -> 2 collectors -> PostgreSQL) end-to-end with
 *      their ratio to that floor, peak RSS and CPU of every process,
 *      and etcd's database size (bench/pipelines.ts)
 *   3. embedded end-to-end (file -> streamer -> queue -> collector -> the default embedded store on disk, SQLite)
 *   4. REST query latency at 1M and 10M stored samples (bench/queries.ts)
 *   5. event latency from the collector's write to /ws and GraphQL subscribers, 1 and 100, and
 *      what a stalled subscriber costs the others (bench/events.ts); then in nexus mode under a
 *      live load, 100 subscribers per transport while 31 scraped hosts (247 GPUs) change every 2 s
 *      (bench/events-nexus.ts)
 *   6. PromQL query_range latency beside Prometheus 2.42 on the same data (bench/promql.ts)
 *   7. cost per sample beside Prometheus (issue 18's table: ingest rate, disk per sample, one GPU's
 *      raw hour, latest values; 1,000 GPUs x 10 metrics x 100 scrapes, `--cost-gpus` to change;
 *      then the same at steady state, 140 GPUs x 720 scrapes; bench/cost-per-sample.ts)
 *   8. fleet analytics: attribution by namespace over 30 days at 1,000 GPUs from rollups (target
 *      < 1 s), idle and outliers over 7 days, and the raw computation it must equal
 *      (`--analytics-gpus`, `--analytics-days` to change; bench/analytics.ts)
 * Prints every table and writes one JSON file to bench/results/. Each figure: median of K runs
 * (default 3) and the spread.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.js';
import { writeDcgmCsv } from '../src/generate/generator.js';
import { startEmbedded } from '../src/runtime/embedded.js';
import { createLogger } from '../src/util/logger.js';
import { checkArgs, intArg, intListArg } from './args.js';
import { benchEvents, formatEventFigures } from './events.js';
import { benchEventsNexus, formatNexusEventFigures } from './events-nexus.js';
import { figure } from './figure.js';
import { benchParser } from './parser.js';
import { benchPipelines, DEFAULT_BUDGET_SECONDS, formatPipelineFigures } from './pipelines.js';
import { benchAnalytics, formatAnalyticsFigures } from './analytics.js';
import { benchCostPerSample, formatCostFigures } from './cost-per-sample.js';
import { benchPromql, formatPromqlFigures } from './promql.js';
import { benchQueries, formatQueryFigures } from './queries.js';

async function embeddedEndToEnd(file: string, rows: number): Promise<{ rowsPerSec: number; rssMiB: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'nexus-bench-'));
  const runtime = await startEmbedded({
    config: loadConfig(
      {},
      { DATA_DIR: dataDir, LOG_LEVEL: 'silent', CLUSTER_ID: 'bench', EMBEDDED_STORE: 'sqlite' },
    ),
    logger: createLogger('silent'),
    listen: false,
  });
  try {
    const started = performance.now();
    await runtime.ingest({ spec: file });
    const seconds = (performance.now() - started) / 1000;
    const stored = await runtime.store.countSamples();
    if (stored !== rows) throw new Error(`embedded run stored ${stored} samples, expected ${rows}`);
    return { rowsPerSec: rows / seconds, rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20) };
  } finally {
    await runtime.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const USAGE = `npm run bench [-- flags]: every stage of the project's benchmark in one run (about 30 minutes
on 2 cores); prints each table and writes one JSON file to bench/results/.
  --rows N                  rows of the generated DCGM file (default 1000000)
  --runs K                  runs per figure, median and spread (default 3)
  --query-sizes A,B         stored samples of the REST query stage (default 1000000,10000000)
  --nexus-budget-s S        longest timed window of a nexus end-to-end run (default 45)
  --traditional-budget-s S  the same for traditional (default ${DEFAULT_BUDGET_SECONDS.traditional})
  --jetstream-budget-s S    the same for jetstream (default ${DEFAULT_BUDGET_SECONDS.jetstream})
  --cost-gpus G             GPUs of the cost-per-sample stage (default 1000)
  --analytics-gpus G        GPUs of the analytics stage (default 1000)
  --analytics-days D        days of the analytics stage (default 30)
Each stage also runs alone: npx tsx bench/<stage>.ts (its flags are in its header comment).`;

async function main(): Promise<void> {
  checkArgs(USAGE, [
    '--rows',
    '--runs',
    '--query-sizes',
    '--nexus-budget-s',
    '--traditional-budget-s',
    '--jetstream-budget-s',
    '--cost-gpus',
    '--analytics-gpus',
    '--analytics-days',
  ]);
  const rows = intArg('--rows', 1_000_000);
  const runs = intArg('--runs', 3);
  const dir = mkdtempSync(join(tmpdir(), 'nexus-bench-data-'));
  const file = join(dir, 'bench.csv');
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const benchStarted = performance.now();
  try {
    log(`bench: generating ${rows.toLocaleString('en-US')} rows ...`);
    // 8 GPUs x 10 metrics per host; enough hosts and scrapes to reach the row count.
    await writeDcgmCsv(file, { hosts: 125, gpusPerHost: 8, rows, seed: 7 });

    log('bench: parser vs raw read ...');
    const parser = await benchParser(rows, runs);

    const embeddedRuns: { rowsPerSec: number; rssMiB: number }[] = [];
    for (let i = 0; i < runs; i++) {
      log(`bench: embedded end-to-end, run ${i + 1}/${runs} ...`);
      embeddedRuns.push(await embeddedEndToEnd(file, rows));
    }
    const e2e = figure(embeddedRuns.map((r) => r.rowsPerSec));
    // The embedded pipeline runs in this process; its peak so far is parser + embedded runs.
    const embeddedPeakRssMiB = Math.round(process.resourceUsage().maxRSS / 1024);

    const pipelines = await benchPipelines({
      file,
      rows,
      runs,
      log,
      budgetSeconds: {
        nexus: intArg('--nexus-budget-s', 45),
        traditional: intArg('--traditional-budget-s', DEFAULT_BUDGET_SECONDS.traditional),
        jetstream: intArg('--jetstream-budget-s', DEFAULT_BUDGET_SECONDS.jetstream),
      },
    });
    const querySizes = intListArg('--query-sizes') ?? [1_000_000, 10_000_000];
    const queries = await benchQueries({ runs, sizes: querySizes, log });
    // Two replays per run: enough for the stalled client to pass its send-buffer bound and be dropped.
    const events = await benchEvents({ runs, replays: 2, log });
    // Nexus mode under a live load: 31 scraped hosts, 247 GPUs every 2 s, 100 subscribers per transport.
    const eventsNexus = await benchEventsNexus({ seconds: 20, intervalMs: 2000, subscribers: 100, log });
    const promql = await benchPromql({ runs, log });
    const cost = await benchCostPerSample({ runs, gpus: intArg('--cost-gpus', 1000), log });
    // The same million samples as 6 hours of 140 GPUs: each series fills its 6-hour chunk, as it
    // does in a store that has run for a while (the 50 minutes above leave every chunk short).
    const costSteady = await benchCostPerSample({ runs, gpus: 140, scrapes: 720, log });
    const analytics = await benchAnalytics({
      gpus: intArg('--analytics-gpus', 1000),
      days: intArg('--analytics-days', 30),
      intervalS: 3600,
      runs: Math.max(runs, 5),
      log,
    });

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
        expositionLinesPerSec: parser.exposition.rowsPerSec,
        expositionVsCsv: parser.expositionVsCsv,
      },
      embedded: {
        rowsPerSec: e2e,
        ratioToParser: e2e.median / parser.pipeline.rowsPerSec,
        target: 50_000,
        peakRssMiB: embeddedPeakRssMiB,
      },
      pipelines,
      queries,
      events,
      eventsNexus,
      promql,
      cost,
      costSteady,
      analytics,
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
        'exposition parser (dcgm-exporter text, lines/s)',
        k(parser.exposition.rowsPerSec),
        '',
        `${parser.expositionVsCsv.toFixed(2)}x CSV parser`,
        `>= 1.00x CSV ${parser.expositionVsCsv >= 1 ? 'met' : 'MISSED'}`,
      ],
      [
        'embedded end-to-end (SQLite disk)',
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
    console.log(`embedded: peak RSS of the one process ${embeddedPeakRssMiB} MiB`);
    console.log(`\n${formatPipelineFigures(pipelines)}`);
    console.log(`\n${formatQueryFigures(queries)}`);
    console.log(`\nevent latency, collector write -> subscriber (embedded)\n${formatEventFigures(events)}`);
    console.log(`\n${formatNexusEventFigures(eventsNexus)}`);
    console.log(`\n${formatPromqlFigures(promql)}`);
    console.log(`\n${formatCostFigures(cost)}`);
    console.log(`\n${formatCostFigures(costSteady)}`);
    console.log(`\n${formatAnalyticsFigures(analytics)}`);
    console.log(`\nwall time of the whole bench: ${Math.round((performance.now() - benchStarted) / 1000)} s`);

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
