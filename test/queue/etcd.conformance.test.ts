/**
 * Runs the queue conformance suite on the etcd adapter against real etcd: a single member and a
 * three-member cluster, each started once for the file. Every handle is its own EtcdQueue with its
 * own client and lease, like separate processes; tests are isolated by topic and cluster id.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { createEtcdQueue } from '../../src/adapters/etcd/queue.js';
import { queueConformance } from '../conformance/queue.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';

for (const members of [1, 3] as const) {
  const label = `etcd (${members} member${members > 1 ? 's' : ''})`;
  describe(label, () => {
    let etcd: EtcdHandle | undefined;
    const clusterId = `conformance-${members}-${process.pid}`;

    beforeAll(async () => {
      etcd = await startEtcd({ members });
    });
    afterAll(async () => {
      await etcd?.stop();
    });

    queueConformance(label, async (options) => {
      if (!etcd) throw new Error('etcd did not start');
      const queue = await createEtcdQueue({ ...options, endpoints: etcd.endpoints, clusterId });
      return { queue, teardown: () => queue.close() };
    });
  });
}
