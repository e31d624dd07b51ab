/**
 * Alerting from the configuration: loads and watches the rules, builds the notifier and the state
 * store, and runs the evaluator. Embedded `start` evaluates in its own process (state in a file under
 * DATA_DIR, mirrored into the in-process coordination store); in nexus mode the collectors' fenced
 * maintenance leader evaluates (state in etcd, written with the leader's fenced txns).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import type { Election } from '../coordination/election.js';
import { NexusError } from '../errors.js';
import type { Coordination } from '../ports/coordination.js';
import type { SampleStore } from '../ports/sample-store.js';
import { StoreQueryable } from '../promql/store-queryable.js';
import { OutlierWatch } from '../health/outlier-watch.js';
import type { Logger } from '../util/logger.js';
import { AlertEvaluator } from './evaluator.js';
import { Notifier } from './notify.js';
import { parseRulePatterns, watchRules, type RuleWatch } from './rules-loader.js';
import { CoordinationAlertStore, FileMirroredAlertStore, type AlertStateStore } from './state-store.js';

/** Parse a comma-separated URL list; throws CONFIG_INVALID naming the variable. */
export function parseUrlList(text: string, variable: string): string[] {
  const urls: string[] = [];
  for (const item of text.split(',')) {
    const value = item.trim();
    if (value === '') continue;
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      url = new URL('invalid:');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new NexusError(
        'CONFIG_INVALID',
        `invalid configuration: ${variable}: "${value}" is not an http(s) URL`,
        {
          details: { problems: [variable] },
        },
      );
    urls.push(value);
  }
  return urls;
}

/** Options of {@link startAlerting}. */
export interface StartAlertingOptions {
  config: Config;
  logger: Logger;
  store: SampleStore;
  coordination: Coordination;
  /** Nexus mode: evaluate only as this election's leader, writing with its fenced txns. */
  election?: Election;
  /** Embedded mode: keep the state in this file too (undefined: in the coordination store only). */
  stateFile?: string;
  /** Evaluation time (tests); default Date.now. */
  clock?: () => number;
  /** Run the evaluation timers (default true; tests drive `evaluator.evaluateAt`). */
  schedule?: boolean;
}

/** Running alerting. */
export interface Alerting {
  readonly evaluator: AlertEvaluator;
  readonly rules: RuleWatch;
  /** Peer-outlier marks (PEER_OUTLIER health reasons), kept by the same process. */
  readonly outliers: OutlierWatch;
  close(): Promise<void>;
}

/** The state file of embedded mode under DATA_DIR, or undefined with MEMORY. */
export function embeddedStateFile(config: Config): string | undefined {
  return config.MEMORY
    ? undefined
    : join(config.DATA_DIR, 'alerts', `${encodeURIComponent(config.CLUSTER_ID)}.json`);
}

/**
 * Start alerting; see the module comment.
 * @throws NexusError('CONFIG_INVALID') for a bad URL or a rule file refused at the first load
 */
export async function startAlerting(options: StartAlertingOptions): Promise<Alerting> {
  const { config, logger, election } = options;
  const notifier = new Notifier({
    alertmanagerUrls: parseUrlList(config.ALERTMANAGER_URL, 'ALERTMANAGER_URL'),
    webhookUrls: parseUrlList(config.WEBHOOK_URLS, 'WEBHOOK_URLS'),
    webhookSecret: config.WEBHOOK_SECRET,
    logger,
  });
  const coordinationStore = new CoordinationAlertStore(
    options.coordination,
    config.CLUSTER_ID,
    election === undefined
      ? undefined
      : async (ops) => {
          await election.fencedTxn([], ops);
        },
  );
  const stateStore: AlertStateStore =
    options.stateFile === undefined
      ? coordinationStore
      : new FileMirroredAlertStore(options.stateFile, coordinationStore);
  const evaluator = new AlertEvaluator({
    queryable: new StoreQueryable(options.store, { maxSamples: config.PROMQL_MAX_SAMPLES }),
    store: stateStore,
    notifier,
    clusterId: config.CLUSTER_ID,
    logger,
    defaultIntervalMs: config.ALERT_EVAL_INTERVAL,
    resendDelayMs: config.ALERT_RESEND_DELAY,
    externalUrl: config.ALERT_EXTERNAL_URL ?? `http://${hostname()}:${config.PORT}`,
    clock: options.clock,
    ...(election === undefined
      ? {}
      : { isLeader: () => election.isLeader, term: () => election.leaderRevision }),
  });
  const { initial, watch } = await watchRules({
    patterns: parseRulePatterns(config.ALERT_RULES_FILES),
    builtin: config.ALERT_BUILTIN_RULES,
    logger,
    onRules: (loaded) => evaluator.setRules(loaded.groups),
    onError: (problem) => evaluator.setReloadError({ ...problem, at: new Date().toISOString() }),
  });
  evaluator.setRules(initial.groups);
  const recording = initial.groups.flatMap((g) => g.rules.filter((r) => r.kind === 'record'));
  if (recording.length > 0)
    logger.warn({ rules: recording.map((r) => r.name) }, 'recording rules are checked but not evaluated');
  // Embedded: the state file restored (and the API's mirror filled) before start-up completes.
  if (election === undefined) await evaluator.restore();
  const outliers = new OutlierWatch({
    store: options.store,
    coordination: options.coordination,
    clusterId: config.CLUSTER_ID,
    logger,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(election === undefined ? {} : { isLeader: () => election.isLeader }),
  });
  if (options.schedule !== false) {
    evaluator.start();
    outliers.start();
  }
  return {
    evaluator,
    rules: watch,
    outliers,
    async close() {
      watch.close();
      await outliers.stop();
      await evaluator.stop();
    },
  };
}
