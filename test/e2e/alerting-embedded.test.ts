/**
 * Alerting end to end in one process (`start`): generated data with injected faults (the generator's
 * `faults`) goes through the pipeline into the embedded store, the built-in GPU health rules are evaluated at the
 * times of an injected clock, and each fault's alert goes pending, fires after its `for` and
 * resolves when the fault ends; no other alert shows. The process is restarted on the same
 * DATA_DIR while GPUOverheating is pending: it fires once, at the time `for` gives, and a webhook
 * receiver gets exactly one signed `firing` and one `resolved` notification per alert instance.
 * GET /api/v1/alerts and /api/v1/rules answer in Prometheus' shapes meanwhile.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { writeDcgmCsv } from '../../src/generate/generator.js';
import type { FaultSpec } from '../../src/generate/faults.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { startWebhookReceiver, type WebhookReceiver } from '../alerting/webhook-receiver.js';

const T0 = Date.UTC(2025, 6, 18, 20, 0, 0);
const S = 1000;
const M = 60 * S;
const END = 24 * M;
const dir = mkdtempSync(join(tmpdir(), 'nexus-alerting-'));
const csv = join(dir, 'faults.csv');
const host = (n: number): string => `sim-dgx1-hgpu-${String(n).padStart(3, '0')}`;

const FAULTS: FaultSpec[] = [
  { kind: 'overheat', host: '1', gpu: 0, fromMs: 2 * M, toMs: 8 * M },
  { kind: 'xid', host: '1', gpu: 1, fromMs: 1 * M, toMs: 3 * M, params: { code: 79 } },
  { kind: 'ecc-dbe', host: '2', gpu: 0, fromMs: 1 * M, toMs: 2 * M },
  { kind: 'remap-failure', host: '2', gpu: 1, fromMs: 2 * M, toMs: 4 * M },
  { kind: 'thermal-throttle', host: '3', gpu: 0, fromMs: 1 * M, toMs: 6 * M },
  { kind: 'power-throttle', host: '3', gpu: 1, fromMs: 1 * M, toMs: 9 * M },
  { kind: 'gone', host: '4', gpu: 0, fromMs: 3 * M, toMs: 10 * M },
  { kind: 'pcie-replay', host: '4', gpu: 1, fromMs: 2 * M, toMs: 3 * M },
  { kind: 'nvlink-error', host: '5', gpu: 0, fromMs: 2 * M, toMs: 3 * M },
];

/** Expected alert instances: alert, host, gpu, fired at, resolved at (ms after T0; evaluation every 30 s). */
const EXPECTED: [string, number, string, number, number][] = [
  // for 2m: hot from 2m -> pending 2m, firing 4m; cool at 8m.
  ['GPUOverheating', 1, '0', 4 * M, 8 * M],
  // XID 79 from 1m to 3m; keep_firing_for 5m (warning) and 15m (critical).
  ['GPUXidError', 1, '1', 1 * M, 8 * M],
  ['GPUXidCritical', 1, '1', 1 * M, 18 * M],
  // Counter increases (one per scrape inside the window): from the first increment until the
  // 10-minute window no longer holds the last one (at 1m50s -> 12m, at 2m50s -> 13m).
  ['GPUDoubleBitECCError', 2, '0', 1 * M, 12 * M],
  ['GPURowRemapFailure', 2, '1', 2 * M, 4 * M],
  // for 2m / 5m.
  ['GPUThermalThrottling', 3, '0', 3 * M, 6 * M],
  ['GPUPowerThrottling', 3, '1', 6 * M, 9 * M],
  // Gone from 3m (last sample 2m50s): stale after 2 minutes, missing once past the 5-minute lookback.
  ['GPUTelemetryStale', 4, '0', 5 * M, 8 * M],
  ['GPUMissing', 4, '0', 8 * M, 10 * M],
  ['GPUPCIeReplays', 4, '1', 2 * M, 13 * M],
  ['GPUNVLinkErrors', 5, '0', 2 * M, 13 * M],
];

let now = T0;
let receiver: WebhookReceiver;
let runtime: EmbeddedRuntime | undefined;
const logger = createLogger('silent');

function config() {
  return loadConfig(
    {},
    {
      DATA_DIR: join(dir, 'data'),
      CLUSTER_ID: 'faulty',
      LOG_LEVEL: 'silent',
      WEBHOOK_URLS: receiver.url,
      WEBHOOK_SECRET: 'hook-secret',
    },
  );
}

async function start(): Promise<EmbeddedRuntime> {
  runtime = await startEmbedded({ config: config(), logger, listen: false, alertClock: () => now });
  return runtime;
}

async function get<T>(url: string): Promise<T> {
  const response = await runtime!.app.inject({ method: 'GET', url });
  expect(response.statusCode, url).toBe(200);
  return response.json() as T;
}

interface ApiAlert {
  labels: Record<string, string>;
  state: string;
  activeAt: string;
  value: string;
}

