/**
 * /ws subscriptions whose filter names a cluster the server does not hold: an `error` message with
 * code NOT_FOUND naming the cluster and the known ones (not a subscription that stays silent), from a
 * `subscribe` message or the URL; the connection stays usable. `"waitForCluster": true` accepts a
 * cluster that is not registered yet and delivers its events once a collector writes it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterKey } from '../../src/hierarchy/paths.js';
import { JsonSocket, startSampleServer, waitUntil, type SampleServer } from './harness.js';

let server: SampleServer;
const sockets: JsonSocket[] = [];

beforeAll(async () => {
  server = await startSampleServer({ CLUSTER_ID: 'local' });
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await server?.close();
});

async function connect(query = '?subscribe=none'): Promise<JsonSocket> {
  const s = new JsonSocket(`${server.wsBase}/ws${query}`);
  sockets.push(s);
  await s.opened;
  await s.next((m) => m.type === 'welcome', 'welcome');
  return s;
}

describe('/ws subscriptions for an unknown cluster', () => {
  it("the guide's cluster id on a server serving `local` is an error NOT_FOUND; the connection goes on", async () => {
    const s = await connect();
    const hub = server.realtime.hub;
    s.send({ type: 'subscribe', id: 'guide', filter: { clusterId: 'my-cluster' } });
    const error = await s.next((m) => m.type === 'error' && m.id === 'guide', 'the error');
    expect(error).toEqual({
      type: 'error',
      id: 'guide',
      code: 'NOT_FOUND',
      message:
        "cluster 'my-cluster' not found; known clusters: 'local' " +
        '(to wait for a cluster not registered yet, subscribe with "waitForCluster": true)',
    });
    expect(s.ofType('subscribed')).toEqual([]);
    expect(hub.stats.subscribers).toBe(0);

    // The id is free again, a known cluster subscribes, and the connection still answers pings.
    s.send({ type: 'subscribe', id: 'guide', filter: { clusterId: 'local' } });
    await s.next((m) => m.type === 'subscribed' && m.id === 'guide', 'subscribed');
    s.send({ type: 'ping', id: 7 });
    await s.next((m) => m.type === 'pong' && m.id === 7, 'pong');
    expect(s.ofType('error')).toHaveLength(1);
  });

  it('the same from the URL (/ws?clusterId=...): the default subscription gets the error', async () => {
    const s = await connect('?clusterId=my-cluster');
    const error = await s.next((m) => m.type === 'error', 'the error');
    expect(error).toMatchObject({ id: 'default', code: 'NOT_FOUND' });
    expect(error.message).toContain("cluster 'my-cluster' not found; known clusters: 'local'");
    expect(s.ofType('subscribed')).toEqual([]);
  });

  it('the URL can ask to wait too (/ws?clusterId=...&waitForCluster=true): subscribed, no error', async () => {
    const s = await connect('?clusterId=not-yet&waitForCluster=true');
    const subscribed = await s.next((m) => m.type === 'subscribed', 'subscribed');
    expect(subscribed).toMatchObject({ id: 'default', filter: { clusterId: 'not-yet' } });
    expect(s.ofType('error')).toEqual([]);
  });

  it('waitForCluster must be a boolean', async () => {
    const s = await connect();
    s.send({ type: 'subscribe', id: 'w', filter: { clusterId: 'later' }, waitForCluster: 'yes' });
    const error = await s.next((m) => m.type === 'error' && m.id === 'w', 'the error');
    expect(error).toMatchObject({ code: 'BAD_REQUEST', message: 'waitForCluster must be a boolean' });
  });

  it('"waitForCluster": true subscribes to a cluster registered later and delivers its events', async () => {
    const s = await connect();
    s.send({ type: 'subscribe', id: 'later', filter: { clusterId: 'later' }, waitForCluster: true });
    await s.next((m) => m.type === 'subscribed' && m.id === 'later', 'subscribed');
    const coordination = server.runtime.coordination;
    const record = JSON.parse((await coordination.get(clusterKey('local')))!.value) as Record<
      string,
      unknown
    >;
    for (const key of ['clusterId', 'id', 'cluster_id']) if (key in record) record[key] = 'later';
    await coordination.put(clusterKey('later'), JSON.stringify(record));
    try {
      const event = await s.next(
        (m) => m.type === 'event' && m.id === 'later',
        'an event of the new cluster',
      );
      expect(event.event).toMatchObject({ eventType: 'CLUSTER_UPDATE', clusterId: 'later' });
    } finally {
      await coordination.delete(clusterKey('later'));
    }
    await waitUntil(() => s.ofType('error').length === 0, 'no error');
  });

  it('a subscription to every cluster (no clusterId) is never checked', async () => {
    const s = await connect('');
    await s.next((m) => m.type === 'subscribed' && m.id === 'default', 'the default subscription');
    expect(s.ofType('error')).toEqual([]);
  });
});
