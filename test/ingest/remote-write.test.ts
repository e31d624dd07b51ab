/**
 * Prometheus remote write: decoding (protobufjs + snappyjs, staleness markers told apart), the
 * label mapping (the exposition parser's), non-DCGM series dropped and counted, and the route's
 * answers: 204 and stored (a retry adds nothing), 400 on garbage, 503 + Retry-After on a full queue.
 */
import Fastify from 'fastify';
import protobuf from 'protobufjs';
import snappy from 'snappyjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedQueue } from '../../src/adapters/embedded/queue.js';
import { queueRemoteWriteSink, remoteWriteRoutes } from '../../src/api/routes/remote-write.js';
import { loadConfig } from '../../src/config/config.js';
import { decodeBatch } from '../../src/domain/batch-codec.js';
import type { Sample } from '../../src/domain/types.js';
import { ExpositionParser, type RowResult } from '../../src/ingest/exposition.js';
import {
  RemoteWriteDecodeError,
  WriteRequestType,
  decodeWriteRequest,
  instanceHost,
  mapRemoteWrite,
  type RemoteSeries,
} from '../../src/ingest/remote-write.js';
import { createPipelineMetrics } from '../../src/metrics/registry.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';

const NOW = Date.UTC(2026, 11, 3, 14, 0, 0);
const T = NOW - 60_000;

interface PlainSeries {
  labels: Record<string, string>;
  samples: { value: number; timestamp: number }[];
}

/** A remote write body as Prometheus sends it: protobuf WriteRequest, snappy block-compressed. */
function body(series: PlainSeries[]): Buffer {
  const message = WriteRequestType.fromObject({
    timeseries: series.map((s) => ({
      labels: Object.entries(s.labels).map(([name, value]) => ({ name, value })),
      samples: s.samples,
    })),
  });
  return Buffer.from(snappy.compress(WriteRequestType.encode(message).finish()));
}

const GPU_LABELS = {
  __name__: 'DCGM_FI_DEV_GPU_UTIL',
  gpu: '0',
  UUID: 'GPU-1',
  device: 'nvidia0',
  modelName: 'H100',
  Hostname: 'h1',
  DCGM_FI_DRIVER_VERSION: '535',
  instance: 'node-1:9400',
  job: 'dcgm',
};

const samples = (rows: RowResult[]): Sample[] => rows.flatMap((r) => (r.ok ? [r.sample] : []));
const dead = (rows: RowResult[]) => rows.flatMap((r) => (r.ok ? [] : [r.deadLetter]));
const map = (series: RemoteSeries[]) => mapRemoteWrite(series, { clusterId: 'c1', now: () => NOW });

describe('decoding a WriteRequest', () => {
  it('reads back what protobufjs + snappyjs encoded', () => {
    const decoded = decodeWriteRequest(
      body([
        {
          labels: GPU_LABELS,
          samples: [
            { value: 42.5, timestamp: T },
            { value: 0, timestamp: T + 1000 },
          ],
        },
        { labels: { __name__: 'up', instance: 'node-1:9400' }, samples: [{ value: 1, timestamp: T }] },
      ]),
    );
    expect(decoded).toEqual([
      {
        labels: Object.entries(GPU_LABELS).map(([name, value]) => ({ name, value })),
        samples: [
          { value: 42.5, timestamp: T, stale: false },
          { value: 0, timestamp: T + 1000, stale: false },
        ].map(({ timestamp, ...s }) => ({ ...s, timestampMs: timestamp })),
      },
      {
        labels: [
          { name: '__name__', value: 'up' },
          { name: 'instance', value: 'node-1:9400' },
        ],
        samples: [{ value: 1, timestampMs: T, stale: false }],
      },
    ]);
  });

  it('tells a staleness marker from another NaN by its bits', () => {
    const sample = (hi: number, lo: number, ts: number): Uint8Array => {
      const w = protobuf.Writer.create();
      w.uint32((1 << 3) | 1)
        .fixed32(lo)
        .fixed32(hi);
      w.uint32((2 << 3) | 0).int64(ts);
      return w.finish();
    };
    const w = protobuf.Writer.create();
    w.uint32((1 << 3) | 2).fork();
    w.uint32((1 << 3) | 2)
      .fork()
      .uint32(10)
      .string('__name__')
      .uint32(18)
      .string('DCGM_X')
      .ldelim();
    w.uint32((2 << 3) | 2).bytes(sample(0x7ff00000, 2, T)); // Prometheus' StaleNaN
    w.uint32((2 << 3) | 2).bytes(sample(0x7ff80000, 1, T + 1)); // Go's math.NaN()
    w.ldelim();
    const [series] = decodeWriteRequest(Buffer.from(snappy.compress(w.finish())));
    expect(series!.samples.map((s) => [Number.isNaN(s.value), s.stale, s.timestampMs])).toEqual([
      [true, true, T],
      [true, false, T + 1],
    ]);
  });

  it('refuses a body that is not snappy, not a WriteRequest, or too large', () => {
    const reason = (b: Uint8Array, max?: number): string => {
      try {
        decodeWriteRequest(b, max);
      } catch (error) {
        expect(error).toBeInstanceOf(RemoteWriteDecodeError);
        return (error as RemoteWriteDecodeError).reason;
      }
      return 'decoded';
    };
    expect(reason(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))).toBe('not_snappy');
    expect(reason(Buffer.from(snappy.compress(Buffer.from([0x0a, 0xff, 0xff, 0x01]))))).toBe(
      'not_write_request',
    );
    expect(reason(body([{ labels: GPU_LABELS, samples: [{ value: 1, timestamp: T }] }]), 10)).toBe(
      'too_large',
    );
  });
});

