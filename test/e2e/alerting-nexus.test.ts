/**
 * Alerting in nexus mode with real processes: two collectors on etcd and PostgreSQL, the fenced
 * maintenance leader evaluates a rule (`for: 15s`, 1-second group interval) on samples written with
 * current timestamps, and a webhook receiver in the test counts notifications. The leader is
 * SIGKILLed while the alert is pending (mid-`for`): the other collector takes over, loads the pending
 * state from etcd (same activeAt) and fires once `for` has passed since then. The killed collector
 * is restarted, and the evaluating collector is then SIGKILLed too while the alert fires: the
 * restarted one takes over and sends the resolution. The receiver gets exactly one `firing` and one
 * `resolved` notification.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdCoordination, type EtcdCoordination } from '../../src/adapters/etcd/coordination.js';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import type { StoredAlert } from '../../src/alerting/state-store.js';
import { electionKey } from '../../src/coordination/election.js';
import type { Sample } from '../../src/domain/types.js';
import { startWebhookReceiver, type WebhookReceiver } from '../alerting/webhook-receiver.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import { killAll, spawnCli, type CliProcess } from '../support/cli-process.js';
import { until } from '../support/until.js';

const CLUSTER = 'alerting';
const S = 1000;
let etcd: EtcdHandle;
let postgres: PostgresHarness;
let coordination: EtcdCoordination;
let receiver: WebhookReceiver;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nexus-alerting-nexus-'));
  [etcd, postgres] = await Promise.all([startEtcd(), startPostgres()]);
  coordination = createEtcdCoordination({ endpoints: etcd.endpointList });
  receiver = await startWebhookReceiver('nexus-secret');
  const rules = join(dir, 'hot.rules.yml');
  writeFileSync(
    rules,
    [
      'groups:',
      '  - name: hot',
      '    interval: 1s',
      '    rules:',
      '      - alert: HotGPU',
      '        expr: DCGM_FI_DEV_GPU_TEMP > 85',
      '        for: 15s',
      "        annotations: { summary: 'GPU {{ $labels.gpu }} at {{ $value }} C' }",
      '',
    ].join('\n'),
  );
  env = {
    ETCD_ENDPOINTS: etcd.endpointList,
    DATABASE_URL: await postgres.createDatabase('alerting'),
    CLUSTER_ID: CLUSTER,
    LOG_LEVEL: 'info',
    POLL_INTERVAL: '200ms',
    ELECTION_TTL: '2s',
    ALERT_RULES_FILES: rules,
    ALERT_BUILTIN_RULES: 'false',
    WEBHOOK_URLS: receiver.url,
    WEBHOOK_SECRET: 'nexus-secret',
  };
}, 120_000);

afterAll(async () => {
  killAll();
  await coordination?.close();
  await receiver?.close();
  await Promise.all([etcd?.stop(), postgres?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function leader(): Promise<string | undefined> {
  return (await coordination.get(electionKey(`collector-maintenance-${CLUSTER}`)))?.value;
}

async function alertState(): Promise<StoredAlert | undefined> {
  const { kvs } = await coordination.range(`/telemetry/alerts/${CLUSTER}/active/`);
  return kvs.map((kv) => JSON.parse(kv.value) as StoredAlert).find((a) => a.labels.alertname === 'HotGPU');
}

/** One GPU's temperature, one sample a second from `from` for `seconds`: hot in [hotFrom, hotTo). */
function temperatures(from: number, seconds: number, hotFrom: number, hotTo: number): Sample[] {
  const out: Sample[] = [];
  for (let i = 0; i < seconds; i++) {
    const t = from + i * S;
    out.push({
      clusterId: CLUSTER,
      hostname: 'dgx-01',
      gpuId: '0',
      uuid: 'GPU-0000',
      device: 'nvidia0',
      modelName: 'NVIDIA H100 80GB HBM3',
      metric: 'DCGM_FI_DEV_GPU_TEMP',
      container: '',
      pod: '',
      namespace: '',
      labels: {},
      timestampMs: t,
      value: t >= hotFrom && t < hotTo ? 95 : 60,
    });
  }
  return out;
}

