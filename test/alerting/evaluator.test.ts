/**
 * The evaluator's state machine on crafted series, at the times of an injected clock: pending, firing
 * after `for`, `keep_firing_for`, resolution; the state persisted in the coordination store so a new
 * evaluator (a restart) continues mid-`for`; one signed `firing` and one `resolved` webhook per
 * alert instance, retried while the receiver fails.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { AlertEvaluator } from '../../src/alerting/evaluator.js';
import { Election } from '../../src/coordination/election.js';
import { Notifier } from '../../src/alerting/notify.js';
import { parseRuleFile } from '../../src/alerting/rules-file.js';
import { CoordinationAlertStore, type StoredAlert } from '../../src/alerting/state-store.js';
import { compileMatcher } from '../../src/promql/store-queryable.js';
import type { Queryable, SeriesData } from '../../src/promql/types.js';
import { createLogger } from '../../src/util/logger.js';
import { startWebhookReceiver, type WebhookReceiver } from './webhook-receiver.js';

const logger = createLogger('silent');
const T0 = Date.UTC(2025, 6, 18, 20, 0, 0);
const S = 1000;

/** Series in memory: `values(t)` per 10 s scrape from T0 over 20 minutes (undefined: no sample). */
function series(labels: Record<string, string>, value: (t: number) => number | undefined): SeriesData {
  const timestamps: number[] = [];
  const values: number[] = [];
  for (let t = T0; t <= T0 + 20 * 60 * S; t += 10 * S) {
    const v = value(t - T0);
    if (v === undefined) continue;
    timestamps.push(t);
    values.push(v);
  }
  return { labels, timestamps, values };
}

function memoryQueryable(data: SeriesData[]): Queryable {
  return {
    select: async (selection) =>
      data
        .filter((s) => selection.matchers.every((m) => compileMatcher(m)(s.labels[m.name] ?? '')))
        .map((s) => {
          const idx = s.timestamps.flatMap((t, i) =>
            t >= selection.startMs && t <= selection.endMs ? [i] : [],
          );
          return {
            labels: s.labels,
            timestamps: idx.map((i) => s.timestamps[i]!),
            values: idx.map((i) => s.values[i]!),
          };
        })
        .filter((s) => s.timestamps.length > 0),
  };
}

const gpu = (n: string) => ({ __name__: 'DCGM_FI_DEV_GPU_TEMP', Hostname: 'h1', gpu: n, UUID: `GPU-${n}` });
/** GPU 0 hot (95 C) from minute 2 to minute 8; GPU 1 always 60 C. */
const DATA = [series(gpu('0'), (t) => (t >= 120 * S && t < 480 * S ? 95 : 70)), series(gpu('1'), () => 60)];

const RULES = parseRuleFile(
  [
    'groups:',
    '  - name: temps',
    '    interval: 30s',
    '    rules:',
    '      - alert: Hot',
    '        expr: DCGM_FI_DEV_GPU_TEMP > 85',
    '        for: 2m',
    '        labels: { severity: warning }',
    "        annotations: { summary: 'GPU {{ $labels.gpu }} at {{ $value }} C' }",
    '      - alert: HotSticky',
    '        expr: DCGM_FI_DEV_GPU_TEMP > 85',
    '        keep_firing_for: 3m',
    '',
  ].join('\n'),
  'temps.yml',
);

let receiver: WebhookReceiver | undefined;
afterEach(async () => {
  await receiver?.close();
  receiver = undefined;
});

function evaluator(coordination: EmbeddedCoordination, hook: WebhookReceiver): AlertEvaluator {
  const ev = new AlertEvaluator({
    queryable: memoryQueryable(DATA),
    store: new CoordinationAlertStore(coordination, 'c1'),
    notifier: new Notifier({
      alertmanagerUrls: [],
      webhookUrls: [hook.url],
      webhookSecret: 's3cret',
      logger,
      backoffMs: 5,
    }),
    clusterId: 'c1',
    logger,
    defaultIntervalMs: 60_000,
  });
  ev.setRules(RULES);
  return ev;
}

const states = (ev: AlertEvaluator, name: string): string[] =>
  ev
    .alerts()
    .filter((a) => a.labels.alertname === name)
    .map((a) => `${a.labels.gpu}:${a.state}`);