describe('mapping series onto samples', () => {
  it('maps labels exactly as the exposition parser does, instance and job kept', () => {
    const mapped = map(
      decodeWriteRequest(body([{ labels: GPU_LABELS, samples: [{ value: 42.5, timestamp: T }] }])),
    );
    const parser = new ExpositionParser({ source: 'x', clusterId: 'c1', scrapeStartMs: 0, now: () => NOW });
    const line =
      'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-1",device="nvidia0",modelName="H100",Hostname="h1",' +
      `DCGM_FI_DRIVER_VERSION="535",instance="node-1:9400",job="dcgm"} 42.5 ${T}\n`;
    expect(samples(mapped.rows)).toEqual(samples(parser.push(line)));
    expect(samples(mapped.rows)).toEqual([
      {
        clusterId: 'c1',
        hostname: 'h1',
        gpuId: '0',
        uuid: 'GPU-1',
        device: 'nvidia0',
        modelName: 'H100',
        metric: 'DCGM_FI_DEV_GPU_UTIL',
        container: '',
        pod: '',
        namespace: '',
        labels: GPU_LABELS,
        timestampMs: T,
        value: 42.5,
      },
    ]);
    expect(mapped).toMatchObject({ samples: 1, deadLetters: 0, droppedSeries: 0, staleMarkers: 0 });
  });

  it('takes the host of `instance` when there is no Hostname label; escapes survive', () => {
    const { Hostname: _h, ...rest } = GPU_LABELS;
    const labels = { ...rest, pod: 'a"b\\c\nd', instance: '10.0.0.7:9400' };
    const mapped = map(decodeWriteRequest(body([{ labels, samples: [{ value: 1, timestamp: T }] }])));
    const [s] = samples(mapped.rows);
    expect(s).toMatchObject({ hostname: '10.0.0.7', pod: 'a"b\\c\nd' });
    expect(s!.labels).toEqual(labels);
    expect(['node:1', '[::1]:9400', 'bare', '::1'].map(instanceHost)).toEqual(['node', '::1', 'bare', '::1']);
  });

  it('drops and counts non-DCGM series and staleness markers; bad samples are dead letters', () => {
    const series: RemoteSeries[] = [
      { labels: [{ name: '__name__', value: 'up' }], samples: [{ value: 1, timestampMs: T, stale: false }] },
      { labels: [{ name: 'job', value: 'x' }], samples: [{ value: 1, timestampMs: T, stale: false }] },
      {
        labels: Object.entries(GPU_LABELS).map(([name, value]) => ({ name, value })),
        samples: [
          { value: 1, timestampMs: T, stale: false },
          { value: NaN, timestampMs: T + 1, stale: true },
          { value: NaN, timestampMs: T + 2, stale: false },
          { value: Infinity, timestampMs: T + 3, stale: false },
          { value: 2, timestampMs: 253402300800000, stale: false },
        ],
      },
      {
        labels: Object.entries({ ...GPU_LABELS, UUID: 'U'.repeat(600) }).map(([name, value]) => ({
          name,
          value,
        })),
        samples: [{ value: 3, timestampMs: T, stale: false }],
      },
      {
        labels: [
          { name: '__name__', value: 'DCGM_FI_DEV_SM_CLOCK' },
          { name: 'gpu', value: '0' },
        ],
        samples: [{ value: 3, timestampMs: T, stale: false }],
      },
    ];
    const mapped = map(series);
    expect(mapped).toMatchObject({ samples: 1, deadLetters: 5, droppedSeries: 2, staleMarkers: 1 });
    expect(dead(mapped.rows).map((d) => [d.source, d.line, d.reason])).toEqual([
      ['remote-write', 3, 'non_finite_value'],
      ['remote-write', 3, 'non_finite_value'],
      ['remote-write', 3, 'timestamp_out_of_range'],
      ['remote-write', 4, 'identity_field_too_long'],
      ['remote-write', 5, 'missing_field'],
    ]);
  });
});

