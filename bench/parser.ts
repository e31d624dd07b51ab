/**
 * Parser benchmark: generates N DCGM rows to a temp file, then measures (median of 3 runs each)
 * a raw read of the file (the floor), the record splitter alone, the full ingest pipeline (records +
 * validation to Samples) and a naive newline split as reference; then the same rows rendered as
 * dcgm-exporter exposition text (with their timestamps and labels_raw's labels) through the
 * exposition parser (src/ingest/exposition.ts), for its lines/s next to the CSV parser's rows/s.
 *
 *   npx tsx bench/parser.ts [--rows N]      (default 1,000,000)
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeDcgmCsv } from '../src/generate/generator.js';
import { CsvRecordSplitter } from '../src/ingest/csv-records.js';
import { readDcgm } from '../src/ingest/dcgm-reader.js';
import { readExposition } from '../src/ingest/exposition.js';
import { openSources } from '../src/ingest/sources.js';
import { DEFAULT_COUNTERS, renderLine } from '../test/fixtures/dcgm-exporter/render.js';

/** Figures of one measured stage. */
export interface StageFigures {
  /** Median wall time of the runs, ms. */
  medianMs: number;
  /** Rows per second at the median. */
  rowsPerSec: number;
  /** Median time divided by the raw read's median time. */
  xRawRead: number;
  /** Rows (or lines) the stage counted, as a check. */
  counted: number;
}

/** Result of {@link benchParser}. */
export interface ParserBenchResult {
  rows: number;
  bytes: number;
  generateMs: number;
  runs: number;
  rawRead: StageFigures;
  records: StageFigures;
  pipeline: StageFigures;
  newlineSplit: StageFigures;
  /** Dead letters seen by the pipeline (0 expected on generated data). */
  deadLetters: number;
  /** Size of the same rows as exposition text. */
  expositionBytes: number;
  /** The exposition parser (lines to Samples) on the same rows; rowsPerSec = sample lines/s. */
  exposition: StageFigures;
  /** Exposition rows/s divided by the CSV pipeline's rows/s (>= 1: at least as fast). */
  expositionVsCsv: number;
}

async function fileChunks(path: string): Promise<AsyncIterable<Buffer>> {
  for await (const s of openSources(path)) return s.chunks;
  throw new Error(`no source for ${path}`);
}

async function rawRead(path: string): Promise<number> {
  let bytes = 0;
  for await (const chunk of await fileChunks(path)) bytes += chunk.length;
  return bytes;
}

async function recordsOnly(path: string): Promise<number> {
  const splitter = new CsvRecordSplitter({ unescape: false });
  let n = 0;
  for await (const chunk of await fileChunks(path)) n += splitter.push(chunk).length;
  n += splitter.end().length;
  return n - 1; // header
}

let deadLetters = 0;
async function pipeline(path: string): Promise<number> {
  let samples = 0;
  deadLetters = 0;
  for await (const rows of readDcgm(await fileChunks(path), { source: path, clusterId: 'bench' })) {
    for (const r of rows) {
      if (r.ok) samples++;
      else deadLetters++;
    }
  }
  return samples;
}

