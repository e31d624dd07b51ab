/**
 * Composition root of embedded mode (the `start` command): the whole pipeline in one process, on the
 * backends of its `start` topology: in-process queue and coordination, and SQLite or PGlite samples
 * under DATA_DIR (or in memory), or PostgreSQL when DATABASE_URL / DB_HOST is set. The collector,
 * the API, and a streamer run per ingest call. The embedded store's data directory is locked to this
 * process; PostgreSQL needs no lock.
 */
import { hostname } from 'node:os';
import { registerService } from '../discovery/registry.js';
import { NexusError } from '../errors.js';
import { VERSION } from './version.js';
import { lockDataDir } from './data-dir-lock.js';
import type { FastifyInstance } from 'fastify';
import { apiOptionsFromConfig, buildApp } from '../api/app.js';
import { Collector } from '../collector/collector.js';
import { batchSizeFor, clusterName, queueDepthFor, type Config } from '../config/config.js';
import { queueRemoteWriteSink } from '../api/routes/remote-write.js';
import { authFromConfig } from '../api/auth/from-config.js';
import { HierarchyWriter } from '../hierarchy/writer.js';
import { createPipelineMetrics, type PipelineMetrics } from '../metrics/registry.js';
import type { Coordination } from '../ports/coordination.js';
import type { Queue } from '../ports/queue.js';
import type { SampleStore } from '../ports/sample-store.js';
import { housekeepingDuty, startRetentionLoop } from '../storage/retention.js';
import { ScrapeTargetBoard } from '../ingest/scrape.js';
import { runStreamer, type StreamInput, type StreamSummary } from '../streamer/streamer.js';
import { sleep } from '../util/backoff.js';
import type { Logger } from '../util/logger.js';
import { openProducerQueue, openTopologyCoordination, openTopologySampleStore } from './backends.js';
import { queueBackend, sampleStoreBackend } from './registry.js';
import { pgliteLeftBeside, resolveTopology, type Topology } from './topology.js';
import { embeddedStateFile, startAlerting, type Alerting } from '../alerting/from-config.js';

export interface EmbeddedRuntimeOptions {
  config: Config;
  logger: Logger;
  /** Listen on HOST:PORT (default true); false builds the app for inject() only. */
  listen?: boolean;
  /** A `start` topology; default: the one the configuration gives. */
  topology?: Topology;
  /** Time the alert rules are evaluated at (default now); tests on old data move it. */
  alertClock?: () => number;
}

export interface IngestOptions extends StreamInput {
  timestamps?: 'original' | 'now';
  progress?: boolean;
}

/** Options of {@link EmbeddedRuntime.scrape}. */
export interface ScrapeRunOptions {
  /** Stops scraping; what was scraped is stored before the call resolves. */
  signal?: AbortSignal;
  /** Scrape each target this many times, then stop (default: until `signal` aborts). */
  rounds?: number;
  progress?: boolean;
}

/** What one {@link EmbeddedRuntime.ingest} read, and what the store refused of it. */
export interface IngestSummary extends StreamSummary {
  refusedByStore: number;
}

/** A running embedded pipeline. */
export interface EmbeddedRuntime {
  readonly config: Config;
  /** What this runtime opened (in particular, which sample store: `sqlite`, `pglite` or `postgres`). */
  readonly topology: Topology;
  readonly coordination: Coordination;
  readonly queue: Queue;
  readonly store: SampleStore;
  readonly metrics: PipelineMetrics;
  readonly collector: Collector;
  readonly app: FastifyInstance;
  /** `http://host:port` when listening. */
  readonly address: string | undefined;
  /**
   * Stream a source through the queue and wait until the collector has stored all of it. The
   * summary's `refusedByStore` counts rows the store refused meanwhile (`unstorable_row`,
   * `conflicting_duplicate` dead letters), on top of the `badRows` refused while reading.
   */
  ingest(input: IngestOptions): Promise<IngestSummary>;
  /**
   * Scrape the configured SCRAPE_TARGETS every SCRAPE_INTERVAL until `signal` aborts (or `rounds`
   * are done), then wait until the collector has stored every scrape read.
   * @throws NexusError('CONFIG_INVALID') when SCRAPE_TARGETS is empty
   */
  scrape(options?: ScrapeRunOptions): Promise<IngestSummary>;
  /** Health of the scrape targets (present when SCRAPE_TARGETS is set). */
  readonly scrapeTargets: ScrapeTargetBoard | undefined;
  /** Alert rules evaluated in this process (docs/alerting.md). */
  readonly alerting: Alerting;
  /** Resolve once every queued batch has been acked. */
  drain(): Promise<void>;
  close(): Promise<void>;
}

