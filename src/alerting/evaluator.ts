/**
 * Evaluates alerting rules with Prometheus' semantics (pending -> firing after `for`,
 * `keep_firing_for`, resolution) at the time of an injectable clock, persists every state change in
 * an {@link AlertStateStore} before notifying, and notifies Alertmanager (resent every
 * `resendDelayMs` while firing, once resolved) and webhooks (one `firing` and one `resolved` per
 * alert instance, each recorded as sent once it succeeded). One process evaluates: with `isLeader`
 * it evaluates only while leading and reloads the state whenever its term changes.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { hasCode } from '../errors.js';
import { instantQuery } from '../promql/engine.js';
import type { Queryable } from '../promql/types.js';
import type { Logger } from '../util/logger.js';
import type { AlertmanagerAlert, Notifier, WebhookPayload } from './notify.js';
import type { AlertingRuleSpec, RuleGroupSpec } from './rules-file.js';
import type { AlertStateStore, GroupStatus, RulesSnapshot, RuleStatus, StoredAlert } from './state-store.js';
import { expandTemplate } from './template.js';

/** Options of an {@link AlertEvaluator}. */
export interface AlertEvaluatorOptions {
  queryable: Queryable;
  store: AlertStateStore;
  notifier: Notifier;
  clusterId: string;
  logger: Logger;
  /** Interval of groups without their own (ms). */
  defaultIntervalMs: number;
  /** Time between two sends of a firing alert to Alertmanager (ms; Prometheus' default 1 m). */
  resendDelayMs?: number;
  /** Base of generatorURL (`{externalUrl}/graph?g0.expr=...`). */
  externalUrl?: string;
  /** Evaluation time (ms since the epoch); default Date.now. */
  clock?: () => number;
  /** Evaluate only while this says so (nexus mode: the maintenance leader). */
  isLeader?: () => boolean;
  /** The current leader term; a change reloads the state from the store. */
  term?: () => number | undefined;
}

interface RuleRuntime {
  key: string;
  group: RuleGroupSpec;
  spec: AlertingRuleSpec;
  health: RuleStatus['health'];
  lastError: string;
  lastEvaluation: number;
  evaluationTime: number;
}

/**
 * A rule's identity in the stored state: file name (not its directory: collectors may mount the files
 * at different paths, and a new leader must recognise the alerts of the old one), group, alert name.
 */
const ruleKeyOf = (group: RuleGroupSpec, name: string): string =>
  `${basename(group.file)}#${group.name}#${name}`;

