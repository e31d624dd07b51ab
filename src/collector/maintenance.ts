/**
 * Maintenance that exactly one collector does at a time: the elected leader compacts the coordination
 * store's history (keeping `keepRevisions` behind the current revision) so etcd stays far below its
 * quota, and runs the sample store's retention pass when one is configured. Every leader action is
 * fenced: it first writes a marker in a txn guarded on the leader key's revision, and acts only if
 * that txn succeeded, so a leader that lost its lease (GC pause, SIGSTOP) cannot act. A rejected
 * action is logged as "maintenance action rejected: no longer leader".
 */
import { Election } from '../coordination/election.js';
import { hasCode } from '../errors.js';
import type { Coordination } from '../ports/coordination.js';
import type { Logger } from '../util/logger.js';

/** Default time between two leader passes (ms). */
export const DEFAULT_MAINTENANCE_INTERVAL_MS = 30_000;
/** Default revisions of history kept behind the current one. */
/**
 * Default revisions of history kept behind the current one. A batch costs about five revisions
 * (enqueue, claim, ack, its share of GPU record txns), so 2,000 revisions keep ~400 batches (~100 MiB
 * of etcd database at 270 KiB per batch in format 1, ~10x less in the binary format 2) and a few seconds to minutes of history for resuming
 * watchers, depending on the ingest rate.
 */
export const DEFAULT_KEEP_REVISIONS = 2_000;
/** Default election lease TTL (seconds). */
export const DEFAULT_ELECTION_TTL_SECONDS = 10;
/** Default time between two retention passes of the leader (ms). */
export const DEFAULT_RETENTION_INTERVAL_MS = 5 * 60_000;

/** Options of {@link Maintenance}. */
export interface MaintenanceOptions {
  coordination: Coordination;
  clusterId: string;
  candidateId: string;
  logger: Logger;
  /** How often the leader runs its duties (default 30 s). */
  intervalMs?: number;
  /** Revisions of history kept behind the current one (default 2,000). */
  keepRevisions?: number;
  /** Election lease TTL in seconds: how long a dead or paused leader blocks the others (default 10). */
  ttlSeconds?: number;
  /** Sample retention pass run by the leader (idempotent); undefined when the store has none. */
  retention?: () => Promise<unknown>;
  /** Time between two retention passes (default 5 min). */
  retentionIntervalMs?: number;
}

/** Outcome of one maintenance pass, for logs and tests. */
export type MaintenanceOutcome =
  | { kind: 'compacted'; revision: number }
  | { kind: 'retention' }
  | { kind: 'nothing-to-do' }
  | { kind: 'rejected' };

/** The key the leader writes (fenced) before each action: `{revision, by, term, at}`. */
export const maintenanceMarkerKey = (clusterId: string): string =>
  `/telemetry/maintenance/${encodeURIComponent(clusterId)}/compaction`;

/** The value of the marker key. */
export interface MaintenanceMarker {
  /** Revision compacted to (0 when the pass only ran retention). */
  revision: number;
  /** Candidate (COLLECTOR_ID) of the leader that wrote it. */
  by: string;
  /** The leader's term (createRevision of the leader key). */
  term: number;
  at: string;
}

/** Leader-only maintenance of one cluster's collectors; see the module comment. */
export class Maintenance {
  readonly election: Election;
  private readonly abort = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private lastRetention = 0;
  private passing = false;

  constructor(private readonly options: MaintenanceOptions) {
    this.election = new Election(options.coordination, `collector-maintenance-${options.clusterId}`, {
      ttlSeconds: options.ttlSeconds ?? DEFAULT_ELECTION_TTL_SECONDS,
    });
    this.log = options.logger.child({ component: 'maintenance' });
  }

  /** Campaign in the background; once leader, run duties every interval; campaign again after a lost term. */
  start(): void {
    const campaign = (): void => {
      this.election.campaign(this.options.candidateId, { signal: this.abort.signal }).then(
        () => {
          this.log.info({ revision: this.election.leaderRevision }, 'leading collector maintenance');
          clearInterval(this.timer);
          this.timer = setInterval(
            () => void this.tick(),
            this.options.intervalMs ?? DEFAULT_MAINTENANCE_INTERVAL_MS,
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

  /** One timer pass; passes never overlap. */
  private async tick(): Promise<void> {
    if (this.passing) return;
    this.passing = true;
    try {
      await this.runOnce();
    } catch (error) {
      this.log.warn({ err: error }, 'maintenance pass failed; retrying next pass');
    } finally {
      this.passing = false;
    }
  }

  /** One fenced pass: compact history older than `keepRevisions`, and run retention when due. */
  async runOnce(): Promise<MaintenanceOutcome> {
    const { coordination, clusterId, candidateId } = this.options;
    const target = (await coordination.revision()) - (this.options.keepRevisions ?? DEFAULT_KEEP_REVISIONS);
    const retention = this.options.retention;
    const retentionDue =
      retention !== undefined &&
      Date.now() - this.lastRetention >= (this.options.retentionIntervalMs ?? DEFAULT_RETENTION_INTERVAL_MS);
    if (target <= 1 && !retentionDue) return { kind: 'nothing-to-do' };
    const term = this.election.leaderRevision ?? 0;
    const marker: MaintenanceMarker = {
      revision: target > 1 ? target : 0,
      by: candidateId,
      term,
      at: new Date().toISOString(),
    };
    try {
      const fenced = await this.election.fencedTxn(
        [],
        [{ type: 'put', key: maintenanceMarkerKey(clusterId), value: JSON.stringify(marker) }],
      );
      if (!fenced.succeeded) return { kind: 'rejected' };
    } catch (error) {
      if (hasCode(error, 'LEASE_LOST')) {
        this.log.warn(
          { term, candidateId, detail: error.message },
          'maintenance action rejected: no longer leader',
        );
        return { kind: 'rejected' };
      }
      throw error;
    }
    if (retentionDue) {
      this.lastRetention = Date.now();
      try {
        const result = await retention();
        this.log.debug({ result }, 'applied sample retention and compaction');
      } catch (error) {
        this.log.warn({ err: error }, 'retention pass failed; retrying next interval');
      }
    }
    if (target <= 1) return { kind: 'retention' };
    try {
      await coordination.compact(target);
    } catch (error) {
      if (!hasCode(error, 'COMPACTED')) throw error;
    }
    this.log.debug({ revision: target }, 'compacted coordination history');
    return { kind: 'compacted', revision: target };
  }

  /** Stop campaigning and leading; resigns if leader. */
  async stop(): Promise<void> {
    this.abort.abort();
    clearInterval(this.timer);
    await this.election.close().catch(() => undefined);
  }
}