describe('POST /api/v1/write on the embedded runtime', () => {
  let runtime: EmbeddedRuntime;
  beforeAll(async () => {
    const config = loadConfig({}, { MEMORY: true, CLUSTER_ID: 'rw', LOG_LEVEL: 'silent' });
    runtime = await startEmbedded({ config, logger: createLogger('silent'), listen: false });
  });
  afterAll(async () => {
    await runtime?.close();
  });

  const post = (payload: Buffer, headers: Record<string, string> = {}) =>
    runtime.app.inject({
      method: 'POST',
      url: '/api/v1/write',
      payload,
      headers: {
        'content-type': 'application/x-protobuf',
        'content-encoding': 'snappy',
        'x-prometheus-remote-write-version': '0.1.0',
        ...headers,
      },
    });

  it('answers 204, stores the samples once (a retry adds nothing) and counts dropped series', async () => {
    const payload = body([
      {
        labels: GPU_LABELS,
        samples: [
          { value: 1, timestamp: T },
          { value: 2, timestamp: T + 1000 },
        ],
      },
      { labels: { ...GPU_LABELS, gpu: '1', UUID: 'GPU-2' }, samples: [{ value: 3, timestamp: T }] },
      { labels: { ...GPU_LABELS, gpu: '2', UUID: 'GPU-3' }, samples: [{ value: NaN, timestamp: T }] },
      { labels: { __name__: 'up', instance: 'node-1:9400' }, samples: [{ value: 1, timestamp: T }] },
      { labels: { __name__: 'scrape_duration_seconds' }, samples: [{ value: 0.1, timestamp: T }] },
    ]);
    const first = await post(payload);
    expect(first.statusCode, first.body).toBe(204);
    await runtime.drain();
    expect(await runtime.store.countSamples()).toBe(3);
    const retry = await post(payload);
    expect(retry.statusCode).toBe(204);
    await runtime.drain();
    expect(await runtime.store.countSamples()).toBe(3);
    const letters = await runtime.app.inject({
      method: 'GET',
      url: '/api/v1/dead-letters?source=remote-write',
    });
    expect((letters.json() as { reason: string }[]).map((l) => l.reason)).toEqual(['non_finite_value']);
    const metrics = (await runtime.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^nexus_remote_write_dropped_series_total 4$/m);
    expect(metrics).toMatch(/^nexus_remote_write_samples_total 6$/m);
    expect(metrics).toMatch(/^nexus_remote_write_requests_total\{code="204"\} 2$/m);
  });

  it('answers 400 with a reason on garbage, 415 on another encoding', async () => {
    const notSnappy = await post(Buffer.from('hello, this is not snappy at all'));
    expect(notSnappy.statusCode).toBe(400);
    expect(notSnappy.json()).toMatchObject({ error: { code: 'BAD_REQUEST' } });
    expect((notSnappy.json() as { error: { message: string } }).error.message).toMatch(
      /not (snappy|a prometheus)/,
    );
    const notProto = await post(Buffer.from(snappy.compress(Buffer.from('\x0a\xff\xff\xff\x0f garbage'))));
    expect(notProto.statusCode).toBe(400);
    expect((notProto.json() as { error: { message: string } }).error.message).toMatch(
      /not a prometheus.WriteRequest/,
    );
    const gzip = await post(body([]), { 'content-encoding': 'gzip' });
    expect(gzip.statusCode).toBe(415);
    const v2 = await post(body([]), {
      'content-type': 'application/x-protobuf;proto=io.prometheus.write.v2.Request',
    });
    expect(v2.statusCode).toBe(415);
    const v1 = await post(body([]), {
      'content-type': 'application/x-protobuf;proto=prometheus.WriteRequest',
    });
    expect(v1.statusCode).toBe(204);
    const json = await runtime.app.inject({ method: 'POST', url: '/api/v1/write', payload: { a: 1 } });
    expect(json.statusCode).toBe(415);
  });
});