/** `{alertname} {Hostname}/{gpu}` -> state, from GET /api/v1/alerts. */
async function apiStates(): Promise<Map<string, string>> {
  const body = await get<{ status: string; data: { alerts: ApiAlert[] } }>('/api/v1/alerts');
  expect(body.status).toBe('success');
  return new Map(
    body.data.alerts.map((a) => [`${a.labels.alertname} ${a.labels.Hostname}/${a.labels.gpu}`, a.state]),
  );
}

beforeAll(async () => {
  receiver = await startWebhookReceiver('hook-secret');
  await writeDcgmCsv(csv, {
    hosts: 5,
    gpusPerHost: 2,
    intervalMs: 10 * S,
    durationMs: END,
    start: T0,
    faults: FAULTS,
    seed: 7,
  });
  const rt = await start();
  const summary = await rt.ingest({ spec: csv });
  expect(summary.badRows).toBe(0);
}, 120_000);

afterAll(async () => {
  await runtime?.close();
  await receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('built-in GPU health alerts on injected faults', () => {
  it('each fault fires its alert after `for` and resolves it, across a restart mid-`for`', async () => {
    const seen = new Map<string, string[]>();
    for (let t = 0; t <= 20 * M; t += 30 * S) {
      now = T0 + t;
      await runtime!.alerting.evaluator.evaluateAt();
      for (const [key, state] of await apiStates()) {
        const list = seen.get(key) ?? [];
        if (list[list.length - 1] !== state) list.push(state);
        seen.set(key, list);
      }
      if (t === 3 * M) {
        // GPUOverheating has been pending for a minute (of its 2): restart the process.
        expect((await apiStates()).get(`GPUOverheating ${host(1)}/0`)).toBe('pending');
        await runtime!.close();
        await start();
        expect((await apiStates()).get(`GPUOverheating ${host(1)}/0`)).toBe('pending');
      }
    }
    // Exactly the expected alerts, each seen pending (when it has a `for`) then firing.
    const expectedKeys = EXPECTED.map(([name, h, g]) => `${name} ${host(h)}/${g}`).sort();
    expect([...seen.keys()].sort()).toEqual(expectedKeys);
    expect(seen.get(`GPUOverheating ${host(1)}/0`)).toEqual(['pending', 'firing']);
    expect(seen.get(`GPUPowerThrottling ${host(3)}/1`)).toEqual(['pending', 'firing']);
    expect(seen.get(`GPUMissing ${host(4)}/0`)).toEqual(['firing']);

    // One signed firing and one resolved webhook per alert instance, at the expected times.
    expect(receiver.received.every((r) => r.signed === true)).toBe(true);
    const got = receiver.received.map((r) => {
      const a = r.payload.alert;
      return `${r.payload.status} ${a.labels.alertname} ${a.labels.Hostname}/${a.labels.gpu} ${a.startsAt} ${a.endsAt ?? '-'}`;
    });
    const want = EXPECTED.flatMap(([name, h, g, fired, resolved]) => {
      const startsAt = new Date(T0 + fired).toISOString();
      return [
        `firing ${name} ${host(h)}/${g} ${startsAt} -`,
        `resolved ${name} ${host(h)}/${g} ${startsAt} ${new Date(T0 + resolved).toISOString()}`,
      ];
    });
    expect([...got].sort()).toEqual([...want].sort());
    expect(new Set(receiver.received.map((r) => r.idempotencyKey)).size).toBe(receiver.received.length);
  }, 240_000);

  it('lists the rules in Prometheus shape, with health', async () => {
    const body = await get<{
      status: string;
      data: { groups: { name: string; interval: number; rules: Record<string, unknown>[] }[] };
    }>('/api/v1/rules');
    expect(body.status).toBe('success');
    expect(body.data.groups.map((g) => [g.name, g.interval, g.rules.length])).toEqual([
      ['gpu-health', 30, 10],
      ['gpu-presence', 60, 2],
    ]);
    const overheating = body.data.groups[0]!.rules.find((r) => r.name === 'GPUOverheating')!;
    expect(overheating).toMatchObject({
      state: 'inactive',
      // The model's slowdown temperature, as the health model has it (builtin-health-consistency.test.ts).
      query: expect.stringContaining(
        'DCGM_FI_DEV_GPU_TEMP{modelName=~"NVIDIA H100 80GB HBM3|NVIDIA H200"} >= 87',
      ),
      duration: 120,
      keepFiringFor: 0,
      labels: { severity: 'warning' },
      alerts: [],
      health: 'ok',
      type: 'alerting',
    });
    expect(body.data.groups.flatMap((g) => g.rules).every((r) => r.health === 'ok')).toBe(true);
    const alertsOnly = await get<{ data: { groups: { rules: unknown[] }[] } }>('/api/v1/rules?type=record');
    expect(alertsOnly.data.groups[0]!.rules).toEqual([]);
  });
});