/** Render the CSV's rows as exposition text (HELP/TYPE at each family change, times kept). */
async function renderExpositionFile(csvPath: string, promPath: string): Promise<number> {
  const out = createWriteStream(promPath);
  let metric = '';
  let buffered: string[] = [];
  const flush = async (): Promise<void> => {
    if (buffered.length === 0) return;
    const text = `${buffered.join('\n')}\n`;
    buffered = [];
    if (!out.write(text)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  };
  for await (const rows of readDcgm(await fileChunks(csvPath), { source: csvPath, clusterId: 'bench' })) {
    for (const r of rows) {
      if (!r.ok) continue;
      const s = r.sample;
      if (s.metric !== metric) {
        metric = s.metric;
        const c = DEFAULT_COUNTERS[metric];
        buffered.push(`# HELP ${metric} ${c?.help ?? ''}`, `# TYPE ${metric} ${c?.type ?? 'gauge'}`);
      }
      buffered.push(renderLine(s, { timestamps: true, scrapeLabels: true }));
    }
    if (buffered.length > 4096) await flush();
  }
  await flush();
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  return (await stat(promPath)).size;
}

let expositionDeadLetters = 0;
async function exposition(path: string): Promise<number> {
  let samples = 0;
  expositionDeadLetters = 0;
  const options = { source: path, clusterId: 'bench', scrapeStartMs: Date.now() };
  for await (const rows of readExposition(await fileChunks(path), options)) {
    for (const r of rows) {
      if (r.ok) samples++;
      else expositionDeadLetters++;
    }
  }
  return samples;
}

async function newlineSplit(path: string): Promise<number> {
  let lines = 0;
  let carry = '';
  for await (const chunk of await fileChunks(path)) {
    const parts = (carry + chunk.toString('utf8')).split('\n');
    carry = parts.pop() ?? '';
    lines += parts.length;
  }
  return lines - 1; // header
}

async function measure(
  runs: number,
  rows: number,
  fn: () => Promise<number>,
): Promise<Omit<StageFigures, 'xRawRead'>> {
  const times: number[] = [];
  let counted = 0;
  for (let k = 0; k < runs; k++) {
    const t = performance.now();
    counted = await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const medianMs = times[Math.floor(times.length / 2)]!;
  return { medianMs, rowsPerSec: Math.round((rows / medianMs) * 1000), counted };
}

/**
 * Generate `rows` DCGM rows (125 hosts x 8 GPUs x 10 metrics, so 100 scrapes per million rows) to a
 * temp file and measure each stage, median of `runs` runs. The temp file is removed afterwards.
 */
export async function benchParser(rows: number, runs = 3): Promise<ParserBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'nexus-bench-parser-'));
  const path = join(dir, 'dcgm.csv');
  try {
    const t = performance.now();
    const { bytes } = await writeDcgmCsv(path, { rows, hosts: 125, gpusPerHost: 8, seed: 42 });
    const generateMs = performance.now() - t;
    const raw = await measure(runs, rows, () => rawRead(path));
    const withRatio = (s: Omit<StageFigures, 'xRawRead'>): StageFigures => ({
      ...s,
      xRawRead: Math.round((s.medianMs / raw.medianMs) * 10) / 10,
    });
    const records = withRatio(await measure(runs, rows, () => recordsOnly(path)));
    const full = withRatio(await measure(runs, rows, () => pipeline(path)));
    const reference = withRatio(await measure(runs, rows, () => newlineSplit(path)));
    const promPath = join(dir, 'dcgm.prom');
    const expositionBytes = await renderExpositionFile(path, promPath);
    const expo = withRatio(await measure(runs, rows, () => exposition(promPath)));
    if (expo.counted !== rows || expositionDeadLetters !== 0) {
      throw new Error(
        `exposition parser produced ${expo.counted} samples and ${expositionDeadLetters} dead letters for ${rows} rows`,
      );
    }
    if (full.counted !== rows || deadLetters !== 0) {
      throw new Error(
        `pipeline produced ${full.counted} samples and ${deadLetters} dead letters for ${rows} rows`,
      );
    }
    return {
      rows,
      bytes,
      generateMs,
      runs,
      rawRead: withRatio(raw),
      records,
      pipeline: full,
      newlineSplit: reference,
      deadLetters,
      expositionBytes,
      exposition: expo,
      expositionVsCsv: Math.round((expo.rowsPerSec / full.rowsPerSec) * 100) / 100,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function parseRows(argv: string[]): number {
  const i = argv.indexOf('--rows');
  if (i === -1) return 1_000_000;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--rows needs a positive integer, got ${argv[i + 1]}`);
  return n;
}

async function main(): Promise<void> {
  const rows = parseRows(process.argv.slice(2));
  const r = await benchParser(rows);
  const mb = r.bytes / 1024 / 1024;
  console.log(
    `parser bench: ${r.rows.toLocaleString('en-US')} rows, ${mb.toFixed(0)} MiB, generated in ${(r.generateMs / 1000).toFixed(1)} s; median of ${r.runs}`,
  );
  const line = (name: string, s: StageFigures): string =>
    `  ${name.padEnd(34)} ${s.medianMs.toFixed(0).padStart(7)} ms  ${s.rowsPerSec.toLocaleString('en-US').padStart(11)} rows/s  ${s.xRawRead.toFixed(1).padStart(5)}x raw read`;
  console.log(line('raw read (floor)', r.rawRead));
  console.log(line('newline split (reference)', r.newlineSplit));
  console.log(line('records (RFC 4180 splitter)', r.records));
  console.log(line('pipeline (records + validation)', r.pipeline));
  console.log(
    `  same rows as exposition text: ${(r.expositionBytes / 1024 / 1024).toFixed(0)} MiB (x raw read is vs the CSV file's read)`,
  );
  console.log(line('exposition parser (lines -> Samples)', r.exposition));
  console.log(`  exposition / CSV pipeline: ${r.expositionVsCsv.toFixed(2)}x`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
