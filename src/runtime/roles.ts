/**
 * Composition roots of the separate processes: streamer, collector and API, each on the shared
 * backends its {@link Topology} names (etcd and/or Redis queues, etcd live state or none,
 * PostgreSQL samples). Without a topology each resolves the default one from the configuration.
 */
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { apiOptionsFromConfig, buildApp } from '../api/app.js';
import { receiverAuthFromConfig, type ReceiverAuth } from '../api/auth/from-config.js';
import { exportTargetMetrics } from '../api/routes/targets.js';
import { Collector } from '../collector/collector.js';
import { Maintenance } from '../collector/maintenance.js';
import { batchSizeFor, clusterName, queueDepthFor, type Config } from '../config/config.js';
import { registerService, type Registration, type ServiceType } from '../discovery/registry.js';
import { HierarchyWriter } from '../hierarchy/writer.js';
import { ScrapeTargetBoard } from '../ingest/scrape.js';
import { TargetSharing } from '../ingest/target-sharing.js';
import { followTargetsFile, logHealthChanges, type TargetsFollower } from '../ingest/targets-file.js';
import { createPipelineMetrics, type PipelineMetrics } from '../metrics/registry.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';
import { startRemoteWriteServer, type RemoteWriteServer } from './remote-write-server.js';
import type { Coordination } from '../ports/coordination.js';
import type { Queue } from '../ports/queue.js';
import type { SampleStore } from '../ports/sample-store.js';
import { housekeepingDuty, startRetentionLoop, type RetentionLoop } from '../storage/retention.js';
import { runStreamer, type StreamInput, type StreamSummary } from '../streamer/streamer.js';
import type { Logger } from '../util/logger.js';
import {
  openConsumerQueues,
  openProducerQueue,
  openTopologyCoordination,
  openTopologySampleStore,
} from './backends.js';
import { resolveTopology, type Topology } from './topology.js';
import { startStoreHierarchyMirror } from './store-hierarchy.js';
import { VERSION } from './version.js';
import { authFromConfig } from '../api/auth/from-config.js';
import { startAlerting, type Alerting } from '../alerting/from-config.js';

function serviceRecord(type: ServiceType, id: string, address = '') {
  return {
    type,
    id,
    address,
    version: VERSION,
    startedAt: new Date().toISOString(),
    health: 'ok' as const,
    pid: process.pid,
    hostname: hostname(),
  };
}

async function maybeRegister(
  coordination: Coordination | undefined,
  type: ServiceType,
  id: string,
  address?: string,
): Promise<Registration | undefined> {
  return coordination ? registerService(coordination, serviceRecord(type, id, address)) : undefined;
}

/**
 * Run the streamer on the shared queue until its input ends (or forever with follow/loop).
 * `input.topology` (a `streamer` topology) defaults to the one the configuration gives.
 *
 * With `input.scrape` it scrapes the targets (plus those of `input.targetsFile`, followed as it
 * changes) until `input.signal` aborts, publishing each scrape as `start --scrape` does, and logs
 * every target that goes up or down. In nexus mode the streamers split the targets through etcd
 * (src/ingest/target-sharing.ts): this one scrapes its share, and its board lists only that share.
 */
