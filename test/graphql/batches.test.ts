/**
 * telemetryUpdateBatches over graphql-ws on the embedded runtime with the bundled sample: the same
 * events as telemetryUpdates, in the same order, framed as they arrive (fewer results than events,
 * each result's cursor the cursor of its last event), a snapshot in one result, and `after:` resumes
 * from a batch's cursor.
 */
import type { Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  recordHierarchy,
  startSampleServer,
  waitUntil,
  type SampleServer,
  graphqlClient,
} from '../ws/harness.js';

interface Event {
  cursor: string;
  eventType: string;
  gpuId: string | null;
  data: { gpuUtilization: number | null } | null;
}
interface Batch {
  cursor: string;
  events: Event[];
}

const FIELDS = 'cursor eventType gpuId data { gpuUtilization }';

let server: SampleServer;
let client: Client;

beforeAll(async () => {
  server = await startSampleServer();
  client = graphqlClient(server);
});

afterAll(async () => {
  await client?.dispose();
  await server?.close();
});

/** Subscribe and collect the payload of every result under `field`. */
function collect<T>(query: string, field: string): { items: T[]; stop: () => void } {
  const items: T[] = [];
  const stop = client.subscribe<Record<string, T>>(
    { query },
    {
      next: (r) => {
        if (r.errors) throw new Error(JSON.stringify(r.errors));
        items.push(r.data![field]!);
      },
      error: () => undefined,
      complete: () => undefined,
    },
  );
  return { items, stop };
}

describe('telemetryUpdateBatches', () => {
  it('delivers the events of telemetryUpdates, in order, framed together', async () => {
    const hub = server.realtime.hub;
    const before = hub.stats.subscribers;
    const single = collect<Event>(`subscription { telemetryUpdates { ${FIELDS} } }`, 'telemetryUpdates');
    const framed = collect<Batch>(
      `subscription { telemetryUpdateBatches { cursor events { ${FIELDS} } } }`,
      'telemetryUpdateBatches',
    );
    await waitUntil(() => hub.stats.subscribers >= before + 2, 'both subscriptions registered');
    const recorder = await recordHierarchy(server.runtime);
    await server.replay();
    const expected = recorder.events.filter((e) => e.kind === 'gpu' && e.type === 'put').length;
    expect(expected).toBeGreaterThanOrEqual(247);
    const gpuUpdates = (events: Event[]) => events.filter((e) => e.eventType === 'GPU_UPDATE');
    const framedEvents = () => framed.items.flatMap((b) => b.events);
    await waitUntil(
      () => gpuUpdates(single.items).length >= expected && gpuUpdates(framedEvents()).length >= expected,
      `${expected} GPU updates on both`,
    );
    await recorder.stop();
    single.stop();
    framed.stop();

    expect(framedEvents()).toEqual(single.items);
    // Framed: fewer results than events, none larger than 500, each named by its last event.
    expect(framed.items.length).toBeLessThan(single.items.length / 2);
    for (const b of framed.items) {
      expect(b.events.length).toBeGreaterThan(0);
      expect(b.events.length).toBeLessThanOrEqual(500);
      expect(b.cursor).toBe(b.events[b.events.length - 1]!.cursor);
    }
    // Revisions are never reordered or split across results out of order: cursors ascend.
    const position = (c: string) => c.split('.').map(Number) as [number, number];
    const cursors = framedEvents()
      .filter((e) => e.eventType === 'GPU_UPDATE')
      .map((e) => position(e.cursor));
    for (let i = 1; i < cursors.length; i++) {
      const [r0, i0] = cursors[i - 1]!;
      const [r1, i1] = cursors[i]!;
      expect(r1 > r0 || (r1 === r0 && i1 > i0)).toBe(true);
    }
  });

  it('a snapshot comes as one result; after: a batch cursor resumes behind it', async () => {
    const snap = collect<Batch>(
      `subscription { telemetryUpdateBatches(snapshot: true) { cursor events { ${FIELDS} } } }`,
      'telemetryUpdateBatches',
    );
    await waitUntil(() => snap.items.length >= 1, 'the snapshot');
    snap.stop();
    const first = snap.items[0]!;
    expect(first.events.length).toBeGreaterThanOrEqual(247);
    expect(first.events.filter((e) => e.eventType === 'SNAPSHOT').length).toBeGreaterThanOrEqual(247);

    // Resume after the snapshot's cursor: nothing old is repeated, the next replay arrives.
    const resumed = collect<Batch>(
      `subscription { telemetryUpdateBatches(after: ${JSON.stringify(first.cursor)}) { cursor events { ${FIELDS} } } }`,
      'telemetryUpdateBatches',
    );
    const hub = server.realtime.hub;
    await waitUntil(() => hub.stats.subscribers >= 1, 'registered');
    await server.replay();
    await waitUntil(
      () => resumed.items.flatMap((b) => b.events).filter((e) => e.eventType === 'GPU_UPDATE').length >= 247,
      'the replay after the cursor',
    );
    resumed.stop();
    const cursors = resumed.items.flatMap((b) => b.events.map((e) => e.cursor));
    const after = (c: string) => {
      const [r, i = '-1'] = c.split('.');
      const [fr, fi = '-1'] = first.cursor.split('.');
      return Number(r) > Number(fr) || (Number(r) === Number(fr) && Number(i) > Number(fi));
    };
    expect(cursors.every(after)).toBe(true);
  });
});
