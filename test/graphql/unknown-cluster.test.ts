/**
 * The guide's documents on a server started with another cluster id (`local`, as `npm start` serves):
 * the guide's query and subscription for `my-cluster` answer a GraphQL error with code NOT_FOUND that
 * names the cluster and lists the known ones, not `cluster: null` or silence. host(clusterId) and
 * gpu(clusterId) do the same; unknown hosts and GPUs of a known cluster stay null. A subscription for
 * a cluster not registered yet (nexus mode, before its first ingest) is NOT_FOUND too, unless it passes
 * `waitForCluster: true`: then it receives the cluster's events once a collector writes it.
 */
import type { Client, FormattedExecutionResult } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unknownCluster } from '../../src/api/graphql/resolvers.js';
import { clusterKey } from '../../src/hierarchy/paths.js';
import {
  GUIDE_QUERY,
  GUIDE_SUBSCRIPTION,
  startSampleServer,
  waitUntil,
  type SampleServer,
  graphqlClient,
} from '../ws/harness.js';

type Result = FormattedExecutionResult<Record<string, unknown>, unknown>;

let local: SampleServer;
const clients: Client[] = [];

beforeAll(async () => {
  local = await startSampleServer({ CLUSTER_ID: 'local' });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await local?.close();
});

async function post(server: SampleServer, query: string): Promise<{ status: number; body: Result }> {
  const res = await fetch(`${server.base}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ query }),
  });
  return { status: res.status, body: (await res.json()) as Result };
}

function client(server: SampleServer): Client {
  const c = graphqlClient(server);
  clients.push(c);
  return c;
}

/** Subscribe and collect every result until the server completes the operation (or `stop` is called). */
function subscribe(server: SampleServer, query: string) {
  const results: Result[] = [];
  let completed = false;
  let failed: unknown;
  const stop = client(server).subscribe<Record<string, unknown>>(
    { query },
    {
      next: (r) => results.push(r),
      error: (e) => (failed = e),
      complete: () => (completed = true),
    },
  );
  return { results, stop, done: () => completed || failed !== undefined, failed: () => failed };
}

const errorOf = (r: Result) => r.errors?.[0] as { message: string; extensions?: Record<string, unknown> };

describe('a GraphQL query for an unknown cluster', () => {
  it("the guide's cluster query on a server serving `local` is NOT_FOUND naming both clusters", async () => {
    const { status, body } = await post(local, GUIDE_QUERY);
    expect(status).toBe(200);
    expect(body.data).toEqual({ cluster: null });
    expect(body.errors).toHaveLength(1);
    const error = errorOf(body);
    expect(error.extensions).toEqual({ code: 'NOT_FOUND', parameter: 'id' });
    expect(error.message).toBe("cluster 'my-cluster' not found; known clusters: 'local'");
    expect((body.errors![0] as { path?: unknown }).path).toEqual(['cluster']);
  });

  it('host(clusterId) and gpu(clusterId) of an unknown cluster are NOT_FOUND; unknown hosts and GPUs stay null', async () => {
    const { body } = await post(
      local,
      `{ host(clusterId: "my-cluster", hostId: "mtv5-dgx1-hgpu-001") { id }
         gpu(id: "0", clusterId: "my-cluster", hostId: "mtv5-dgx1-hgpu-001") { id } }`,
    );
    expect(body.data).toEqual({ host: null, gpu: null });
    expect(body.errors?.map((e) => [e.path, e.extensions?.code, e.message])).toEqual([
      [['host'], 'NOT_FOUND', "cluster 'my-cluster' not found; known clusters: 'local'"],
      [['gpu'], 'NOT_FOUND', "cluster 'my-cluster' not found; known clusters: 'local'"],
    ]);

    const known = await post(
      local,
      `{ cluster(id: "local") { id totalHosts } host(clusterId: "local", hostId: "nope") { id }
         gpu(id: "GPU-nope", clusterId: "local") { id } }`,
    );
    expect(known.body.errors).toBeUndefined();
    expect(known.body.data).toEqual({ cluster: { id: 'local', totalHosts: 31 }, host: null, gpu: null });
  });

  it('the message says when no cluster is known yet, and lists at most 20', () => {
    expect(unknownCluster('my-cluster', [], 'id').message).toBe(
      "cluster 'my-cluster' not found; known clusters: none yet (nothing ingested)",
    );
    const many = Array.from({ length: 25 }, (_, i) => `c${i}`);
    const error = unknownCluster('x', many, 'id');
    expect(error.code).toBe('NOT_FOUND');
    expect(error.message).toMatch(/'c19', and 5 more$/);
    expect(error.message).not.toContain("'c20'");
  });
});

describe('a GraphQL subscription for an unknown cluster', () => {
  it("the guide's subscription on a server serving `local` ends with NOT_FOUND instead of silence", async () => {
    const sub = subscribe(local, GUIDE_SUBSCRIPTION);
    await waitUntil(sub.done, 'the subscription to end');
    expect(sub.failed()).toBeUndefined();
    expect(sub.results).toHaveLength(1);
    const error = errorOf(sub.results[0]!);
    expect(error.extensions).toEqual({ code: 'NOT_FOUND', parameter: 'clusterId' });
    expect(error.message).toContain("cluster 'my-cluster' not found; known clusters: 'local'");
    expect(error.message).toContain('waitForCluster: true');
    expect(local.realtime.hub.stats.subscribers).toBe(0);
  });

  it('a subscription for a known cluster is accepted', async () => {
    const hub = local.realtime.hub;
    const sub = subscribe(local, 'subscription { telemetryUpdates(clusterId: "local") { cursor } }');
    await waitUntil(() => hub.stats.subscribers > 0, 'the subscription to be registered');
    expect(sub.results).toEqual([]);
    sub.stop();
    await waitUntil(() => hub.stats.subscribers === 0, 'the subscription to be closed');
  });

  it('waitForCluster: true waits for a cluster registered later and delivers its events', async () => {
    const query = (args: string) =>
      `subscription { telemetryUpdates(clusterId: "later"${args}) { eventType clusterId } }`;
    const refused = subscribe(local, query(''));
    await waitUntil(refused.done, 'the subscription without waitForCluster to end');
    expect(errorOf(refused.results[0]!).extensions?.code).toBe('NOT_FOUND');
    expect(errorOf(refused.results[0]!).message).toContain(
      "cluster 'later' not found; known clusters: 'local'",
    );

    const hub = local.realtime.hub;
    const before = hub.stats.subscribers;
    const waiting = subscribe(local, query(', waitForCluster: true'));
    await waitUntil(() => hub.stats.subscribers > before, 'the waiting subscription to be registered');
    expect(waiting.results).toEqual([]);
    // A collector of cluster `later` registers it: a copy of local's cluster record under the new id.
    const coordination = local.runtime.coordination;
    const record = JSON.parse((await coordination.get(clusterKey('local')))!.value) as Record<
      string,
      unknown
    >;
    for (const key of ['clusterId', 'id', 'cluster_id']) if (key in record) record[key] = 'later';
    await coordination.put(clusterKey('later'), JSON.stringify(record));
    try {
      await waitUntil(() => waiting.results.length > 0, 'the event of the newly registered cluster');
      expect(waiting.results[0]).toEqual({
        data: { telemetryUpdates: { eventType: 'CLUSTER_UPDATE', clusterId: 'later' } },
      });
      const known = await post(local, '{ cluster(id: "later") { id } }');
      expect(known.body).toEqual({ data: { cluster: { id: 'later' } } });
    } finally {
      waiting.stop();
      await coordination.delete(clusterKey('later'));
    }
  });
});