describe('alerting across leader failover (nexus mode, real processes)', () => {
  it('one firing and one resolved webhook across a SIGKILL mid-`for` and a restart of the evaluator', async () => {
    const processes = new Map<string, CliProcess>();
    const collector = (id: string): CliProcess => {
      const p = spawnCli(['collector'], { ...env, COLLECTOR_ID: id });
      processes.set(id, p);
      return p;
    };
    collector('c-a');
    collector('c-b');
    await until('a maintenance leader', 60_000, async () => (await leader()) !== undefined);

    // Samples with current times: cool, hot from +3 s to +32 s, cool again, up to +100 s. The alert
    // fires about +19 s (activeAt + 15 s) and the evaluator is killed once that is recorded; the hot
    // span ends late enough that the restarted collector leads while the alert still fires, so it is
    // the one that sends the resolution (the log line at the end gives the times of a run).
    const store = await createPostgresSampleStore({ connectionString: env.DATABASE_URL! });
    await store.migrate();
    const w = Math.floor(Date.now() / S) * S;
    const hotFrom = w + 3 * S;
    const hotTo = w + 32 * S;
    await store.writeBatch({
      id: 'temps',
      source: 'test',
      samples: temperatures(w - 10 * S, 110, hotFrom, hotTo),
      deadLetters: [],
    });
    await store.close();

    // Pending: SIGKILL the leader mid-`for`.
    await until('HotGPU pending', 30_000, async () => (await alertState())?.state === 'pending');
    const pending = (await alertState())!;
    expect(pending.activeAt).toBeGreaterThanOrEqual(hotFrom);
    const first = (await leader())!;
    processes.get(first)!.kill('SIGKILL');
    await processes.get(first)!.exited;
    const second = first === 'c-a' ? 'c-b' : 'c-a';
    await until('the other collector leading', 30_000, async () => (await leader()) === second);
    expect((await alertState())?.state).toBe('pending'); // still mid-`for` at the takeover
    collector(first); // restarted under the same id: a follower now

    // The new leader fires from the persisted activeAt.
    await until('HotGPU firing', 40_000, async () => (await alertState())?.state === 'firing');
    const firing = (await alertState())!;
    expect(firing.activeAt).toBe(pending.activeAt);
    expect(firing.firedAt! - firing.activeAt).toBeGreaterThanOrEqual(15 * S);
    await until('the firing webhook', 20_000, async () => receiver.received.length >= 1);
    // Killed before it records the delivery, a leader's successor sends it again (at least once,
    // the idempotency key then lets a receiver drop it): this test kills after the record.
    await until('the firing webhook recorded', 20_000, async () =>
      Boolean((await alertState())?.sent.includes(`webhook:firing:${receiver.url}`)),
    );

    // Restart of the evaluating process: SIGKILL it; the restarted first collector takes over.
    const secondKilledAt = Date.now();
    processes.get(second)!.kill('SIGKILL');
    await processes.get(second)!.exited;
    await until('the restarted collector leading', 30_000, async () => (await leader()) === first);
    const restartedLeadsAt = Date.now();
    collector(second);

    await until('the resolved webhook', 60_000, async () => receiver.received.length >= 2);
    await until('the alert state removed', 20_000, async () => (await alertState()) === undefined);
    // Two more evaluation rounds' worth of time: nothing else arrives.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const got = receiver.received.map((r) => [r.payload.status, r.payload.alert.startsAt, r.signed]);
    const startsAt = new Date(firing.firedAt!).toISOString();
    expect(got).toEqual([
      ['firing', startsAt, true],
      ['resolved', startsAt, true],
    ]);
    const resolvedAt = Date.parse(receiver.received[1]!.payload.alert.endsAt!);
    const at = (t: number): string => `+${((t - w) / S).toFixed(1)} s`;
    console.log(
      `alerting failover: active ${at(pending.activeAt)}, fired ${at(firing.firedAt!)}, evaluator killed ` +
        `${at(secondKilledAt)}, restarted collector leading ${at(restartedLeadsAt)}, hot until ` +
        `${at(hotTo)}, resolved ${at(resolvedAt)}`,
    );
    expect(resolvedAt).toBeGreaterThanOrEqual(hotTo);
    expect(receiver.received[0]!.payload.alert.labels).toMatchObject({
      alertname: 'HotGPU',
      Hostname: 'dgx-01',
      gpu: '0',
      cluster: CLUSTER,
    });
    for (const p of processes.values()) p.kill('SIGTERM');
    await Promise.all([...processes.values()].map((p) => p.exited));
  }, 240_000);
});
