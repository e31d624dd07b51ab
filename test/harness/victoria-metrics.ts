/**
 * Test harness: a throwaway single-node VictoriaMetrics on a free loopback port with its own
 * `-storageDataPath`, tuned so tests read what they just wrote: no 30 s latency offset, no rollup
 * result cache, dedup of identical samples (1 ms interval, optional), 100 years of retention. Never skips: a
 * missing binary is an error naming the Debian package.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

const VICTORIA_METRICS = '/usr/bin/victoria-metrics';

/** A running test VictoriaMetrics. */
export interface VictoriaHandle {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** The remote write endpoint: `${url}/api/v1/write`. */
  readonly writeUrl: string;
  readonly port: number;
  /** Data directory (removed by stop()). */
  readonly dir: string;
  /** Graceful shutdown (SIGTERM), then remove the data directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL the server, as a crash; the data directory stays for restart(). */
  kill(): Promise<void>;
  /** Start the server again on the same port and directory (after kill()). */
  restart(): Promise<void>;
}

/** Options for {@link startVictoriaMetrics}. */
export interface StartVictoriaOptions {
  /** `-retentionPeriod` (default `100y`). */
  retentionPeriod?: string;
  /**
   * `-dedup.minScrapeInterval=1ms` (default true): identical (series, time) samples are kept once.
   * Off, every sample written stays visible, so a test can count what was written twice.
   */
  dedup?: boolean;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) });
    return response.ok;
  } catch {
    return false;
  }
}

/** Start victoria-metrics on a free 127.0.0.1 port with a temporary data directory; wait for /health. */
export async function startVictoriaMetrics(options: StartVictoriaOptions = {}): Promise<VictoriaHandle> {
  if (!existsSync(VICTORIA_METRICS)) {
    throw new Error('victoria-metrics not found: install the Debian package victoria-metrics');
  }
  const dir = await mkdtemp(join(tmpdir(), 'nexus-vm-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [
    `-storageDataPath=${join(dir, 'data')}`,
    `-httpListenAddr=127.0.0.1:${port}`,
    `-retentionPeriod=${options.retentionPeriod ?? '100y'}`,
    '-search.latencyOffset=0s',
    '-search.disableCache',
    '-loggerLevel=ERROR',
  ];
  if (options.dedup !== false) args.push('-dedup.minScrapeInterval=1ms');
  let child: ChildProcess | undefined;
  let output = '';
  let removed = false;

  async function launch(): Promise<void> {
    output = '';
    const proc = spawn(VICTORIA_METRICS, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4000);
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) break;
      if (await healthy(url)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    proc.kill('SIGKILL');
    await exited(proc);
    throw new Error(`victoria-metrics did not become healthy on ${url}:\n${output}`);
  }

  async function halt(signal: NodeJS.Signals): Promise<void> {
    const proc = child;
    child = undefined;
    if (proc === undefined) return;
    proc.kill(signal);
    await exited(proc);
  }

  await launch();
  return {
    url,
    writeUrl: `${url}/api/v1/write`,
    port,
    dir,
    async stop() {
      await halt('SIGTERM');
      if (!removed) {
        removed = true;
        await rm(dir, { recursive: true, force: true });
      }
    },
    kill: () => halt('SIGKILL'),
    async restart() {
      await halt('SIGTERM');
      await launch();
    },
  };
}
