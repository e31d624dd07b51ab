/**
 * A real Alertmanager (Debian `prometheus-alertmanager`, started by the harness on loopback) gets the
 * built-in GPUOverheating alert from `start` (ALERTMANAGER_URL) as Prometheus sends it: POST
 * /api/v2/alerts with labels, annotations, startsAt, endsAt and generatorURL; its API lists it
 * active; then the resolution (endsAt = the resolving evaluation), which Alertmanager forwards to its
 * own webhook receiver as `resolved`. Data are generated around the current time (Alertmanager
 * judges endsAt against its clock); the evaluations run at chosen times up to now.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRuleFile } from '../../src/alerting/rules-file.js';
import { loadConfig } from '../../src/config/config.js';
import { writeDcgmCsv } from '../../src/generate/generator.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { startWebhookReceiver, type WebhookReceiver } from '../alerting/webhook-receiver.js';
import { alertmanagerConfig, startAlertmanager, type AlertmanagerHandle } from '../harness/alertmanager.js';
import { until } from '../support/until.js';

/** The expression of a built-in rule, as its file has it. */
function builtinExpr(name: string): string {
  const file = new URL('../../rules/gpu-health.rules.yml', import.meta.url);
  const rules = parseRuleFile(readFileSync(file, 'utf8'), 'gpu-health.rules.yml').flatMap((g) => g.rules);
  const rule = rules.find((r) => r.name === name);
  if (!rule) throw new Error(`no built-in rule ${name}`);
  return rule.expr;
}

const S = 1000;
const M = 60 * S;
const dir = mkdtempSync(join(tmpdir(), 'nexus-alertmanager-e2e-'));
/** Last 10-second grid point; the data run from 10 minutes before it to it. */
const BASE = Math.floor(Date.now() / (10 * S)) * 10 * S;
const START = BASE - 10 * M;
let now = BASE;
let runtime: EmbeddedRuntime | undefined;
let alertmanager: AlertmanagerHandle | undefined;
let forwarded: WebhookReceiver;

interface AmWebhook {
  status: 'firing' | 'resolved';
  alerts: { status: string; labels: Record<string, string>; startsAt: string; endsAt: string }[];
}

beforeAll(async () => {
  forwarded = await startWebhookReceiver();
  alertmanager = await startAlertmanager({ config: alertmanagerConfig(forwarded.url) });
  const csv = join(dir, 'hot.csv');
  // GPU 0 of the first host at 95 C from 5 minutes in to 30 s before BASE.
  await writeDcgmCsv(csv, {
    hosts: 2,
    gpusPerHost: 2,
    intervalMs: 10 * S,
    durationMs: 10 * M + 10 * S,
    start: START,
    faults: [{ kind: 'overheat', host: '1', gpu: 0, fromMs: 5 * M, toMs: 9 * M + 40 * S }],
  });
  const config = loadConfig(
    {},
    {
      MEMORY: 'true',
      CLUSTER_ID: 'am-test',
      LOG_LEVEL: 'silent',
      ALERTMANAGER_URL: alertmanager.url,
      ALERT_EXTERNAL_URL: 'http://nexus.example:8080',
    },
  );
  runtime = await startEmbedded({
    config,
    logger: createLogger('silent'),
    listen: false,
    alertClock: () => now,
  });
  expect((await runtime.ingest({ spec: csv })).badRows).toBe(0);
}, 120_000);

afterAll(async () => {
  await runtime?.close();
  await alertmanager?.stop();
  await forwarded?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Alertmanager receives the alert and its resolution', () => {
  it('firing: listed active by GET /api/v2/alerts; resolved: forwarded as resolved', async () => {
    const evaluator = runtime!.alerting.evaluator;
    now = BASE - 4 * M; // hot: pending
    await evaluator.evaluateAt();
    expect(await alertmanager!.alerts()).toEqual([]);
    now = BASE - 2 * M; // hot for 2 minutes: firing, sent
    await evaluator.evaluateAt();
    const listed = await alertmanager!.alerts();
    expect(listed).toHaveLength(1);
    const alert = listed[0]!;
    expect(alert.labels).toMatchObject({
      alertname: 'GPUOverheating',
      severity: 'warning',
      Hostname: 'sim-dgx1-hgpu-001',
      gpu: '0',
      cluster: 'am-test',
    });
    expect(alert.annotations.summary).toBe('GPU 0 of sim-dgx1-hgpu-001 at 95 C');
    expect(alert.status.state).toBe('active');
    expect(Date.parse(alert.startsAt)).toBe(BASE - 2 * M);
    // endsAt: 4 x max(resend delay 1m, interval 30s) after the evaluation, as Prometheus sets it.
    expect(Date.parse(alert.endsAt)).toBe(BASE + 2 * M);
    expect(alert.generatorURL).toBe(
      `http://nexus.example:8080/graph?g0.expr=${encodeURIComponent(builtinExpr('GPUOverheating'))}&g0.tab=1`,
    );
    await until('Alertmanager forwarding the firing alert', 20_000, async () =>
      forwarded.received.some((r) => (r.payload as unknown as AmWebhook).status === 'firing'),
    );

    now = BASE; // cool again: resolved, sent with endsAt = now
    await evaluator.evaluateAt();
    await until(
      'Alertmanager forwarding the resolution',
      20_000,
      async () => forwarded.received.some((r) => (r.payload as unknown as AmWebhook).status === 'resolved'),
      () => alertmanager!.output(),
    );
    const bodies = forwarded.received.map((r) => r.payload as unknown as AmWebhook);
    expect(bodies.map((b) => b.status)).toEqual(['firing', 'resolved']);
    const resolved = bodies[1]!.alerts[0]!;
    expect(resolved).toMatchObject({ status: 'resolved', labels: { alertname: 'GPUOverheating', gpu: '0' } });
    expect(Date.parse(resolved.endsAt)).toBe(BASE);
    // Resolved alerts are no longer listed as active.
    expect(await alertmanager!.alerts('?active=true&silenced=false&inhibited=false')).toEqual([]);
    // Nothing else fired on the healthy GPUs.
    expect(new Set(bodies.flatMap((b) => b.alerts.map((a) => a.labels.alertname)))).toEqual(
      new Set(['GPUOverheating']),
    );
  }, 120_000);
});
