/**
 * Batched /ws subscriptions (`batch: true`): the same events as an unbatched subscription, in the
 * same order with the same cursors, framed as `events` messages of up to MAX_BATCH_EVENTS events, one
 * per store revision or snapshot rather than one per GPU. The snapshot of 247 GPUs fits one frame;
 * each hierarchy write (up to 32 GPUs in one revision) comes as one frame. A bad `batch` value is a
 * BAD_REQUEST naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BATCH_EVENTS } from '../../src/api/ws/connection.js';
import {
  compareCursors,
  JsonSocket,
  recordHierarchy,
  startSampleServer,
  waitUntil,
  type SampleServer,
} from './harness.js';

let server: SampleServer;

beforeAll(async () => {
  server = await startSampleServer();
});

afterAll(async () => {
  await server?.close();
});

interface Item {
  cursor: string;
  event: Record<string, unknown>;
}

/** Events of subscription `id`, whether they came one per message or in `events` frames. */
function eventsOf(s: JsonSocket, id: string): Item[] {
  const out: Item[] = [];
  for (const m of s.messages) {
    if (m.id !== id) continue;
    if (m.type === 'event') out.push({ cursor: String(m.cursor), event: m.event as Record<string, unknown> });
    if (m.type === 'events') out.push(...(m.events as Item[]));
  }
  return out;
}

async function subscriber(extra: Record<string, unknown>): Promise<JsonSocket> {
  const s = new JsonSocket(`${server.wsBase}/ws?subscribe=none`);
  await s.opened;
  s.send({ type: 'subscribe', id: 'all', snapshot: true, ...extra });
  await s.next((m) => m.type === 'subscribed', 'subscribed');
  return s;
}

describe('/ws batch: true', () => {
  it('frames the snapshot and each revision as one events message, with the same events as unbatched', async () => {
    const plain = await subscriber({});
    const batched = await subscriber({ batch: true });
    try {
      // The snapshot: 247 GPUs, one frame (under MAX_BATCH_EVENTS) after `subscribed`.
      await batched.next((m) => m.type === 'events', 'the snapshot frame');
      await waitUntil(() => eventsOf(plain, 'all').length >= 247, 'the unbatched snapshot');
      const snapshotFrames = batched.ofType('events', 'all');
      expect(MAX_BATCH_EVENTS).toBeGreaterThan(247);
      expect(snapshotFrames).toHaveLength(1);
      const snapshot = snapshotFrames[0]!.events as Item[];
      expect(snapshot).toHaveLength(247);
      expect(snapshot.every((i) => i.event.eventType === 'SNAPSHOT')).toBe(true);
      expect(batched.ofType('event')).toHaveLength(0);
      const order = batched.messages.map((m) => m.type);
      expect(order.indexOf('subscribed')).toBeLessThan(order.indexOf('events'));

      const recorder = await recordHierarchy(server.runtime);
      await server.replay();
      await waitUntil(() => recorder.events.length > 0, 'the replay to write');
      const last = () => recorder.events.at(-1)!.cursor;
      await waitUntil(
        () =>
          eventsOf(plain, 'all').at(-1)?.cursor === last() &&
          eventsOf(batched, 'all').at(-1)?.cursor === last(),
        'both subscribers to receive the last write',
      );
      await recorder.stop();

      const live = (s: JsonSocket) => eventsOf(s, 'all').filter((i) => i.event.eventType !== 'SNAPSHOT');
      const plainLive = live(plain);
      const batchedLive = live(batched);
      expect(batchedLive.length).toBe(recorder.events.length);
      expect(batchedLive.map((i) => i.cursor)).toEqual(plainLive.map((i) => i.cursor));
      expect(batchedLive.map((i) => i.event)).toEqual(plainLive.map((i) => i.event));
      expect(batchedLive.map((i) => i.cursor)).toEqual(recorder.events.map((r) => r.cursor));

      // Frames: each carries the cursor of its last event, never splits a revision across frames
      // unless it is full, and there are no more frames than revisions.
      const frames = batched.ofType('events', 'all').slice(1);
      const revisions = new Set(recorder.events.map((r) => r.revision));
      expect(frames.length).toBeGreaterThan(0);
      expect(frames.length).toBeLessThanOrEqual(revisions.size);
      expect(frames.length).toBeLessThan(batchedLive.length);
      for (const frame of frames) {
        const items = frame.events as Item[];
        expect(items.length).toBeGreaterThan(0);
        expect(items.length).toBeLessThanOrEqual(MAX_BATCH_EVENTS);
        expect(frame.cursor).toBe(items.at(-1)!.cursor);
        for (let i = 1; i < items.length; i++)
          expect(compareCursors(items[i]!.cursor, items[i - 1]!.cursor)).toBeGreaterThan(0);
      }
      const revisionOf = (c: string) => c.split('.')[0];
      for (let f = 1; f < frames.length; f++) {
        const previous = frames[f - 1]!.events as Item[];
        const current = frames[f]!.events as Item[];
        if (previous.length < MAX_BATCH_EVENTS)
          expect(revisionOf(current[0]!.cursor)).not.toBe(revisionOf(previous.at(-1)!.cursor));
      }
    } finally {
      plain.close();
      batched.close();
    }
  });

  it('is also asked for by the URL (?batch=true)', async () => {
    const s = new JsonSocket(`${server.wsBase}/ws?snapshot=true&batch=true&hostId=mtv5-dgx1-hgpu-012`);
    try {
      await s.opened;
      await s.next((m) => m.type === 'events', 'the snapshot frame');
      const frames = s.ofType('events', 'default');
      expect(frames).toHaveLength(1);
      expect((frames[0]!.events as Item[]).map((i) => i.event.gpuIndex)).toHaveLength(7);
      expect(s.ofType('event')).toHaveLength(0);
    } finally {
      s.close();
    }
  });

  it('refuses a batch that is not a boolean, naming the field', async () => {
    const s = new JsonSocket(`${server.wsBase}/ws?subscribe=none`);
    try {
      await s.opened;
      s.send({ type: 'subscribe', id: 'x', batch: 'yes' });
      const error = await s.next((m) => m.type === 'error', 'error');
      expect(error).toMatchObject({ code: 'BAD_REQUEST', message: 'batch must be a boolean', id: 'x' });
      expect(s.ofType('subscribed')).toHaveLength(0);
    } finally {
      s.close();
    }
  });
});
