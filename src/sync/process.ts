/**
 * Composition root of the `sync` command: opens the source and target etcd clusters through the
 * backend registry (which imports the etcd adapter only when the command runs), refuses to mirror a
 * cluster onto itself, and runs a {@link ClusterSync} until closed.
 */
import type { EtcdCoordination } from '../adapters/etcd/coordination.js';
import type { Config } from '../config/config.js';
import { NexusError } from '../errors.js';
import { openCoordination } from '../runtime/registry.js';
import type { Logger } from '../util/logger.js';
import { ClusterSync } from './cluster-sync.js';

/** Options of {@link startSyncProcess}. */
export interface SyncProcessOptions {
  /** The process's configuration; `from` and `to` take the place of its ETCD_ENDPOINTS. */
  config: Config;
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
  const open = async (flag: '--from' | '--to', endpoints: string): Promise<EtcdCoordination> => {
    try {
      return await openCoordination('etcd', { ...options.config, ETCD_ENDPOINTS: endpoints });
    } catch (error) {
      if (error instanceof NexusError && error.code === 'CONFIG_INVALID') {
        throw new NexusError('CONFIG_INVALID', `${flag}: ${error.message}`, {
          cause: error,
          details: { flag },
        });
      }
      throw error;
    }
  };
  const source = await open('--from', options.from);
  let target: EtcdCoordination;
  try {
    target = await open('--to', options.to);
  } catch (error) {
    await source.close();
    throw error;
  }
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
