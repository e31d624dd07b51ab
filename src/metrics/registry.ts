/**
 * The pipeline's Prometheus metrics: one prom-client Registry per pipeline instance (never the
 * global one, so several pipelines or tests in one process do not collide), holding the ingest,
 * queue, store and HTTP metrics plus prom-client's default process metrics. Served at /metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Label names of the HTTP request metrics. */
export type HttpLabel = 'method' | 'route' | 'status';

/** Every metric the pipeline records, typed so callers write `metrics.rowsRead.inc(n)`. */
export interface PipelineMetrics {
  /** The registry holding every metric below; `registry.metrics()` renders Prometheus text. */
  readonly registry: Registry;
  /** `nexus_rows_read_total`: input rows read by the streamer (good and bad). */
  readonly rowsRead: Counter;
  /** `nexus_bad_rows_total{reason}`: rows refused and dead-lettered, by reason code. */
  readonly badRows: Counter<'reason'>;
  /** `nexus_batches_queued_total`: batches published to the queue. */
  readonly batchesQueued: Counter;
  /** `nexus_batches_acked_total`: batches the collector stored and acknowledged. */
  readonly batchesAcked: Counter;
  /** `nexus_batches_duplicate_total`: batches the ledger recognised as already stored. */
  readonly batchesDuplicate: Counter;
  /** `nexus_samples_written_total`: samples newly stored (natural-key duplicates excluded). */
  readonly samplesWritten: Counter;
  /** `nexus_queue_depth`: items waiting in the queue, as last observed. */
  readonly queueDepth: Gauge;
  /** `nexus_write_latency_seconds`: time to write one batch to the sample store. */
  readonly writeLatency: Histogram;
  /** `nexus_http_requests_total{method,route,status}`: HTTP requests answered. */
  readonly httpRequests: Counter<HttpLabel>;
  /** `nexus_http_request_duration_seconds{method,route,status}`: HTTP request duration. */
  readonly httpRequestDuration: Histogram<HttpLabel>;
}

/** Options of {@link createPipelineMetrics}. */
export interface PipelineMetricsOptions {
  /** Also collect prom-client's default process metrics (CPU, memory, event loop, GC). Default true. */
  defaultMetrics?: boolean;
}

/** Create a fresh registry with every pipeline metric registered on it. */
export function createPipelineMetrics(options: PipelineMetricsOptions = {}): PipelineMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  return {
    registry,
    rowsRead: new Counter({
      name: 'nexus_rows_read_total',
      help: 'Input rows read by the streamer, good and bad',
      registers,
    }),
    badRows: new Counter({
      name: 'nexus_bad_rows_total',
      help: 'Input rows refused and dead-lettered, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    batchesQueued: new Counter({
      name: 'nexus_batches_queued_total',
      help: 'Batches published to the queue',
      registers,
    }),
    batchesAcked: new Counter({
      name: 'nexus_batches_acked_total',
      help: 'Batches stored and acknowledged by the collector',
      registers,
    }),
    batchesDuplicate: new Counter({
      name: 'nexus_batches_duplicate_total',
      help: 'Batches recognised by the ledger as already stored (replays)',
      registers,
    }),
    samplesWritten: new Counter({
      name: 'nexus_samples_written_total',
      help: 'Samples newly stored in the sample store',
      registers,
    }),
    queueDepth: new Gauge({
      name: 'nexus_queue_depth',
      help: 'Items waiting in the queue, as last observed',
      registers,
    }),
    writeLatency: new Histogram({
      name: 'nexus_write_latency_seconds',
      help: 'Time to write one batch to the sample store',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    httpRequests: new Counter({
      name: 'nexus_http_requests_total',
      help: 'HTTP requests answered, by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    }),
    httpRequestDuration: new Histogram({
      name: 'nexus_http_request_duration_seconds',
      help: 'HTTP request duration, by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  };
}