export async function runStreamerProcess(
  config: Config,
  logger: Logger,
  input: StreamInput & {
    timestamps?: 'original' | 'now';
    topology?: Topology;
    progress?: boolean;
    /** A Prometheus file_sd targets file to follow (needs `scrape`). */
    targetsFile?: string;
    /**
     * Read no source: only receive remote write (needs REMOTE_WRITE_PORT) until `signal` aborts.
     */
    receiveOnly?: boolean;
  },
): Promise<StreamSummary> {
  const topology = input.topology ?? resolveTopology(config, 'streamer');
  let follower: TargetsFollower | undefined;
  let server: MetricsServer | undefined;
  let metrics: PipelineMetrics | undefined;
  let scrape = input.scrape;
  /** Nexus mode: the full target list (flags plus targets file), shared out to the streamers. */
  let catalog: ScrapeTargetBoard | undefined;
  if (scrape !== undefined) {
    const board = scrape.board ?? new ScrapeTargetBoard(scrape.targets, scrape.intervalMs, scrape.timeoutMs);
    board.onHealthChange ??= logHealthChanges(logger);
    if (topology.mode === 'nexus' && topology.coordination !== undefined) {
      catalog = new ScrapeTargetBoard(scrape.targets);
      board.setTargets([]); // Nothing is scraped until this streamer's share is known.
    }
    if (input.targetsFile !== undefined) {
      follower = await followTargetsFile(input.targetsFile, scrape.targets, logger);
      follower.attach(catalog ?? board);
    }
    scrape = { ...scrape, targets: follower?.initial ?? scrape.targets, board };
    // A scraping streamer with METRICS_PORT serves its targets' health: `up`, `scrape_*` on /metrics.
    if (config.METRICS_PORT !== undefined) {
      metrics = createPipelineMetrics();
      exportTargetMetrics(metrics.registry, board);
      try {
        server = await startMetricsServer({
          host: config.HOST,
          port: config.METRICS_PORT,
          metrics,
          health: () => ({
            healthy: true,
            details: { role: 'streamer', id: config.SERVICE_ID, targets: board.list() },
          }),
        });
      } catch (error) {
        follower?.close();
        throw error;
      }
      logger.info({ address: server.address }, 'streamer health and metrics listening');
    }
  }
  try {
    const queue = await openProducerQueue(topology, config);
    const coordination = await openTopologyCoordination(topology, config);
    const registration = await maybeRegister(coordination, 'streamer', config.SERVICE_ID);
    let sharing: TargetSharing | undefined;
    let receiver: RemoteWriteServer | undefined;
    let receiverAuth: ReceiverAuth | undefined;
    try {
      if (config.REMOTE_WRITE_PORT !== undefined) {
        metrics ??= createPipelineMetrics();
        receiverAuth = await receiverAuthFromConfig(config, logger);
        receiver = await startRemoteWriteServer({
          auth: receiverAuth.settings,
          host: config.HOST,
          port: config.REMOTE_WRITE_PORT,
          queue,
          maxDepth: queueDepthFor(config, 'shared'),
          batchSize: batchSizeFor(config, 'shared'),
          clusterId: config.CLUSTER_ID,
          metrics,
          health: () => ({ role: 'streamer', id: config.SERVICE_ID }),
        });
        logger.info(
          { address: `${receiver.address}/api/v1/write` },
          'streamer receiving Prometheus remote write',
        );
      }
      const board = scrape?.board;
      if (catalog !== undefined && coordination !== undefined && board !== undefined) {
        sharing = await TargetSharing.start({
          coordination,
          memberId: config.SERVICE_ID,
          group: config.CLUSTER_ID,
          targets: catalog.targets ?? scrape!.targets,
          ttlSeconds: Math.round(config.SCRAPE_LEASE_TTL / 1000),
          onTargets: (owned) => board.setTargets(owned),
          logger,
        });
        const share = sharing;
        catalog.onTargets((urls) => share.setTargets(urls));
      }
      const summary =
        input.receiveOnly === true
          ? { rows: 0, badRows: 0, batches: 0, seconds: 0, rowsPerSecond: 0 }
          : await runStreamer(
              { ...input, scrape },
              {
                queue,
                clusterId: config.CLUSTER_ID,
                batchSize: batchSizeFor(config, 'shared'),
                flushIntervalMs: config.FLUSH_INTERVAL,
                timestamps: input.timestamps ?? 'original',
                logger,
                metrics,
                progress: input.progress,
              },
            );
      // A receiver keeps the process up after its source ended, until the stop signal.
      if (receiver !== undefined) await untilAborted(input.signal);
      return summary;
    } finally {
      await receiver?.close();
      await receiverAuth?.close();
      await sharing?.close();
      await registration?.close();
      await queue.close();
      await coordination?.close();
    }
  } finally {
    follower?.close();
    await server?.close();
  }
}

