/**
 * Composition root of the `sync` command: opens the source and target etcd clusters (the etcd
 * adapter is imported only here, when the command runs), refuses to mirror a cluster onto itself,
 * and runs a {@link ClusterSync} until closed.
 */
import { NexusError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { ClusterSync } from './cluster-sync.js';

/** Options of {@link startSyncProcess}. */
export interface SyncProcessOptions {
  /** Source etcd endpoints (`host:port,host:port`). */
  from: string;
  /** Target etcd endpoints. */
  to: string;
  clusterId: string;
  logger: Logger;
}

/** A running sync. */
export interface SyncProcess {
  readonly sync: ClusterSync;
  close(): Promise<void>;
}

/**
 * Connect to both etcd clusters and start mirroring. Rejects with CONFIG_INVALID for bad endpoint
 * lists or when both lists reach the same etcd cluster, BACKEND_UNAVAILABLE when either cannot be
 * reached at start (later outages are retried).
 */
export async function startSyncProcess(options: SyncProcessOptions): Promise<SyncProcess> {
  const { createEtcdCoordination } = await import('../adapters/etcd/coordination.js');
  const { parseEndpoints } = await import('../adapters/etcd/client.js');
  for (const [flag, value] of [
    ['--from', options.from],
    ['--to', options.to],
  ] as const) {
    try {
      parseEndpoints(value);
    } catch (error) {
      throw new NexusError('CONFIG_INVALID', `${flag}: ${(error as Error).message}`, {
        cause: error,
        details: { flag },
      });
    }
  }
  const source = createEtcdCoordination({ endpoints: options.from });
  const target = createEtcdCoordination({ endpoints: options.to });
  try {
    const [sourceStatus, targetStatus] = await Promise.all([
      source.call('status', true, () => source.client.maintenance.status()),
      target.call('status', true, () => target.client.maintenance.status()),
    ]);
    if (String(sourceStatus.header.cluster_id) === String(targetStatus.header.cluster_id)) {
      throw new NexusError(
        'CONFIG_INVALID',
        `--from and --to reach the same etcd cluster (${String(sourceStatus.header.cluster_id)}): a cluster cannot be mirrored onto itself`,
        { details: { flag: '--to' } },
      );
    }
  } catch (error) {
    await Promise.all([source.close(), target.close()]);
    throw error;
  }
  const sync = new ClusterSync({
    source,
    target,
    clusterId: options.clusterId,
    logger: options.logger,
    sourceName: options.from,
  });
  sync.start();
  return {
    sync,
    async close() {
      await sync.stop();
      await Promise.all([source.close(), target.close()]);
    },
  };
}
