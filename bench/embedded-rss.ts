/**
 * Peak RSS of the compiled `start` while it ingests a generated exposition file:
 *
 *   npm run build && npx tsx bench/embedded-rss.ts [--store sqlite|pglite] [--gpus 1400] [--scrapes 720] [--no-node-flags]
 *
 * The data (test/support/promql-data.ts, 10 gauges a GPU, 30 s apart) is written once to
 * `/tmp/nexus-rss-<gpus>x<scrapes>.prom` and reused. `node <the flags of npm start in package.json>
 * dist/cli/main.js start <file>` (as `npm start`; `--no-node-flags`
 * drops the flags; RSS_EXTRA_FLAGS adds more, after them) runs in a
 * child process (EMBEDDED_STORE as asked, a temporary DATA_DIR, NODE_OPTIONS passed through, so
 * `NODE_OPTIONS=--max-old-space-size=192` measures a bounded heap); its VmHWM and VmRSS are read from
 * /proc every 250 ms until it prints its ingest summary. Prints the rate, the peak and the RSS at
 * each quarter of the run, and the data directory's size.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatePromqlDataset, PROMQL_GAUGES, writeDataset } from '../test/support/promql-data.js';
import { intArg } from './args.js';

/** The Node.js flags `npm start` passes (package.json), so this measures what `npm start` runs. */
const NODE_FLAGS = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    scripts: { start: string };
  }
).scripts.start
  .split(' ')
  .filter((arg) => arg.startsWith('--'));
const extraFlags = (process.env.RSS_EXTRA_FLAGS ?? '').split(' ').filter(Boolean);

const store = process.argv.includes('--store') ? process.argv[process.argv.indexOf('--store') + 1] : 'sqlite';
if (store !== 'sqlite' && store !== 'pglite')
  throw new Error(`--store must be sqlite or pglite, got ${store}`);
const gpus = intArg('--gpus', 1400);
const scrapes = intArg('--scrapes', 720);
const file = `/tmp/nexus-rss-${gpus}x${scrapes}.prom`;
if (!existsSync(file)) {
  process.stderr.write(`writing ${file} ...\n`);
  const gpusPerHost = Array.from({ length: Math.ceil(gpus / 8) }, (_, h) => Math.min(8, gpus - h * 8));
  const endMs = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
  const dataset = generatePromqlDataset({
    startMs: endMs - scrapes * 30_000,
    durationMs: scrapes * 30_000,
    intervalMs: 30_000,
    gpusPerHost,
    metrics: PROMQL_GAUGES.slice(0, 10),
    gap: false,
    reset: false,
    cluster: 'bench',
    seed: 11,
  });
  await writeDataset(dataset, 'text', file);
}
const dir = mkdtempSync(join(tmpdir(), 'nexus-rss-'));
try {
  const child = spawn(
    process.execPath,
    [
      // As `npm start` runs it, unless `--no-node-flags` measures Node's defaults.
      ...(process.argv.includes('--no-node-flags') ? [] : NODE_FLAGS),
      ...extraFlags,
      'dist/cli/main.js',
      'start',
      file,
      '--data-dir',
      dir,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--cluster-id',
      'bench',
    ],
    { env: { ...process.env, EMBEDDED_STORE: store, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let peak = 0;
  const rss: number[] = [];
  const started = performance.now();
  const timer = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      peak = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
      rss.push(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
    } catch {
      // the process is gone
    }
  }, 250);
  const summary = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /ingested [^\n]*/.exec(out);
      if (m) resolve(m[0]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) =>
      reject(new Error(`start exited (${code}) before its summary:\n${out.slice(-2000)}`)),
    );
  });
  const seconds = (performance.now() - started) / 1000;
  clearInterval(timer);
  child.kill('SIGINT');
  await new Promise((resolve) => child.on('exit', resolve));
  const bytes = Number(execFileSync('du', ['-sb', dir]).toString().split('\t')[0]);
  const quarter = (q: number): number => Math.round(rss[Math.max(0, Math.ceil(q * rss.length) - 1)] ?? 0);
  console.log(
    `${store}, ${gpus} GPUs x 10 metrics x ${scrapes} scrapes, node flags: ${process.argv.includes('--no-node-flags') ? 'none' : NODE_FLAGS.join(' ')}${extraFlags.length > 0 ? ` ${extraFlags.join(' ')}` : ''}, NODE_OPTIONS=${process.env.NODE_OPTIONS ?? ''}`,
  );
  console.log(`  ${summary}`);
  console.log(
    `  wall ${seconds.toFixed(1)} s; peak RSS ${Math.round(peak)} MiB; RSS at 25/50/75/100% of the run ${[0.25, 0.5, 0.75, 1].map(quarter).join(' / ')} MiB; data directory ${(bytes / 2 ** 20).toFixed(1)} MiB`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
