// Runs the Coordination conformance suite on the embedded (in-process) adapter.
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { coordinationConformance } from '../conformance/coordination.js';

coordinationConformance(
  'embedded',
  async () => {
    const coordination = createEmbeddedCoordination();
    return { coordination, teardown: () => coordination.close() };
  },
  { leases: true, compaction: true, multiMember: 'one in-process store, no replicas' },
);