/** Hash of the rule key and the label set. */
export function alertFingerprint(ruleKey: string, labels: Record<string, string>): string {
  const hash = createHash('sha256').update(ruleKey);
  for (const name of Object.keys(labels).sort()) hash.update(`\u0000${name}\u0000${labels[name]}`);
  return hash.digest('hex').slice(0, 16);
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Stable JSON of what persisting cares about (the value alone changing is not written). */
const persistedForm = (a: StoredAlert): string => JSON.stringify({ ...a, value: 0, annotations: {} });

/** The rules evaluator; see the module comment. */
export class AlertEvaluator {
  private rules: RuleRuntime[] = [];
  private groups: RuleGroupSpec[] = [];
  private active = new Map<string, StoredAlert>();
  private loadedTerm: number | undefined | null = null;
  private chain: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private readonly log: Logger;
  private readonly clock: () => number;
  private reloadError: RulesSnapshot['reloadError'];
  private lastSnapshot = '';

  constructor(private readonly options: AlertEvaluatorOptions) {
    this.log = options.logger.child({ component: 'alerting' });
    this.clock = options.clock ?? Date.now;
  }

  /** Install a new rule set (state of alerts whose rule stays is kept; others resolve). */
  setRules(groups: readonly RuleGroupSpec[]): void {
    const previous = new Map(this.rules.map((r) => [r.key, r]));
    this.groups = [...groups];
    this.rules = [];
    for (const group of groups) {
      for (const spec of group.rules) {
        if (spec.kind !== 'alert') continue;
        const key = ruleKeyOf(group, spec.name);
        const old = previous.get(key);
        this.rules.push({
          key,
          group,
          spec,
          health: old?.health ?? 'unknown',
          lastError: old?.lastError ?? '',
          lastEvaluation: old?.lastEvaluation ?? 0,
          evaluationTime: old?.evaluationTime ?? 0,
        });
      }
    }
    this.reloadError = undefined;
    if (this.timers.length > 0) this.schedule();
  }

  /** Record a refused reload (shown with the rules; the rules in force stay). */
  setReloadError(error: NonNullable<RulesSnapshot['reloadError']>): void {
    this.reloadError = error;
  }

  /** The rule groups in force. */
  get ruleGroups(): readonly RuleGroupSpec[] {
    return this.groups;
  }

  /** Alerts this process holds (pending, firing, and resolved ones not yet fully notified). */
  alerts(): StoredAlert[] {
    return [...this.active.values()].map((a) => ({ ...a, sent: [...a.sent] }));
  }

  /** Evaluate every group at `atMs` (default: the clock), then persist and notify. Serialised. */
  evaluateAt(atMs?: number): Promise<void> {
    return this.enqueue(() => this.round(this.groups, atMs ?? this.clock()));
  }

  /**
   * Load the stored state and publish the rules now, rather than in the first round (embedded mode:
   * the API reads the restored mirror at once after a restart). Skipped when not leading.
   */
  restore(): Promise<void> {
    return this.enqueue(async () => {
      if (this.options.isLeader !== undefined && !this.options.isLeader()) return;
      const term = this.options.term?.();
      this.active = new Map((await this.options.store.load()).map((a) => [a.id, a]));
      this.loadedTerm = term;
      await this.publishRules();
    });
  }

  /** Evaluate each group on its interval until {@link stop}. */
  start(): void {
    this.schedule();
  }

  /** Stop the timers and wait for a running round. */
  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.chain;
  }

  private schedule(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = this.groups.map((group) => {
      const timer = setInterval(
        () => void this.enqueue(() => this.round([group], this.clock())),
        group.intervalMs ?? this.options.defaultIntervalMs,
      );
      timer.unref();
      return timer;
    });
    // A first round at once, so a restart does not wait a whole interval.
    void this.enqueue(() => this.round(this.groups, this.clock()));
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.chain.then(task).catch((error: unknown) => {
      this.log.warn({ err: error }, 'alert evaluation round failed');
    });
    this.chain = run;
    return run;
  }

  private async round(groups: readonly RuleGroupSpec[], ts: number): Promise<void> {
    if (this.options.isLeader !== undefined && !this.options.isLeader()) {
      this.loadedTerm = null;
      return;
    }
    const term = this.options.term?.();
    if (this.loadedTerm !== term) {
      this.active = new Map((await this.options.store.load()).map((a) => [a.id, a]));
      this.loadedTerm = term;
      this.log.info({ alerts: this.active.size, term }, 'alert state loaded');
    }
    const before = new Map([...this.active].map(([id, a]) => [id, persistedForm(a)]));
    const keys = new Set(this.rules.map((r) => r.key));
    // Alerts of rules that no longer exist resolve.
    for (const a of this.active.values()) {
      if (a.state !== 'inactive' && !keys.has(a.rule)) this.resolve(a, ts);
    }
    const names = new Set(groups.map((g) => `${g.file}#${g.name}`));
    for (const rule of this.rules) {
      if (names.has(`${rule.group.file}#${rule.group.name}`)) await this.evalRule(rule, ts);
    }
    try {
      await this.persist(before);
      await this.notify(ts);
      await this.publishRules();
    } catch (error) {
      if (hasCode(error, 'LEASE_LOST')) {
        this.log.warn({ term }, 'alert state write rejected: no longer leader');
        this.loadedTerm = null;
        return;
      }
      throw error;
    }
  }

  private resolve(a: StoredAlert, ts: number): void {
    if (a.state === 'pending') {
      this.active.delete(a.id);
      return;
    }
    a.state = 'inactive';
    a.resolvedAt = ts;
    a.keepFiringSince = undefined;
  }

  private async evalRule(rule: RuleRuntime, ts: number): Promise<void> {
    const { spec } = rule;
    const started = performance.now();
    rule.lastEvaluation = ts;
    let samples: { metric: Record<string, string>; v: number }[];
    try {
      const result = await instantQuery(spec.expr, ts, this.options.queryable);
      if (result.resultType === 'vector')
        samples = result.result.map((s) => ({ metric: s.metric, v: s.point.v }));
      else if (result.resultType === 'scalar') samples = [{ metric: {}, v: result.result.v }];
      else throw new Error(`rule result is not a vector or scalar`);
    } catch (error) {
      rule.health = 'err';
      rule.lastError = (error as Error).message;
      rule.evaluationTime = (performance.now() - started) / 1000;
      this.log.warn({ rule: spec.name, err: rule.lastError }, 'alert rule evaluation failed');
      return;
    }
    const seen = new Set<string>();
    const found: {
      fingerprint: string;
      labels: Record<string, string>;
      annotations: Record<string, string>;
      v: number;
    }[] = [];
    for (const s of samples) {
      const { __name__: _drop, ...sampleLabels } = s.metric;
      const data = { labels: sampleLabels, value: s.v, externalLabels: { cluster: this.options.clusterId } };
      const labels: Record<string, string> = { ...sampleLabels };
      for (const [k, t] of Object.entries(spec.labels)) labels[k] = expandTemplate(t, data);
      labels['alertname'] = spec.name;
      const annotations: Record<string, string> = {};
      for (const [k, t] of Object.entries(spec.annotations)) annotations[k] = expandTemplate(t, data);
      const fingerprint = alertFingerprint(rule.key, labels);
      if (seen.has(fingerprint)) {
        rule.health = 'err';
        rule.lastError = 'vector contains metrics with the same labelset after applying alert labels';
        rule.evaluationTime = (performance.now() - started) / 1000;
        return;
      }
      seen.add(fingerprint);
      found.push({ fingerprint, labels, annotations, v: s.v });
    }
    if (rule.group.limit > 0 && found.length > rule.group.limit) {
      for (const a of [...this.active.values()])
        if (a.rule === rule.key && a.state !== 'inactive') this.resolve(a, ts);
      rule.health = 'err';
      rule.lastError = `exceeded limit of ${rule.group.limit} with ${found.length} alerts`;
      rule.evaluationTime = (performance.now() - started) / 1000;
      return;
    }
    for (const f of found) {
      let a = this.active.get(f.fingerprint);
      if (a !== undefined && a.state === 'inactive') {
        // A new instance of a resolved alert: keep the old one under its own id until it is notified.
        this.active.delete(a.id);
        a.id = `${a.fingerprint}@${a.firedAt ?? a.activeAt}`;
        this.active.set(a.id, a);
        a = undefined;
      }
      if (a === undefined) {
        a = {
          id: f.fingerprint,
          fingerprint: f.fingerprint,
          rule: rule.key,
          labels: f.labels,
          annotations: f.annotations,
          state: 'pending',
          value: f.v,
          activeAt: ts,
          sent: [],
        };
        this.active.set(a.id, a);
      }
      a.value = f.v;
      a.annotations = f.annotations;
      a.keepFiringSince = undefined;
      if (a.state === 'pending' && ts - a.activeAt >= spec.forMs) {
        a.state = 'firing';
        a.firedAt = ts;
      }
    }
    for (const a of [...this.active.values()]) {
      if (a.rule !== rule.key || a.state === 'inactive' || seen.has(a.id)) continue;
      if (a.state === 'firing' && spec.keepFiringForMs > 0) {
        a.keepFiringSince ??= ts;
        if (ts - a.keepFiringSince < spec.keepFiringForMs) continue;
      }
      this.resolve(a, ts);
    }
    rule.health = 'ok';
    rule.lastError = '';
    rule.evaluationTime = (performance.now() - started) / 1000;
  }

  /** Write every alert whose persisted form changed, and delete the ones gone. */
  private async persist(before: Map<string, string>): Promise<void> {
    const puts: StoredAlert[] = [];
    for (const [id, a] of this.active) if (before.get(id) !== persistedForm(a)) puts.push(a);
    const deletes = [...before.keys()].filter((id) => !this.active.has(id));
    if (puts.length > 0 || deletes.length > 0) await this.options.store.apply(puts, deletes);
  }

  private generatorUrl(rule: string): string {
    const spec = this.rules.find((r) => r.key === rule)?.spec;
    const base = (this.options.externalUrl ?? '').replace(/\/+$/, '');
    return spec === undefined ? base : `${base}/graph?g0.expr=${encodeURIComponent(spec.expr)}&g0.tab=1`;
  }

  private intervalOf(rule: string): number {
    return this.rules.find((r) => r.key === rule)?.group.intervalMs ?? this.options.defaultIntervalMs;
  }

  /** Send what is due, record each success at once (persisted before the next send). */
  private async notify(ts: number): Promise<void> {
    const { notifier } = this.options;
    const resend = this.options.resendDelayMs ?? 60_000;
    const before = new Map([...this.active].map(([id, a]) => [id, persistedForm(a)]));
    if (notifier.hasAlertmanager) {
      const due = [...this.active.values()].filter((a) =>
        a.state === 'firing'
          ? a.lastSentAt === undefined || ts - a.lastSentAt >= resend
          : a.state === 'inactive' && a.firedAt !== undefined && !a.sent.includes('am:resolved'),
      );
      const batch: AlertmanagerAlert[] = due.map((a) => ({
        labels: a.labels,
        annotations: a.annotations,
        startsAt: iso(a.firedAt!),
        endsAt: iso(a.resolvedAt ?? ts + 4 * Math.max(resend, this.intervalOf(a.rule))),
        generatorURL: this.generatorUrl(a.rule),
      }));
      if (due.length > 0 && (await notifier.sendAlertmanager(batch))) {
        for (const a of due) {
          a.lastSentAt = ts;
          if (a.state === 'inactive') a.sent.push('am:resolved');
        }
        await this.persist(before);
        for (const [id, a] of this.active) before.set(id, persistedForm(a));
      }
    }
    for (const url of notifier.webhookUrls) {
      for (const a of [...this.active.values()]) {
        if (a.firedAt === undefined || a.state === 'pending') continue;
        const steps: ('firing' | 'resolved')[] = a.state === 'inactive' ? ['firing', 'resolved'] : ['firing'];
        for (const status of steps) {
          const mark = `webhook:${status}:${url}`;
          if (a.sent.includes(mark)) continue;
          const payload: WebhookPayload = {
            version: '1',
            status,
            idempotencyKey: `${a.fingerprint}:${iso(a.firedAt)}:${status}`,
            cluster: this.options.clusterId,
            alert: {
              fingerprint: a.fingerprint,
              labels: a.labels,
              annotations: a.annotations,
              startsAt: iso(a.firedAt),
              endsAt: a.resolvedAt === undefined ? null : iso(a.resolvedAt),
              value: a.value,
              generatorURL: this.generatorUrl(a.rule),
            },
          };
          if (!(await notifier.sendWebhook(url, payload))) break;
          a.sent.push(mark);
          await this.options.store.apply([a], []);
          before.set(a.id, persistedForm(a));
        }
      }
    }
    // Resolved instances whose notifications are all done leave the store.
    const done: string[] = [];
    for (const a of [...this.active.values()]) {
      if (a.state !== 'inactive') continue;
      const amDone = !notifier.hasAlertmanager || a.sent.includes('am:resolved') || a.firedAt === undefined;
      const hooksDone = notifier.webhookUrls.every((u) => a.sent.includes(`webhook:resolved:${u}`));
      if (amDone && (hooksDone || a.firedAt === undefined)) {
        this.active.delete(a.id);
        done.push(a.id);
      }
    }
    await this.persist(before);
  }

  private snapshot(): RulesSnapshot {
    const groups: GroupStatus[] = this.groups.map((group) => {
      const rules = this.rules.filter((r) => r.group === group);
      const last = Math.max(0, ...rules.map((r) => r.lastEvaluation));
      return {
        name: group.name,
        file: group.file,
        interval: (group.intervalMs ?? this.options.defaultIntervalMs) / 1000,
        limit: group.limit,
        lastEvaluation: iso(last),
        evaluationTime: rules.reduce((s, r) => s + r.evaluationTime, 0),
        rules: rules.map((r) => ({
          key: r.key,
          type: 'alerting' as const,
          name: r.spec.name,
          query: r.spec.expr,
          duration: r.spec.forMs / 1000,
          keepFiringFor: r.spec.keepFiringForMs / 1000,
          labels: r.spec.labels,
          annotations: r.spec.annotations,
          health: r.health,
          lastError: r.lastError,
          lastEvaluation: iso(r.lastEvaluation),
          evaluationTime: r.evaluationTime,
        })),
      };
    });
    return { groups, ...(this.reloadError ? { reloadError: this.reloadError } : {}) };
  }

  /** Publish the rules' status when it changed (not for times alone, at most once a minute then). */
  private lastPublished = 0;
  private async publishRules(): Promise<void> {
    const snapshot = this.snapshot();
    const shape = JSON.stringify(snapshot, (k, v: unknown) =>
      k === 'lastEvaluation' || k === 'evaluationTime' ? undefined : v,
    );
    const now = Date.now();
    if (shape === this.lastSnapshot && now - this.lastPublished < 60_000) return;
    await this.options.store.publishRules(snapshot);
    this.lastSnapshot = shape;
    this.lastPublished = now;
  }
}
