/**
 * The size of the live hierarchy (clusters, hosts, GPUs and the largest of each) for the cost
 * model of limits.ts, read from the hierarchy reader and cached for a short time: at most one
 * snapshot read (two range reads) per `ttlMs`, however many requests arrive. HTTP requests wait for
 * a fresh snapshot; graphql-ws operations use the latest one and start a refresh when it is stale.
 * When the hierarchy cannot be read, the last snapshot (or the assumed sizes) stay in use.
 */
import type { HierarchyReader } from '../../hierarchy/reader.js';
import type { Logger } from '../../util/logger.js';
import { cardinalityOf, type Cardinality } from './limits.js';

/** A cached, refreshed snapshot of the hierarchy's size. */
export class CardinalityCache {
  private snapshot: Cardinality | undefined;
  private takenAt = -Infinity;
  private refreshing: Promise<void> | undefined;

  constructor(
    private readonly reader: HierarchyReader,
    private readonly ttlMs: number,
    private readonly logger?: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  private stale(): boolean {
    return this.now() - this.takenAt >= this.ttlMs;
  }

  /** The latest snapshot (undefined before the first); starts a refresh when it is stale. */
  current(): Cardinality | undefined {
    if (this.stale()) void this.refresh();
    return this.snapshot;
  }

  /** A snapshot no older than the TTL (waits for a refresh when needed). */
  async fresh(): Promise<Cardinality | undefined> {
    if (this.stale()) await this.refresh();
    return this.snapshot;
  }

  /** Read the hierarchy's size once (concurrent callers share the read). Never rejects. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const [clusters, gpus] = await Promise.all([this.reader.listClusters(), this.reader.listAllGpus()]);
        this.snapshot = cardinalityOf(clusters, gpus);
        this.takenAt = this.now();
      } catch (error) {
        this.logger?.warn(
          { err: error },
          'cannot read the hierarchy size for GraphQL costs; keeping the last',
        );
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }
}
