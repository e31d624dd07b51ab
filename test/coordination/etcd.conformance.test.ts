// Runs the Coordination conformance suite on real etcd: a single member and a three-member cluster.
// The cluster also gets one client per member, for the `multiMember` cases.
import { afterAll, beforeAll, describe } from 'vitest';
import { createEtcdCoordination } from '../../src/adapters/etcd/coordination.js';
import { coordinationConformance } from '../conformance/coordination.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';

for (const members of [1, 3] as const) {
  describe(`etcd, ${members} member${members > 1 ? 's' : ''}`, () => {
    let etcd: EtcdHandle | undefined;
    beforeAll(async () => {
      etcd = await startEtcd({ members });
    });
    afterAll(async () => {
      await etcd?.stop();
    });

    coordinationConformance(
      `etcd (${members} member${members > 1 ? 's' : ''})`,
      async () => {
        if (!etcd) throw new Error('etcd did not start');
        const coordination = createEtcdCoordination({ endpoints: etcd.endpointList });
        const perMember =
          members > 1
            ? etcd.endpoints.map((endpoint) => createEtcdCoordination({ endpoints: endpoint }))
            : [];
        return {
          coordination,
          ...(members > 1 ? { members: perMember } : {}),
          teardown: async () => {
            await Promise.all([coordination, ...perMember].map((c) => c.close()));
          },
        };
      },
      {
        leases: true,
        compaction: true,
        multiMember: members > 1 ? true : 'a single etcd member',
      },
    );
  });
}