describe('backpressure', () => {
  it('answers 503 with Retry-After at once when the queue is full, then 204 once there is room', async () => {
    const queue = createEmbeddedQueue({ topic: 't', maxDepth: 1 });
    const metrics = createPipelineMetrics({ defaultMetrics: false });
    const app = Fastify();
    await app.register(remoteWriteRoutes, {
      metrics,
      clusterId: 'c1',
      retryAfterSeconds: 2,
      sink: queueRemoteWriteSink({ queue, maxDepth: 1, batchSize: 1000, enqueueTimeoutMs: 200 }),
    });
    const post = (value: number) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/write',
        headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' },
        payload: body([{ labels: GPU_LABELS, samples: [{ value, timestamp: T }] }]),
      });
    try {
      expect((await post(1)).statusCode).toBe(204);
      const started = Date.now();
      const full = await post(2);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(full.statusCode).toBe(503);
      expect(full.headers['retry-after']).toBe('2');
      expect(full.json()).toMatchObject({ error: { code: 'OVERLOADED' } });
      expect(await queue.depth()).toBe(1);
      const [item] = await queue.claim('c', { max: 1 });
      expect(decodeBatch(item!.payload).samples.map((s) => s.value)).toEqual([1]);
      await queue.ack(item!);
      expect((await post(2)).statusCode).toBe(204);
      expect(await queue.depth()).toBe(1);
      expect(await metrics.registry.getSingleMetricAsString('nexus_remote_write_requests_total')).toMatch(
        /code="503"\} 1/,
      );
    } finally {
      await app.close();
      await queue.close();
    }
  });

  it('answers 503 after a bounded wait when an enqueue blocks, and while it still waits', async () => {
    const queue = createEmbeddedQueue({ topic: 't', maxDepth: 1 });
    const app = Fastify();
    // The sink believes there is room for 2: the second enqueue blocks in the queue itself.
    await app.register(remoteWriteRoutes, {
      metrics: createPipelineMetrics({ defaultMetrics: false }),
      clusterId: 'c1',
      sink: queueRemoteWriteSink({ queue, maxDepth: 2, batchSize: 1000, enqueueTimeoutMs: 300 }),
    });
    const post = (value: number) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/write',
        headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' },
        payload: body([{ labels: GPU_LABELS, samples: [{ value, timestamp: T }] }]),
      });
    try {
      expect((await post(1)).statusCode).toBe(204);
      const started = Date.now();
      const blocked = await post(2);
      const waited = Date.now() - started;
      expect(blocked.statusCode).toBe(503);
      expect(blocked.headers['retry-after']).toBe('1');
      expect(waited).toBeGreaterThanOrEqual(250);
      expect(waited).toBeLessThan(2000);
      // The abandoned enqueue still waits: refused at once.
      const again = Date.now();
      expect((await post(3)).statusCode).toBe(503);
      expect(Date.now() - again).toBeLessThan(250);
      // Room again: the abandoned batch lands, and requests are taken again.
      const [item] = await queue.claim('c', { max: 1 });
      await queue.ack(item!);
      const deadline = Date.now() + 5000;
      while ((await queue.depth()) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 10));
      const [landed] = await queue.claim('c', { max: 1 });
      expect(decodeBatch(landed!.payload).samples.map((s) => s.value)).toEqual([2]);
      await queue.ack(landed!);
      expect((await post(4)).statusCode).toBe(204);
    } finally {
      await app.close();
      await queue.close();
    }
  });
});