/** Start the embedded pipeline (collector running, API listening unless `listen: false`). */
export async function startEmbedded(options: EmbeddedRuntimeOptions): Promise<EmbeddedRuntime> {
  const { config, logger } = options;
  const topology = options.topology ?? resolveTopology(config, 'start');
  if (topology.samples === 'sqlite' && pgliteLeftBeside(config)) {
    logger.warn(
      { dataDir: config.DATA_DIR },
      'DATA_DIR holds a PGlite database (pglite/) beside the SQLite one: serving SQLite; set EMBEDDED_STORE=pglite to serve the PGlite data instead',
    );
  }
  const metrics = createPipelineMetrics();
  // Before anything opens the store: a second process on this data directory stops here, touching
  // nothing. PostgreSQL (or an embedded store in memory) has no directory to lock.
  const lockDir =
    topology.samples === undefined ? undefined : sampleStoreBackend(topology.samples).exclusiveDir?.(config);
  const dirLock = lockDir === undefined ? undefined : await lockDataDir(lockDir);
  // What has been opened so far, closed in reverse order when a later step of start-up throws (a
  // rule file with an error, a bad TLS pair, a port in use), so an in-process caller leaks nothing.
  const opened: (() => Promise<unknown>)[] = [];
  if (dirLock) opened.push(() => dirLock.release());
  const undo = async (): Promise<void> => {
    for (const close of opened.reverse()) await close().catch(() => undefined);
  };
  try {
    return await startOpened();
  } catch (error) {
    await undo();
    throw error;
  }

  async function startOpened(): Promise<EmbeddedRuntime> {
    const store: SampleStore = await openTopologySampleStore(topology, config, logger);
    opened.push(() => store.close());
    // One in-process queue: the streamer publishes to it and the collector consumes it.
    const queue = await openProducerQueue(topology, config);
    opened.push(() => queue.close());
    const coordination = (await openTopologyCoordination(topology, config))!;
    opened.push(() => coordination.close());
    // This process evaluates the alert rules; a rule file with an error stops start-up here.
    const alerting: Alerting = await startAlerting({
      config,
      logger,
      store,
      coordination,
      stateFile: embeddedStateFile(config),
      clock: options.alertClock,
    });
    opened.push(() => alerting.close());

    const hierarchy = new HierarchyWriter({ coordination, minRoundIntervalMs: config.HIERARCHY_INTERVAL });
    await hierarchy.registerCluster({
      clusterId: config.CLUSTER_ID,
      name: clusterName(config),
      region: config.CLUSTER_REGION,
    });

    // The in-process hierarchy starts empty: rebuild it from the newest stored sample of each series,
    // so a restart on the same data directory serves the hierarchy before any new ingest.
    const latest = await store.latestSamples();
    if (latest.length > 0)
      await hierarchy.apply({ id: 'restore', source: 'store', samples: latest, deadLetters: [] });

    const collector = new Collector({
      queues: [queue],
      store,
      hierarchy,
      consumerId: config.COLLECTOR_ID,
      workers: config.WORKERS,
      pollIntervalMs: config.POLL_INTERVAL,
      logger,
      metrics,
    });
    collector.start();
    opened.push(() => collector.stop());
    // Raw samples past the hot window become compressed chunks (no retention here: RETENTION_* are
    // the collector's).
    const compaction = housekeepingDuty(store, { compactAfterMs: config.COMPACT_AFTER, logger });
    const housekeeping = compaction ? startRetentionLoop(compaction, { logger }) : undefined;
    if (housekeeping) opened.push(() => housekeeping.stop());

    // A targets file may list no target yet: its board still exists, and the file fills it.
    const scrapeTargets =
      config.SCRAPE_TARGETS.length === 0 && config.SCRAPE_TARGETS_FILE === undefined
        ? undefined
        : new ScrapeTargetBoard(config.SCRAPE_TARGETS, config.SCRAPE_INTERVAL, config.SCRAPE_TIMEOUT);
    const app = await buildApp(
      {
        coordination,
        store,
        logger,
        metrics,
        staleAfterMs: config.STALE_AFTER,
        readiness: {
          sampleStore: () => store.ping(),
          coordination: async () => {
            await coordination.revision();
          },
        },
      },
      {
        ...apiOptionsFromConfig(config, 'embedded'),
        auth: authFromConfig(config, store, logger),
        scrapeTargets,
        // Prometheus remote write (POST /api/v1/write), always on in embedded mode: batches on the
        // in-process queue, stored by the collector like any other source.
        remoteWrite: {
          clusterId: config.CLUSTER_ID,
          sink: queueRemoteWriteSink({
            queue,
            maxDepth: queueDepthFor(
              config,
              topology.produce !== undefined && queueBackend(topology.produce).shared ? 'shared' : 'embedded',
            ),
            batchSize: batchSizeFor(config, 'embedded'),
            metrics,
          }),
        },
      },
    );
    opened.push(() => app.close());
    let address: string | undefined;
    if (options.listen !== false) {
      await app.listen({ host: config.HOST, port: config.PORT });
      const bound = app.server.address();
      const port = typeof bound === 'object' && bound ? bound.port : config.PORT;
      const scheme = config.TLS_CERT_FILE === undefined ? 'http' : 'https';
      address = `${scheme}://${config.HOST === '0.0.0.0' ? 'localhost' : config.HOST}:${port}`;
    }

    const registrations = await Promise.all(
      (['collector', 'api'] as const).map((type) =>
        registerService(coordination, {
          type,
          id: type === 'api' ? config.SERVICE_ID : config.COLLECTOR_ID,
          address: type === 'api' ? (address ?? '') : '',
          version: VERSION,
          startedAt: new Date().toISOString(),
          health: 'ok',
          pid: process.pid,
          hostname: hostname(),
        }),
      ),
    );

    const depthTimer = setInterval(() => {
      queue.depth().then(
        (depth) => metrics.queueDepth.set(depth),
        () => undefined,
      );
    }, 1000);
    depthTimer.unref();

    const drain = async (): Promise<void> => {
      while ((await queue.depth()) > 0) await sleep(20);
    };

    const ingest = async (input: IngestOptions): Promise<IngestSummary> => {
      const refusedBefore = collector.stats.unstorable + collector.stats.conflicts;
      const summary = await runStreamer(input, {
        queue,
        clusterId: config.CLUSTER_ID,
        batchSize: batchSizeFor(config, 'embedded'),
        flushIntervalMs: config.FLUSH_INTERVAL,
        timestamps: input.timestamps ?? 'original',
        logger,
        metrics,
        progress: input.progress,
      });
      await drain();
      const refusedByStore = collector.stats.unstorable + collector.stats.conflicts - refusedBefore;
      return { ...summary, refusedByStore };
    };

    let closed = false;
    return {
      config,
      topology,
      coordination,
      queue,
      store,
      metrics,
      collector,
      app,
      address,
      ingest,
      scrapeTargets,
      alerting,
      async scrape(run = {}) {
        if (scrapeTargets === undefined)
          throw new NexusError(
            'CONFIG_INVALID',
            'nothing to scrape: set SCRAPE_TARGETS / --scrape or SCRAPE_TARGETS_FILE / --targets-file',
          );
        return ingest({
          spec: '',
          signal: run.signal,
          progress: run.progress,
          scrape: {
            targets: config.SCRAPE_TARGETS,
            intervalMs: config.SCRAPE_INTERVAL,
            timeoutMs: config.SCRAPE_TIMEOUT,
            bodyLimitBytes: config.SCRAPE_BODY_LIMIT,
            board: scrapeTargets,
            rounds: run.rounds,
          },
        });
      },
      drain,
      async close() {
        if (closed) return;
        closed = true;
        clearInterval(depthTimer);
        await app.close();
        await Promise.all(registrations.map((r) => r.close()));
        await collector.stop();
        await housekeeping?.stop();
        await alerting.close();
        await queue.close();
        await store.close();
        await coordination.close();
        await dirLock?.release();
      },
    };
  }
}