async function stored(coordination: EmbeddedCoordination): Promise<StoredAlert[]> {
  const { kvs } = await coordination.range('/telemetry/alerts/c1/active/');
  return kvs.map((kv) => JSON.parse(kv.value) as StoredAlert);
}

describe('alert evaluator', () => {
  it('goes pending, fires after `for`, resolves; one signed firing and one resolved webhook', async () => {
    receiver = await startWebhookReceiver('s3cret');
    const coordination = new EmbeddedCoordination();
    const ev = evaluator(coordination, receiver);
    const timeline: string[] = [];
    for (let t = 0; t <= 15 * 60; t += 30) {
      await ev.evaluateAt(T0 + t * S);
      timeline.push(`${t}:${states(ev, 'Hot').join(',')}`);
    }
    // Hot from 120 s: pending at 120 s, firing at 240 s (2 m later), resolved at 480 s.
    expect(timeline.slice(3, 18)).toEqual([
      '90:',
      '120:0:pending',
      '150:0:pending',
      '180:0:pending',
      '210:0:pending',
      '240:0:firing',
      '270:0:firing',
      '300:0:firing',
      '330:0:firing',
      '360:0:firing',
      '390:0:firing',
      '420:0:firing',
      '450:0:firing',
      '480:',
      '510:',
    ]);
    const hot = receiver.received.filter((r) => r.payload.alert.labels.alertname === 'Hot');
    expect(hot.map((r) => r.payload.status)).toEqual(['firing', 'resolved']);
    expect(hot.every((r) => r.signed === true)).toBe(true);
    expect(hot[0]!.payload.alert).toMatchObject({
      labels: { alertname: 'Hot', Hostname: 'h1', gpu: '0', UUID: 'GPU-0', severity: 'warning' },
      annotations: { summary: 'GPU 0 at 95 C' },
      startsAt: new Date(T0 + 240 * S).toISOString(),
      endsAt: null,
      value: 95,
    });
    expect(hot[1]!.payload.alert.endsAt).toBe(new Date(T0 + 480 * S).toISOString());
    expect(hot[0]!.idempotencyKey).toBe(hot[0]!.payload.idempotencyKey);
    // keep_firing_for 3m: fires at once at 120 s, keeps firing until 480 + 180 s.
    const sticky = receiver.received.filter((r) => r.payload.alert.labels.alertname === 'HotSticky');
    expect(sticky.map((r) => [r.payload.status, r.payload.alert.startsAt, r.payload.alert.endsAt])).toEqual([
      ['firing', new Date(T0 + 120 * S).toISOString(), null],
      ['resolved', new Date(T0 + 120 * S).toISOString(), new Date(T0 + 660 * S).toISOString()],
    ]);
    // Everything notified: nothing left in the store.
    expect(await stored(coordination)).toEqual([]);
    await ev.stop();
  });

  it('a new evaluator on the same store continues mid-`for` and notifies once', async () => {
    receiver = await startWebhookReceiver('s3cret');
    const coordination = new EmbeddedCoordination();
    const first = evaluator(coordination, receiver);
    for (let t = 0; t <= 180; t += 30) await first.evaluateAt(T0 + t * S);
    expect(states(first, 'Hot')).toEqual(['0:pending']);
    const persisted = (await stored(coordination)).find((a) => a.labels.alertname === 'Hot')!;
    expect(persisted).toMatchObject({ state: 'pending', activeAt: T0 + 120 * S });
    await first.stop();
    // "Restart": a fresh evaluator, the next evaluations a minute later.
    const second = evaluator(coordination, receiver);
    await second.evaluateAt(T0 + 240 * S);
    expect(states(second, 'Hot')).toEqual(['0:firing']);
    for (let t = 270; t <= 600; t += 30) await second.evaluateAt(T0 + t * S);
    const hot = receiver.received.filter((r) => r.payload.alert.labels.alertname === 'Hot');
    expect(hot.map((r) => `${r.payload.status}@${r.payload.alert.startsAt}`)).toEqual([
      `firing@${new Date(T0 + 240 * S).toISOString()}`,
      `resolved@${new Date(T0 + 240 * S).toISOString()}`,
    ]);
    await second.stop();
  });

  it('retries a failing webhook with backoff, and sends each notification once it succeeds', async () => {
    receiver = await startWebhookReceiver('s3cret');
    const coordination = new EmbeddedCoordination();
    const ev = evaluator(coordination, receiver);
    for (let t = 0; t <= 210; t += 30) await ev.evaluateAt(T0 + t * S);
    receiver.failNext(6); // the 4 attempts of this round and 2 of the next
    await ev.evaluateAt(T0 + 240 * S);
    expect(receiver.received).toHaveLength(1); // HotSticky's firing, sent earlier
    expect((await stored(coordination)).find((a) => a.labels.alertname === 'Hot')).toMatchObject({
      state: 'firing',
      sent: [],
    });
    await ev.evaluateAt(T0 + 270 * S);
    expect(receiver.failures).toBe(6);
    const hot = receiver.received.filter((r) => r.payload.alert.labels.alertname === 'Hot');
    expect(hot.map((r) => r.payload.status)).toEqual(['firing']);
    expect((await stored(coordination)).find((a) => a.labels.alertname === 'Hot')!.sent).toEqual([
      `webhook:firing:${receiver.url}`,
    ]);
    await ev.stop();
  });

  it('a query error marks the rule unhealthy and keeps its alerts', async () => {
    receiver = await startWebhookReceiver();
    const coordination = new EmbeddedCoordination();
    const ev = evaluator(coordination, receiver);
    ev.setRules(
      parseRuleFile(
        'groups:\n  - name: g\n    rules:\n      - alert: Range\n        expr: DCGM_FI_DEV_GPU_TEMP[5m]\n',
        'r.yml',
      ),
    );
    await ev.evaluateAt(T0 + 60 * S);
    const { kvs } = await coordination.range('/telemetry/alerts/c1/rules');
    const snapshot = JSON.parse(kvs[0]!.value) as {
      groups: { rules: { health: string; lastError: string }[] }[];
    };
    expect(snapshot.groups[0]!.rules[0]).toMatchObject({
      health: 'err',
      lastError: 'rule result is not a vector or scalar',
    });
    await ev.stop();
  });
});

