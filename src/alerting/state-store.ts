/**
 * Where alert state lives so it survives a restart and a leader failover: one key per alert
 * instance under `/telemetry/alerts/{cluster}/active/{id}` and the rules' status under
 * `/telemetry/alerts/{cluster}/rules` in the coordination store (etcd in nexus mode), written through
 * a writer the caller gives (the leader's fenced txn in nexus mode). The in-process coordination
 * store of `start` forgets everything on exit, so embedded mode mirrors the state into a JSON file
 * under DATA_DIR ({@link FileMirroredAlertStore}), written before the coordination keys.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Coordination, TxnOp } from '../ports/coordination.js';

/** Lifecycle state of one alert instance. */
export type AlertState = 'pending' | 'firing' | 'inactive';

/** One alert instance as persisted. Times are ms since the epoch. */
export interface StoredAlert {
  /** Storage id: the fingerprint, or `{fingerprint}@{firedAt}` for a resolved instance being notified. */
  id: string;
  /** Hash of the rule and the alert's labels. */
  fingerprint: string;
  /** The rule's key: `{file name}#{group}#{alertname}`. */
  rule: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: AlertState;
  /** Value of the expression at the last state change. */
  value: number;
  /** When the expression first held (pending since). */
  activeAt: number;
  /** When it fired (firing since); Alertmanager's startsAt. */
  firedAt?: number;
  /** When it resolved; Alertmanager's endsAt. */
  resolvedAt?: number;
  /** Since when the expression no longer holds while `keep_firing_for` keeps it firing. */
  keepFiringSince?: number;
  /** Last time it was sent to Alertmanager. */
  lastSentAt?: number;
  /** Notifications done for this instance: `am:resolved`, `webhook:firing:{url}`, `webhook:resolved:{url}`. */
  sent: string[];
}

/** Status of the rules as GET /api/v1/rules shows it (written by the evaluating process). */
export interface RulesSnapshot {
  groups: GroupStatus[];
  /** The last reload that was refused (the rules in force are the previous ones). */
  reloadError?: { file?: string; line?: number; column?: number; reason: string; at: string };
}

export interface GroupStatus {
  name: string;
  file: string;
  /** Seconds. */
  interval: number;
  limit: number;
  lastEvaluation: string;
  evaluationTime: number;
  rules: RuleStatus[];
}

export interface RuleStatus {
  key: string;
  type: 'alerting' | 'recording';
  name: string;
  query: string;
  /** `for`, seconds. */
  duration: number;
  /** `keep_firing_for`, seconds. */
  keepFiringFor: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  health: 'ok' | 'err' | 'unknown';
  lastError: string;
  lastEvaluation: string;
  evaluationTime: number;
}

/** Persistence of alert state; writes reject (e.g. LEASE_LOST) when this process may no longer write. */
export interface AlertStateStore {
  load(): Promise<StoredAlert[]>;
  apply(puts: readonly StoredAlert[], deletes: readonly string[]): Promise<void>;
  publishRules(snapshot: RulesSnapshot): Promise<void>;
}

/** Prefix of one cluster's alert keys. */
export const alertsPrefix = (clusterId: string): string =>
  `/telemetry/alerts/${encodeURIComponent(clusterId)}/`;
/** Key of one alert instance. */
export const alertKey = (clusterId: string, id: string): string =>
  `${alertsPrefix(clusterId)}active/${encodeURIComponent(id)}`;
/** Key of the rules' status. */
export const rulesKey = (clusterId: string): string => `${alertsPrefix(clusterId)}rules`;

/** Runs txn ops as one write (a fenced txn for a leader); rejects when refused. */
export type TxnWriter = (ops: TxnOp[]) => Promise<void>;

/** Most ops per txn (etcd's default --max-txn-ops is 128). */
const OPS_PER_TXN = 64;

/** Alert state in the coordination store; see the module comment. */
export class CoordinationAlertStore implements AlertStateStore {
  private readonly write: TxnWriter;

  constructor(
    private readonly coordination: Coordination,
    private readonly clusterId: string,
    write?: TxnWriter,
  ) {
    this.write =
      write ??
      (async (ops) => {
        await coordination.txn([], ops);
      });
  }

  async load(): Promise<StoredAlert[]> {
    const { kvs } = await this.coordination.range(`${alertsPrefix(this.clusterId)}active/`);
    return kvs.map((kv) => JSON.parse(kv.value) as StoredAlert);
  }

  async apply(puts: readonly StoredAlert[], deletes: readonly string[]): Promise<void> {
    const ops: TxnOp[] = [
      ...puts.map((a): TxnOp => ({
        type: 'put',
        key: alertKey(this.clusterId, a.id),
        value: JSON.stringify(a),
      })),
      ...deletes.map((id): TxnOp => ({ type: 'delete', key: alertKey(this.clusterId, id) })),
    ];
    for (let i = 0; i < ops.length; i += OPS_PER_TXN) await this.write(ops.slice(i, i + OPS_PER_TXN));
  }

  async publishRules(snapshot: RulesSnapshot): Promise<void> {
    await this.write([{ type: 'put', key: rulesKey(this.clusterId), value: JSON.stringify(snapshot) }]);
  }
}

/**
 * Embedded mode: the state in a JSON file (replaced atomically by rename) and mirrored into the
 * in-process coordination store, which the API reads. `load` restores the file into the mirror.
 */
export class FileMirroredAlertStore implements AlertStateStore {
  private readonly alerts = new Map<string, StoredAlert>();

  constructor(
    private readonly path: string,
    private readonly mirror: AlertStateStore,
  ) {}

  async load(): Promise<StoredAlert[]> {
    this.alerts.clear();
    try {
      const doc = JSON.parse(await readFile(this.path, 'utf8')) as { alerts?: StoredAlert[] };
      for (const a of doc.alerts ?? []) this.alerts.set(a.id, a);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const stale = (await this.mirror.load()).filter((a) => !this.alerts.has(a.id)).map((a) => a.id);
    await this.mirror.apply([...this.alerts.values()], stale);
    return [...this.alerts.values()];
  }

  async apply(puts: readonly StoredAlert[], deletes: readonly string[]): Promise<void> {
    for (const a of puts) this.alerts.set(a.id, a);
    for (const id of deletes) this.alerts.delete(id);
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ alerts: [...this.alerts.values()] }));
    await rename(tmp, this.path);
    await this.mirror.apply(puts, deletes);
  }

  publishRules(snapshot: RulesSnapshot): Promise<void> {
    return this.mirror.publishRules(snapshot);
  }
}
