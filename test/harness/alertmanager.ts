/**
 * Test harness: a throwaway Alertmanager (Debian package `prometheus-alertmanager`,
 * /usr/bin/prometheus-alertmanager) on a free 127.0.0.1 port, clustering off
 * (`--cluster.listen-address=` empty), its configuration and `--storage.path` in a temporary
 * directory. Waits for /-/ready; stop() kills it (SIGTERM, SIGKILL after 10 s) and removes the
 * directory. Never skips: a missing binary is an error naming the package.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

const ALERTMANAGER = '/usr/bin/prometheus-alertmanager';

/** One alert as Alertmanager's GET /api/v2/alerts lists it. */
export interface AlertmanagerListedAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
  status: { state: 'active' | 'suppressed' | 'unprocessed'; silencedBy: string[]; inhibitedBy: string[] };
}

/** A running test Alertmanager. */
export interface AlertmanagerHandle {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Last lines it logged (for failure messages). */
  output(): string;
  /** GET /api/v2/alerts (with an optional query string such as `?active=true`). */
  alerts(query?: string): Promise<AlertmanagerListedAlert[]>;
  /** SIGTERM (SIGKILL after 10 s), then remove the directory. Idempotent. */
  stop(): Promise<void>;
}

/** A configuration with one receiver: a webhook (send_resolved) when `webhookUrl` is given, else none. */
export function alertmanagerConfig(webhookUrl?: string): string {
  const receiver =
    webhookUrl === undefined
      ? '  - name: default\n'
      : `  - name: default\n    webhook_configs:\n      - url: ${JSON.stringify(webhookUrl)}\n        send_resolved: true\n`;
  return [
    'route:',
    '  receiver: default',
    '  group_by: [alertname]',
    '  group_wait: 0s',
    '  group_interval: 1s',
    '  repeat_interval: 1h',
    'receivers:',
    receiver,
  ].join('\n');
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Start Alertmanager with `config` (default: {@link alertmanagerConfig}) and wait until /-/ready answers 200. */
export async function startAlertmanager(
  options: { config?: string; readyTimeoutMs?: number } = {},
): Promise<AlertmanagerHandle> {
  if (!existsSync(ALERTMANAGER)) {
    throw new Error(`${ALERTMANAGER} not found: install the Debian package prometheus-alertmanager`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'nexus-alertmanager-'));
  await writeFile(join(dir, 'alertmanager.yml'), options.config ?? alertmanagerConfig());
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    ALERTMANAGER,
    [
      `--config.file=${join(dir, 'alertmanager.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      '--cluster.listen-address=',
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
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
      throw new Error(`alertmanager exited before it was ready:\n${output}`);
    }
    const ready = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`alertmanager on ${url} was not ready in time:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    output: () => output,
    async alerts(query = '') {
      const response = await fetch(`${url}/api/v2/alerts${query}`, { signal: AbortSignal.timeout(10_000) });
      if (response.status !== 200) throw new Error(`alertmanager /api/v2/alerts: HTTP ${response.status}`);
      return (await response.json()) as AlertmanagerListedAlert[];
    },
    stop,
  };
}
