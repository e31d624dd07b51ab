/**
 * Test harness: a Prometheus (Debian package `prometheus`) serving backfilled data. `promtool tsdb
 * create-blocks-from openmetrics` turns an OpenMetrics file (timestamps in seconds) into TSDB blocks
 * in a temporary directory, then Prometheus starts on it (it loads only the blocks present at
 * start-up) with a retention long enough to keep old blocks, and no scrape jobs. Queries go to its
 * HTTP API exactly as a client sends them, answers come back raw (status and JSON) so errors can be
 * compared too. stop() stops Prometheus and removes the blocks.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startPrometheus, type PrometheusHandle } from './prometheus.js';

const PROMTOOL = '/usr/bin/promtool';

/** What one block creation did (promtool's own summary lines). */
export interface BackfillSummary {
  /** promtool's stdout: a table of the blocks written. */
  output: string;
}

/**
 * `promtool tsdb create-blocks-from openmetrics <file> <dir>`.
 * @throws Error naming the Debian package when promtool is missing, or with promtool's output when it fails
 */
export async function createBlocks(openMetricsFile: string, dir: string): Promise<BackfillSummary> {
  if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} not found: install the Debian package prometheus`);
  try {
    const { stdout } = await promisify(execFile)(
      PROMTOOL,
      ['tsdb', 'create-blocks-from', 'openmetrics', openMetricsFile, dir],
      { maxBuffer: 16 * 2 ** 20 },
    );
    return { output: stdout };
  } catch (error) {
    const e = error as Error & { stdout?: string; stderr?: string };
    throw new Error(
      `promtool create-blocks-from openmetrics ${openMetricsFile} failed: ${e.message}\n${e.stderr ?? ''}`,
      {
        cause: error,
      },
    );
  }
}

/** A raw answer of the Prometheus HTTP API. */
export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** GET `url` and parse its JSON body whatever the status (Prometheus answers errors as JSON too). */
export async function getJson(url: string, timeoutMs = 30_000): Promise<ApiAnswer> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = { status: 'error', errorType: 'not_json', error: text.slice(0, 500) };
  }
  return { status: response.status, body };
}

/** A Prometheus on backfilled blocks. */
export interface BackfilledPrometheus {
  readonly prometheus: PrometheusHandle;
  readonly url: string;
  /** promtool's summary of the blocks. */
  readonly blocks: string;
  /** GET `path` (with its query string) of the HTTP API, raw. */
  get(path: string): Promise<ApiAnswer>;
  /** Stop Prometheus, remove the blocks. Idempotent. */
  stop(): Promise<void>;
}

/** Backfill `openMetricsFile` into fresh blocks and start Prometheus on them. */
export async function startBackfilledPrometheus(
  openMetricsFile: string,
  options: { readyTimeoutMs?: number; extraArgs?: readonly string[] } = {},
): Promise<BackfilledPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'nexus-promtool-'));
  let prometheus: PrometheusHandle | undefined;
  try {
    const summary = await createBlocks(openMetricsFile, dir);
    prometheus = await startPrometheus({
      // No scrape jobs. The evaluation interval is also the default step of a subquery (`[15m:]`).
      config: 'global:\n  evaluation_interval: 1m\n',
      storageDir: dir,
      readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
      // Backfilled blocks are as old as their data: keep them whatever their age.
      extraArgs: ['--storage.tsdb.retention.time=100y', ...(options.extraArgs ?? [])],
    });
    const handle = prometheus;
    let stopped = false;
    return {
      prometheus: handle,
      url: handle.url,
      blocks: summary.output,
      get: (path) => getJson(`${handle.url}${path}`),
      async stop() {
        if (stopped) return;
        stopped = true;
        await handle.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await prometheus?.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
