/**
 * Maintenance that exactly one collector does at a time: the elected leader compacts the coordination
 * store's history so etcd stays far below its quota. Every leader action is fenced: it first writes a
 * marker in a txn guarded on the leader key's revision, and acts only if that txn succeeded, so a
 * leader that lost its lease (GC pause, SIGSTOP) cannot act.
 */
import { Election } from '../coordination/election.js';
import { hasCode } from '../errors.js';
import type { Coordination } from '../ports/coordination.js';
import type { Logger } from '../util/logger.js';

export interface MaintenanceOptions {
  coordination: Coordination;
  clusterId: string;
  candidateId: string;
  logger: Logger;
  /** How often the leader runs its duties (default 30 s). */
  intervalMs?: number;
  /** Revisions of history kept behind the current one (default 10,000). */
  keepRevisions?: number;
  /** Election lease TTL (default 10 s). */
  ttlSeconds?: number;
}

/** Outcome of one maintenance pass, for logs and tests. */
export type MaintenanceOutcome =
  { kind: 'compacted'; revision: number } | { kind: 'nothing-to-do' } | { kind: 'rejected' };

export const maintenanceMarkerKey = (clusterId: string): string =>
  `/telemetry/maintenance/${encodeURIComponent(clusterId)}/compaction`;

export class Maintenance {
  readonly election: Election;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(private readonly options: MaintenanceOptions) {
    this.election = new Election(options.coordination, `collector-maintenance-${options.clusterId}`, {
      ttlSeconds: options.ttlSeconds ?? 10,
    });
    this.log = options.logger.child({ component: 'maintenance' });
  }

  /** Campaign in the background; once leader, run duties every interval; campaign again after a lost term. */
  start(): void {
    const campaign = (): void => {
      this.election.campaign(this.options.candidateId, { signal: this.abort.signal }).then(
        () => {
          this.log.info({ revision: this.election.leaderRevision }, 'leading collector maintenance');
          this.timer = setInterval(
            () => void this.runOnce().catch(() => undefined),
            this.options.intervalMs ?? 30_000,
          );
          this.timer.unref();
        },
        (error: unknown) => {
          if (!this.abort.signal.aborted) this.log.warn({ err: error }, 'campaign failed');
        },
      );
    };
    this.election.onLost(() => {
      clearInterval(this.timer);
      this.log.warn('lost maintenance leadership');
      if (!this.abort.signal.aborted) setTimeout(campaign, 1000).unref();
    });
    campaign();
  }

  /** One fenced pass: compact history older than `keepRevisions`. */
  async runOnce(): Promise<MaintenanceOutcome> {
    const { coordination, clusterId, candidateId } = this.options;
    const target = (await coordination.revision()) - (this.options.keepRevisions ?? 10_000);
    if (target <= 1) return { kind: 'nothing-to-do' };
    try {
      const fenced = await this.election.fencedTxn(
        [],
        [
          {
            type: 'put',
            key: maintenanceMarkerKey(clusterId),
            value: JSON.stringify({ revision: target, by: candidateId, at: new Date().toISOString() }),
          },
        ],
      );
      if (!fenced.succeeded) return { kind: 'rejected' };
    } catch (error) {
      if (hasCode(error, 'LEASE_LOST')) {
        this.log.warn('maintenance action rejected: no longer leader');
        return { kind: 'rejected' };
      }
      throw error;
    }
    try {
      await coordination.compact(target);
    } catch (error) {
      if (!hasCode(error, 'COMPACTED')) throw error;
    }
    this.log.debug({ revision: target }, 'compacted coordination history');
    return { kind: 'compacted', revision: target };
  }

  async stop(): Promise<void> {
    this.abort.abort();
    clearInterval(this.timer);
    await this.election.close().catch(() => undefined);
  }
}