/** Resolves when `signal` aborts (never without one). */
function untilAborted(signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** A running collector process. */
export interface CollectorProcess {
  readonly collector: Collector;
  readonly queues: Queue[];
  readonly store: SampleStore;
  readonly maintenance: Maintenance | undefined;
  /** Alert rules, evaluated while this collector is the maintenance leader (nexus mode only). */
  readonly alerting: Alerting | undefined;
  close(): Promise<void>;
}

/**
 * Start a collector on every queue of its topology (`options.topology`, a `collector` topology;
 * default: the one the configuration gives), writing to PostgreSQL and, with a coordination store
 * (nexus mode), the live hierarchy.
 */
export async function startCollectorProcess(
  config: Config,
  logger: Logger,
  options: { topology?: Topology; metrics?: PipelineMetrics } = {},
): Promise<CollectorProcess> {
  const topology = options.topology ?? resolveTopology(config, 'collector');
  const metrics = options.metrics ?? createPipelineMetrics();
  const store = await openTopologySampleStore(topology, config, logger);
  const queues = await openConsumerQueues(topology, config);
  const coordination = await openTopologyCoordination(topology, config);
  let hierarchy: HierarchyWriter | undefined;
  let maintenance: Maintenance | undefined;
  let alerting: Alerting | undefined;
  if (coordination) {
    hierarchy = new HierarchyWriter({ coordination, minRoundIntervalMs: config.HIERARCHY_INTERVAL });
    await hierarchy.registerCluster({
      clusterId: config.CLUSTER_ID,
      name: clusterName(config),
      region: config.CLUSTER_REGION,
    });
    maintenance = new Maintenance({
      coordination,
      clusterId: config.CLUSTER_ID,
      candidateId: config.COLLECTOR_ID,
      logger,
      ttlSeconds: Math.round(config.ELECTION_TTL / 1000),
      intervalMs: config.MAINTENANCE_INTERVAL,
      keepRevisions: config.COMPACTION_KEEP_REVISIONS,
      retention: housekeepingDuty(store, {
        retention: { rawMs: config.RETENTION_RAW, rollupMs: config.RETENTION_ROLLUP },
        compactAfterMs: config.COMPACT_AFTER,
        logger,
      }),
    });
    maintenance.start();
    try {
      alerting = await startAlerting({ config, logger, store, coordination, election: maintenance.election });
    } catch (error) {
      await maintenance.stop();
      await Promise.all(queues.map((q) => q.close()));
      await store.close();
      await coordination.close();
      throw error;
    }
  }
  // Without a coordination store there is no leader: every collector runs the (idempotent) retention pass.
  const duty = coordination
    ? undefined
    : housekeepingDuty(store, {
        retention: { rawMs: config.RETENTION_RAW, rollupMs: config.RETENTION_ROLLUP },
        compactAfterMs: config.COMPACT_AFTER,
        logger,
      });
  const retention: RetentionLoop | undefined = duty ? startRetentionLoop(duty, { logger }) : undefined;
  const registration = await maybeRegister(coordination, 'collector', config.COLLECTOR_ID);
  const collector = new Collector({
    queues,
    store,
    hierarchy,
    consumerId: config.COLLECTOR_ID,
    workers: config.WORKERS,
    pollIntervalMs: config.POLL_INTERVAL,
    logger,
    metrics,
  });
  // Listening before consuming: a port already in use stops the process before it claims anything.
  const server =
    config.METRICS_PORT === undefined
      ? undefined
      : await startMetricsServer({
          host: config.HOST,
          port: config.METRICS_PORT,
          metrics,
          health: () => ({
            healthy: collector.isRunning,
            details: { role: 'collector', id: config.COLLECTOR_ID, ...collector.stats },
          }),
        });
  if (server) logger.info({ address: server.address }, 'collector health and metrics listening');
  collector.start();
  // `nexus_queue_depth`: the backlog of the queues this collector consumes (JetStream: the stream's count).
  const depthTimer = setInterval(() => {
    Promise.all(queues.map((q) => q.depth())).then(
      (depths) => metrics.queueDepth.set(depths.reduce((sum, d) => sum + d, 0)),
      () => undefined,
    );
  }, 1000);
  depthTimer.unref();
  return {
    collector,
    queues,
    store,
    maintenance,
    alerting,
    async close() {
      clearInterval(depthTimer);
      await server?.close();
      await collector.stop();
      await alerting?.close();
      await maintenance?.stop();
      await retention?.stop();
      await registration?.close();
      await Promise.all(queues.map((q) => q.close()));
      await store.close();
      await coordination?.close();
    },
  };
}

/** A running API process. */
export interface ApiProcess {
  readonly app: FastifyInstance;
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Start the API on its topology (`options.topology`, an `api` topology; default: the one the
 * configuration gives): the live hierarchy from the coordination store in nexus mode; in traditional
 * mode (no coordination store) a REST-only API on a hierarchy derived from PostgreSQL.
 */
export async function startApiProcess(
  config: Config,
  logger: Logger,
  options: { topology?: Topology } = {},
): Promise<ApiProcess> {
  const topology = options.topology ?? resolveTopology(config, 'api');
  const metrics = createPipelineMetrics();
  const store = await openTopologySampleStore(topology, config, logger);
  const shared = await openTopologyCoordination(topology, config);
  const mirror = shared ? undefined : await startStoreHierarchyMirror({ store, config, logger });
  const coordination = shared ?? mirror!.coordination;
  const app = await buildApp(
    {
      coordination,
      store,
      logger,
      metrics,
      staleAfterMs: config.STALE_AFTER,
      readiness: {
        [topology.samples!]: () => store.ping(),
        ...(shared
          ? {
              [topology.coordination!]: async () => {
                await shared.revision();
              },
            }
          : {}),
      },
    },
    {
      version: VERSION,
      // The traditional API is REST-only, as in the guide's comparison.
      ...apiOptionsFromConfig(
        shared ? config : { ...config, ENABLE_GRAPHQL: false, ENABLE_WEBSOCKET: false },
        'api',
      ),
      auth: authFromConfig(config, store, logger),
    },
  );
  await app.listen({ host: config.HOST, port: config.PORT });
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : config.PORT;
  const scheme = config.TLS_CERT_FILE === undefined ? 'http' : 'https';
  const address = `${scheme}://${config.HOST === '0.0.0.0' ? hostname() : config.HOST}:${port}`;
  const registration = await maybeRegister(shared, 'api', config.SERVICE_ID, address);
  return {
    app,
    address,
    async close() {
      await app.close();
      await registration?.close();
      await mirror?.close();
      await shared?.close();
      await store.close();
    },
  };
}
