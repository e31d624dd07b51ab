/**
 * POST /api/v1/write: a Prometheus remote write 1.0 receiver. The body (snappy block-compressed
 * protobuf `prometheus.WriteRequest`, `Content-Type: application/x-protobuf`) is decoded and mapped
 * by src/ingest/remote-write.ts onto the rows the exposition path produces, and handed to a
 * {@link RemoteWriteSink} (in embedded mode: batches on the in-process queue, stored by the
 * collector).
 *
 * - 204: every row was queued (dead letters included; series of non-DCGM metrics dropped and
 *   counted on `nexus_remote_write_dropped_series_total`).
 * - 400 `{error: {code: 'BAD_REQUEST', message}}`: not snappy, not a WriteRequest, or larger than the
 *   limit once decompressed (Prometheus does not retry 4xx). 413 when the raw body is over the limit,
 *   415 for another Content-Encoding or Content-Type (or a `proto=` other than
 *   `prometheus.WriteRequest`, e.g. remote write 2.0's).
 * - 503 with `Retry-After` when the queue is full: the request is not held (Prometheus retries 5xx).
 *   Batch ids are content-derived, so a retried request stores nothing twice.
 *
 * Registered only when the process has a sink: the API of embedded `start`, and a streamer with
 * REMOTE_WRITE_PORT (src/runtime/remote-write-server.ts).
 */
import type { FastifyPluginAsync } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { encodeBatchesWithin } from '../../domain/batch-codec.js';
import type { DeadLetter, Sample } from '../../domain/types.js';
import type { RowResult } from '../../ingest/exposition.js';
import {
  DEFAULT_REMOTE_WRITE_MAX_BYTES,
  REMOTE_WRITE_SOURCE,
  RemoteWriteDecodeError,
  decodeWriteRequest,
  mapRemoteWrite,
} from '../../ingest/remote-write.js';
import type { PipelineMetrics } from '../../metrics/registry.js';
import type { Queue } from '../../ports/queue.js';

/** Where the rows of a request go. */
export interface RemoteWriteSink {
  /** Queue the rows: `queued` once all are queued, `full` when there is no room now (nothing waits long). */
  write(rows: RowResult[]): Promise<'queued' | 'full'>;
}

/** Options of {@link queueRemoteWriteSink}. */
export interface QueueSinkOptions {
  queue: Queue;
  /** The queue's backpressure bound: at this depth a request is refused at once. */
  maxDepth: number;
  /** Rows per batch. */
  batchSize: number;
  /** Longest one enqueue may wait before the request is answered 503 (default 2 s). */
  enqueueTimeoutMs?: number;
  /** Batch source (default `remote-write`). */
  source?: string;
  metrics?: PipelineMetrics;
}

/**
 * A sink publishing content-derived batches (same rows -> same batch ids, as the streamer's) on
 * `queue`. Refuses (`full`) while the queue is at `maxDepth`, when an enqueue waits longer than
 * `enqueueTimeoutMs`, and while such a timed-out enqueue is still pending: so concurrent requests
 * (Prometheus' shards) each wait at most `enqueueTimeoutMs`, and at most one abandoned enqueue per
 * concurrent request is left behind.
 */
