/**
 * A new queue backend is one adapter, one registry row and one conformance runner, with no other
 * file changed: this file defines a test-only backend `memory-test` (an in-memory broker per topic,
 * built on the embedded queue), registers it, resolves topologies with `--queue memory-test`, opens
 * it through the registry, runs the shared queue conformance suite on it, and runs the streamer role
 * on it unchanged. It also checks the registry's own rules and that the CLI offers its kinds.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createEmbeddedQueue, type EmbeddedQueue } from '../../src/adapters/embedded/queue.js';
import { loadConfig } from '../../src/config/config.js';
import { decodeBatch } from '../../src/domain/batch-codec.js';
import { NexusError } from '../../src/errors.js';
import type { ClaimedItem, ClaimOptions, Queue, QueueOptions } from '../../src/ports/queue.js';
import { openConsumerQueues } from '../../src/runtime/backends.js';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';
import {
  embeddedHistoryLimit,
  listBackends,
  openCoordination,
  openQueue,
  queueBackend,
  queueKinds,
  registerQueueBackend,
} from '../../src/runtime/registry.js';
import { runStreamerProcess } from '../../src/runtime/roles.js';
import { resolveTopology } from '../../src/runtime/topology.js';
import { createLogger } from '../../src/util/logger.js';
import { type QueueCapabilities, queueConformance } from '../conformance/queue.js';

// ---- 1. The adapter: every handle on a topic reaches one in-memory broker, as every process
// reaches one Redis; the broker (and its items) goes away with its last handle.

interface Broker {
  queue: EmbeddedQueue;
  handles: number;
}

const brokers = new Map<string, Broker>();

class MemoryTestQueue implements Queue {
  private closed = false;

  constructor(
    readonly topic: string,
    private readonly broker: Broker,
  ) {}

  private live(): EmbeddedQueue {
    if (this.closed) {
      throw new NexusError('QUEUE_CLOSED', `queue ${this.topic} is closed`, {
        details: { topic: this.topic },
      });
    }
    return this.broker.queue;
  }

  async enqueue(payload: Uint8Array): Promise<string> {
    return this.live().enqueue(payload);
  }

  async claim(consumerId: string, options?: ClaimOptions): Promise<ClaimedItem[]> {
    return this.live().claim(consumerId, options);
  }

  async ack(item: ClaimedItem): Promise<boolean> {
    return this.live().ack(item);
  }

  async release(item: ClaimedItem): Promise<boolean> {
    return this.live().release(item);
  }

  async depth(): Promise<number> {
    return this.live().depth();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.broker.handles -= 1;
    if (this.broker.handles === 0) {
      brokers.delete(this.topic);
      await this.broker.queue.close();
    }
  }
}

function openMemoryTestQueue(options: QueueOptions): Queue {
  let broker = brokers.get(options.topic);
  if (broker === undefined) {
    broker = { queue: createEmbeddedQueue(options), handles: 0 };
    brokers.set(options.topic, broker);
  }
  broker.handles += 1;
  return new MemoryTestQueue(options.topic, broker);
}

// ---- 2. The registry row.

registerQueueBackend({
  kind: 'memory-test',
  needs: [],
  shared: true,
  summary: 'test-only in-memory broker',
  async open(_config, options) {
    return openMemoryTestQueue(options);
  },
});

// ---- 3. The conformance runner, on a topology resolved with `--queue memory-test`.

const config = loadConfig(
  {},
  {
    CLUSTER_ID: 'dgx-lab',
    // The collector topology requires PostgreSQL to be configured; nothing here connects to it.
    DATABASE_URL: 'postgres://nobody@127.0.0.1:9/unused',
    LOG_LEVEL: 'silent',
  },
);
const streamer = resolveTopology(config, 'streamer', { queue: 'memory-test' });
const collector = resolveTopology(config, 'collector', { queue: 'memory-test' });

const capabilities: QueueCapabilities = {
  watch: true, // the embedded queue under the broker wakes waiting claims by events
  claimExpiry: true,
  multipleConsumers: true, // handles on one topic share the broker
  persistence: 'an in-memory broker: its items end with the last handle',
};

queueConformance(
  'memory-test (registered from the test)',
  async (options) => {
    const queue = await openQueue(streamer.produce!, config, options);
    return { queue, teardown: () => queue.close() };
  },
  capabilities,
);

describe('a queue backend registered at run time', () => {
  it('is a registry kind the topology accepts for --queue', () => {
    expect(queueKinds()).toEqual(['embedded', 'etcd', 'redis', 'nats', 'memory-test']);
    expect(queueBackend('memory-test')).toMatchObject({ kind: 'memory-test', needs: [], shared: true });
    expect(
      listBackends()
        .filter((b) => b.port === 'queue')
        .map((b) => b.kind),
    ).toContain('memory-test');
    expect(streamer).toEqual({
      role: 'streamer',
      mode: 'traditional',
      produce: 'memory-test',
      consume: [],
      coordination: undefined,
      samples: undefined,
    });
    expect(collector).toMatchObject({ consume: ['memory-test'], samples: 'postgres' });
  });

  it('opens queues with CLAIM_TTL: an unacked claim goes to another consumer after it', async () => {
    const [consumer] = await openConsumerQueues(collector, { ...config, CLAIM_TTL: 1000 });
    try {
      await consumer!.enqueue(new TextEncoder().encode('held'));
      const [first] = await consumer!.claim('dies');
      expect(first?.deliveries).toBe(1);
      const asked = performance.now();
      // The default (30 s) would leave this wait empty.
      const [again] = await consumer!.claim('survives', { waitMs: 5_000 });
      expect(again?.id).toBe(first?.id);
      expect(again?.deliveries).toBe(2);
      expect(performance.now() - asked).toBeLessThan(4_000);
      expect(await consumer!.ack(again!)).toBe(true);
    } finally {
      await consumer!.close();
    }
  });

  it('carries the streamer role unchanged: the bundled sample arrives as decodable batches', async () => {
    // The collector side's handle, opened through the topology openers (one per topic: 'telemetry').
    const [consumer] = await openConsumerQueues(collector, config);
    expect(consumer!.topic).toBe('telemetry');
    try {
      const summary = await runStreamerProcess(config, createLogger('silent'), {
        spec: bundledSamplePath(),
        topology: streamer,
      });
      expect(summary).toMatchObject({ rows: 2470, badRows: 0 });
      expect(await consumer!.depth()).toBe(summary.batches);
      const items = await consumer!.claim('c1', { max: 1000 });
      const batches = items.map((item) => decodeBatch(item.payload));
      expect(batches.reduce((n, b) => n + b.samples.length, 0)).toBe(2470);
      expect(new Set(batches.flatMap((b) => b.samples.map((s) => s.hostname))).size).toBe(31);
      for (const item of items) expect(await consumer!.ack(item)).toBe(true);
      expect(await consumer!.depth()).toBe(0);
    } finally {
      await consumer!.close();
    }
  });
});

describe('registry rules', () => {
  it('refuses a kind registered twice or spelled outside [a-z0-9-]', () => {
    const row = { needs: [], shared: true, summary: 'x', open: () => Promise.reject(new Error('unused')) };
    expect(() => registerQueueBackend({ kind: 'etcd', ...row })).toThrow(
      'a queue backend "etcd" is already registered',
    );
    expect(() => registerQueueBackend({ kind: 'My Queue', ...row })).toThrow(
      'queue backend kind "My Queue" must be lower case letters, digits and -',
    );
    expect(queueKinds()).toEqual(['embedded', 'etcd', 'redis', 'nats', 'memory-test']);
  });

  it('checks needs before opening: the etcd queue without ETCD_ENDPOINTS', async () => {
    const error = await openQueue('etcd', config, { topic: 'batches' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NexusError);
    expect(error).toMatchObject({
      code: 'CONFIG_INVALID',
      message: 'the etcd queue needs ETCD_ENDPOINTS',
      details: { variable: 'ETCD_ENDPOINTS', kind: 'etcd' },
    });
  });

  it("gives the registry's queue kinds as the CLI's --queue choices", async () => {
    const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const run = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', cli, 'collector', '--queue', 'kafka'],
      {
        cwd: fileURLToPath(new URL('../../', import.meta.url)),
        env: { ...process.env, LOG_LEVEL: 'silent' },
      },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
    );
    expect(run.code).not.toBe(0);
    // In a fresh process only the built-in kinds are registered.
    expect(run.stderr).toContain(
      "argument 'kafka' is invalid. Allowed choices are embedded, etcd, redis, nats.",
    );
  });

  it("bounds the embedded coordination's watch history by EVENT_HISTORY (at least 1,000 events)", async () => {
    expect(embeddedHistoryLimit({ EVENT_HISTORY: 10_000 })).toBe(10_000);
    expect(embeddedHistoryLimit({ EVENT_HISTORY: 0 })).toBe(1_000);
    const coordination = await openCoordination(
      'embedded',
      loadConfig({}, { EVENT_HISTORY: '1500', LOG_LEVEL: 'silent' }),
    );
    try {
      for (let i = 0; i < 1600; i++) await coordination.put(`/k/${i % 7}`, String(i));
      const from = (revision: number): Promise<string> =>
        new Promise((resolve) => {
          const watching = coordination.watch('/k/', {
            fromRevision: revision,
            onEvent: () => resolve('replayed'),
            onError: (error) => resolve((error as NexusError).code),
          });
          watching.then(
            (watcher) => setTimeout(() => void watcher.cancel(), 100),
            (error: unknown) => resolve((error as NexusError).code),
          );
        });
      // 1,600 revisions written, 1,500 kept: the oldest ones are gone, the newer ones replay.
      expect(await from(2)).toBe('COMPACTED');
      expect(await from(1600 - 1400)).toBe('replayed');
    } finally {
      await coordination.close();
    }
  });
});
