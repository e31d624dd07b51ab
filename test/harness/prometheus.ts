/**
 * Test harness: a throwaway Prometheus (Debian package `prometheus`, /usr/bin/prometheus) on a free
 * 127.0.0.1 port with its configuration and TSDB in a temporary directory. Waits for /-/ready;
 * stop() kills it (SIGTERM, SIGKILL after 10 s) and removes the directory. Never skips: a missing
 * binary is an error naming the package.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

const PROMETHEUS = '/usr/bin/prometheus';

/** A running test Prometheus. */
export interface PrometheusHandle {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly dir: string;
  /** Last lines Prometheus logged (for failure messages). */
  output(): string;
  /** GET a path of its HTTP API as JSON (`data` of a `success` answer). */
  api<T>(path: string): Promise<T>;
  /** Its own /metrics, as `name{labels}` -> value (series without labels under their name). */
  selfMetrics(): Promise<Map<string, number>>;
  /** SIGTERM (SIGKILL after 10 s), then remove the directory. Idempotent. */
  stop(): Promise<void>;
}

/** Sum of every series of `name` (any labels) in {@link PrometheusHandle.selfMetrics}' map. */
export function metricTotal(metrics: Map<string, number>, name: string): number {
  let sum = 0;
  for (const [key, value] of metrics) if (key === name || key.startsWith(`${name}{`)) sum += value;
  return sum;
}

/** Options of {@link startPrometheus}. */
export interface StartPrometheusOptions {
  /** prometheus.yml text. */
  config: string;
  /** Longest wait for /-/ready (default 20 s). */
  readyTimeoutMs?: number;
  /**
   * TSDB directory to open (e.g. blocks made by `promtool tsdb create-blocks-from`); the caller owns
   * it and stop() leaves it. Default: `data` inside the temporary directory.
   */
  storageDir?: string;
  /** More command-line flags (e.g. `--storage.tsdb.retention.time=100y`). */
  extraArgs?: readonly string[];
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Start Prometheus with `config` and wait until /-/ready answers 200. */
export async function startPrometheus(options: StartPrometheusOptions): Promise<PrometheusHandle> {
  if (!existsSync(PROMETHEUS)) {
    throw new Error(`${PROMETHEUS} not found: install the Debian package prometheus`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'nexus-prometheus-'));
  await writeFile(join(dir, 'prometheus.yml'), options.config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${options.storageDir ?? join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
      ...(options.extraArgs ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited(child);
    clearTimeout(timer);
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`prometheus exited before it was ready:\n${output}`);
    }
    const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus on ${url} was not ready in time:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    dir,
    output: () => output,
    async api<T>(path: string): Promise<T> {
      const response = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) });
      const body = (await response.json()) as { status: string; data: T; error?: string };
      if (response.status !== 200 || body.status !== 'success')
        throw new Error(`prometheus ${path}: HTTP ${response.status} ${body.error ?? ''}`);
      return body.data;
    },
    async selfMetrics(): Promise<Map<string, number>> {
      const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
      const text = await response.text();
      const out = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (line === '' || line.startsWith('#')) continue;
        const space = line.lastIndexOf(' ');
        out.set(line.slice(0, space), Number(line.slice(space + 1)));
      }
      return out;
    },
    stop,
  };
}