export function queueRemoteWriteSink(options: QueueSinkOptions): RemoteWriteSink {
  const source = options.source ?? REMOTE_WRITE_SOURCE;
  const timeoutMs = options.enqueueTimeoutMs ?? 2000;
  /** Enqueues that timed out and have not settled yet. */
  let stuck = 0;
  /** Enqueue one payload; false when it did not land within `timeoutMs` (it may land later). */
  const enqueueWithin = async (payload: Uint8Array): Promise<boolean> => {
    const enqueued = options.queue.enqueue(payload);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    try {
      if ((await Promise.race([enqueued, timedOut])) !== 'timeout') return true;
      // It lands later, or not; a retry of the same request is idempotent either way.
      stuck++;
      enqueued.then(
        () => stuck--,
        () => stuck--,
      );
      return false;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    async write(rows) {
      if (rows.length === 0) return 'queued';
      if (stuck > 0 || (await options.queue.depth()) >= options.maxDepth) return 'full';
      for (let start = 0; start < rows.length; start += options.batchSize) {
        const samples: Sample[] = [];
        const deadLetters: DeadLetter[] = [];
        for (const row of rows.slice(start, start + options.batchSize)) {
          if (row.ok) samples.push(row.sample);
          else deadLetters.push(row.deadLetter);
        }
        for (const { payload } of encodeBatchesWithin(source, samples, deadLetters)) {
          if (!(await enqueueWithin(payload))) return 'full';
          options.metrics?.batchesQueued.inc();
        }
      }
      return 'queued';
    },
  };
}

/** Options of {@link remoteWriteRoutes}. */
export interface RemoteWriteRouteOptions {
  /** The process's pipeline metrics (rows read, bad rows; the receiver's counters join its registry). */
  metrics: PipelineMetrics;
  sink: RemoteWriteSink;
  /** Cluster the samples belong to (CLUSTER_ID). */
  clusterId: string;
  /** Largest body, compressed and decompressed (default 32 MiB). */
  maxBytes?: number;
  /** Seconds in `Retry-After` of a 503 (default 1). */
  retryAfterSeconds?: number;
}

const METRIC_NAMES = [
  'nexus_remote_write_requests_total',
  'nexus_remote_write_samples_total',
  'nexus_remote_write_dropped_series_total',
  'nexus_remote_write_stale_markers_total',
];

function remoteWriteMetrics(registry: Registry) {
  for (const name of METRIC_NAMES) registry.removeSingleMetric(name);
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'nexus_remote_write_requests_total',
      help: 'Remote write requests received, by response status code',
      labelNames: ['code'] as const,
      registers,
    }),
    samples: new Counter({
      name: 'nexus_remote_write_samples_total',
      help: 'Samples of DCGM series received by remote write and queued (dead letters not included)',
      registers,
    }),
    droppedSeries: new Counter({
      name: 'nexus_remote_write_dropped_series_total',
      help: 'Remote write series dropped because their metric is not a DCGM field (not DCGM_ prefixed)',
      registers,
    }),
    staleMarkers: new Counter({
      name: 'nexus_remote_write_stale_markers_total',
      help: 'Prometheus staleness markers received by remote write and dropped (they are not samples)',
      registers,
    }),
  };
}

/** POST /api/v1/write, and its counters on /metrics. */
export const remoteWriteRoutes: FastifyPluginAsync<RemoteWriteRouteOptions> = async (app, options) => {
  const maxBytes = options.maxBytes ?? DEFAULT_REMOTE_WRITE_MAX_BYTES;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const pipeline = options.metrics;
  const counters = remoteWriteMetrics(pipeline.registry);
  // Scoped to this plugin: the raw body as a Buffer.
  app.addContentTypeParser(
    'application/x-protobuf',
    { parseAs: 'buffer', bodyLimit: maxBytes },
    (_request, body, done) => done(null, body),
  );
  const refuse = (code: number, error: string, message: string) => {
    counters.requests.inc({ code: String(code) });
    return { error: { code: error, message } };
  };
  app.post(
    '/api/v1/write',
    {
      bodyLimit: maxBytes,
      schema: {
        tags: ['ingest'],
        summary: 'Prometheus remote write 1.0 receiver (snappy-compressed protobuf WriteRequest)',
      },
    },
    async (request, reply) => {
      const encoding = request.headers['content-encoding'];
      if (encoding !== undefined && encoding.toLowerCase() !== 'snappy') {
        return reply
          .status(415)
          .send(refuse(415, 'BAD_REQUEST', `Content-Encoding ${JSON.stringify(encoding)} is not snappy`));
      }
      const proto = /;\s*proto=([^;\s]+)/i.exec(request.headers['content-type'] ?? '')?.[1];
      if (proto !== undefined && proto !== 'prometheus.WriteRequest') {
        return reply
          .status(415)
          .send(
            refuse(
              415,
              'BAD_REQUEST',
              `proto ${JSON.stringify(proto)} is not prometheus.WriteRequest (remote write 1.0)`,
            ),
          );
      }
      const body = request.body;
      if (!Buffer.isBuffer(body)) {
        return reply
          .status(415)
          .send(refuse(415, 'BAD_REQUEST', 'Content-Type must be application/x-protobuf'));
      }
      let mapped;
      try {
        mapped = mapRemoteWrite(decodeWriteRequest(body, maxBytes), { clusterId: options.clusterId });
      } catch (error) {
        if (error instanceof RemoteWriteDecodeError)
          return reply.status(400).send(refuse(400, 'BAD_REQUEST', error.message));
        throw error;
      }
      const outcome = await options.sink.write(mapped.rows);
      if (outcome === 'full') {
        return reply
          .status(503)
          .header('retry-after', retryAfter)
          .send(refuse(503, 'OVERLOADED', 'the ingest queue is full; retry later'));
      }
      counters.requests.inc({ code: '204' });
      counters.samples.inc(mapped.samples);
      counters.droppedSeries.inc(mapped.droppedSeries);
      counters.staleMarkers.inc(mapped.staleMarkers);
      pipeline.rowsRead.inc(mapped.rows.length);
      for (const row of mapped.rows) if (!row.ok) pipeline.badRows.inc({ reason: row.deadLetter.reason });
      return reply.status(204).send();
    },
  );
};