describe('alert evaluator behind a fenced election', () => {
  it('a deposed leader writes nothing and notifies nothing; the new leader fires once', async () => {
    receiver = await startWebhookReceiver('s3cret');
    const coordination = new EmbeddedCoordination();
    const electionA = new Election(coordination, 'alerts-test', { ttlSeconds: 5 });
    const electionB = new Election(coordination, 'alerts-test', { ttlSeconds: 5 });
    await electionA.campaign('a');
    const make = (election: Election, believesLeader: () => boolean): AlertEvaluator => {
      const ev = new AlertEvaluator({
        queryable: memoryQueryable(DATA),
        store: new CoordinationAlertStore(coordination, 'c1', async (ops) => {
          await election.fencedTxn([], ops);
        }),
        notifier: new Notifier({
          alertmanagerUrls: [],
          webhookUrls: [receiver!.url],
          webhookSecret: 's3cret',
          logger,
        }),
        clusterId: 'c1',
        logger,
        defaultIntervalMs: 60_000,
        isLeader: believesLeader,
        term: () => election.leaderRevision,
      });
      ev.setRules(RULES.map((g) => ({ ...g, rules: g.rules.filter((r) => r.name === 'Hot') })));
      return ev;
    };
    // A believes it leads throughout (a paused process that has not noticed).
    const a = make(electionA, () => true);
    for (let t = 0; t <= 180; t += 30) await a.evaluateAt(T0 + t * S);
    expect((await stored(coordination)).map((x) => x.state)).toEqual(['pending']);
    // A's term ends behind its back (its key deleted, as an expired lease does); B is elected.
    await coordination.delete(electionA.key);
    await electionB.campaign('b');
    const b = make(electionB, () => electionB.isLeader);
    await a.evaluateAt(T0 + 240 * S); // A would fire now: its fenced write is refused, nothing sent
    expect(receiver.received).toEqual([]);
    expect((await stored(coordination)).map((x) => x.state)).toEqual(['pending']);
    await b.evaluateAt(T0 + 240 * S); // B loads A's pending state and fires
    for (let t = 270; t <= 600; t += 30) {
      await a.evaluateAt(T0 + t * S);
      await b.evaluateAt(T0 + t * S);
    }
    expect(receiver.received.map((r) => `${r.payload.status}@${r.payload.alert.startsAt}`)).toEqual([
      `firing@${new Date(T0 + 240 * S).toISOString()}`,
      `resolved@${new Date(T0 + 240 * S).toISOString()}`,
    ]);
    await a.stop();
    await b.stop();
    await electionB.close();
    await electionA.close();
  });
});
