#!/usr/bin/env node
/**
 * The `nexus-telemetry` command line: `start` (all-in-one), `streamer`, `collector`, `api`, `generate`,
 * `sync` (cross-cluster state sync).
 * Flags override environment variables, which override defaults (see docs/configuration.md).
 */
import { Command, Option } from 'commander';
import { loadConfig, type Config } from '../config/config.js';
import { NexusError } from '../errors.js';
import { parseFaults } from '../generate/faults.js';
import { writeDcgmCsv, type GeneratorOptions } from '../generate/generator.js';
import { parseDuration } from '../config/duration.js';
import { bundledSamplePath } from '../runtime/bundled-sample.js';
import { followTargetsFile, logHealthChanges, TargetsFileError } from '../ingest/targets-file.js';
import { startEmbedded } from '../runtime/embedded.js';
import { createLogger, type Logger } from '../util/logger.js';
import { queueKinds } from '../runtime/registry.js';
import { runStreamerProcess, startApiProcess, startCollectorProcess } from '../runtime/roles.js';
import { resolveTopology } from '../runtime/topology.js';
import { checkBind, checkTokensReachable } from '../api/auth/from-config.js';
import { parseScopes } from '../auth/scopes.js';
import { tokenStoreOf, type TokenRecord, type TokenStore } from '../auth/token-store.js';
import { openTopologySampleStore } from '../runtime/backends.js';
import { lockDataDir } from '../runtime/data-dir-lock.js';
import { sampleStoreBackend } from '../runtime/registry.js';

const program = new Command();
program
  .name('nexus-telemetry')
  .description(
    'GPU telemetry pipeline: DCGM CSV -> queue -> collector -> live hierarchy + time series -> API',
  )
  .version('0.1.0');

/** Flags shared by the commands that run pipeline parts; each maps to an environment variable. */
function withCommonFlags(command: Command): Command {
  return command
    .option('--cluster-id <id>', 'cluster id (CLUSTER_ID)')
    .option('--host <address>', 'API bind address (HOST)')
    .option('--port <port>', 'API port (PORT)')
    .option('--data-dir <dir>', 'where embedded data lives (DATA_DIR)')
    .option('--memory', 'keep nothing on disk (MEMORY=true)')
    .option('--batch-size <rows>', 'rows per queued batch (BATCH_SIZE)')
    .option('--workers <n>', 'concurrent batch handlers (WORKERS)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (LOG_LEVEL)');
}

/** The source argument and the flags of commands that read DCGM CSV (`start`, `streamer`). */
function withSourceFlags(command: Command): Command {
  return command
    .argument('[source]', 'CSV file, directory of *.csv files, or - for stdin', bundledSamplePath())
    .option('--follow', 'keep reading a growing file')
    .option('--loop', 'replay the source forever')
    .addOption(
      new Option('--timestamps <mode>', 'keep the CSV timestamps or restamp rows')
        .choices(['original', 'now'])
        .default('original'),
    );
}

/** The scrape flags of `start` and `streamer`; each maps to an environment variable. */
function withScrapeFlags(command: Command): Command {
  return command
    .option(
      '--scrape <url>',
      'scrape this Prometheus exposition endpoint (dcgm-exporter /metrics) instead of reading a source; repeatable (SCRAPE_TARGETS)',
      (url: string, previous: string[] | undefined) => [...(previous ?? []), url],
    )
    .option(
      '--targets-file <path>',
      'also scrape the targets of this Prometheus file_sd file (JSON, or YAML for .yml/.yaml), reloaded when it changes (SCRAPE_TARGETS_FILE)',
    )
    .option(
      '--scrape-interval <duration>',
      'time between two scrapes of a target, default 10s (SCRAPE_INTERVAL)',
    )
    .option('--scrape-timeout <duration>', 'longest one scrape may take, default 5s (SCRAPE_TIMEOUT)');
}

interface ScrapeFlags {
  scrape?: string[];
  targetsFile?: string;
  scrapeInterval?: string;
  scrapeTimeout?: string;
}

/** The scrape settings of the flags, as configuration overrides. */
function scrapeOverrides(flags: ScrapeFlags, targets = flags.scrape?.join(',')) {
  return {
    SCRAPE_TARGETS: targets,
    SCRAPE_TARGETS_FILE: flags.targetsFile,
    SCRAPE_INTERVAL: flags.scrapeInterval,
    SCRAPE_TIMEOUT: flags.scrapeTimeout,
  };
}

/** The targets file's first read failed: a configuration error naming the file and the reason. */
function targetsFileInvalid(error: unknown): never {
  if (error instanceof TargetsFileError)
    throw new NexusError('CONFIG_INVALID', error.message, {
      details: { variable: 'SCRAPE_TARGETS_FILE' },
    });
  throw error;
}

/** Scraping replaces the source argument (and --follow / --loop). */
function checkScrapeReplacesSource(source: string, flags: { follow?: boolean; loop?: boolean }): void {
  if (source !== bundledSamplePath() || flags.follow || flags.loop) {
    throw new NexusError(
      'CONFIG_INVALID',
      'scraping (--scrape / --targets-file / SCRAPE_TARGETS / SCRAPE_TARGETS_FILE) replaces the source: give either a source or scrape targets',
    );
  }
}

interface CommonFlags {
  clusterId?: string;
  host?: string;
  port?: string;
  dataDir?: string;
  memory?: boolean;
  batchSize?: string;
  workers?: string;
  logLevel?: string;
}

function configFrom(flags: CommonFlags, extra: Parameters<typeof loadConfig>[1] = {}): Config {
  return loadConfig(process.env, {
    ...extra,
    CLUSTER_ID: flags.clusterId,
    HOST: flags.host,
    PORT: flags.port,
    DATA_DIR: flags.dataDir,
    MEMORY: flags.memory,
    BATCH_SIZE: flags.batchSize,
    WORKERS: flags.workers,
    LOG_LEVEL: flags.logLevel,
  });
}

withScrapeFlags(withSourceFlags(withCommonFlags(program.command('start'))))
  .description(
    'run the whole pipeline in one process (embedded mode; samples in SQLite (EMBEDDED_STORE: PGlite for a data directory that holds one), or PostgreSQL when DATABASE_URL or DB_HOST is set) and ingest a source (default: the bundled sample)',
  )
  .option('--no-ingest', 'serve the API on stored data without ingesting')
  .option(
    '--insecure-no-auth',
    'serve a non-loopback HOST without authentication (INSECURE_NO_AUTH=true; warns every minute)',
  )
  .action(
    async (
      source: string,
      flags: CommonFlags &
        ScrapeFlags & {
          follow?: boolean;
          loop?: boolean;
          timestamps: 'original' | 'now';
          ingest: boolean;
          insecureNoAuth?: boolean;
        },
    ) => {
      const startOverrides = (targets?: string) => ({
        ...scrapeOverrides(flags, targets),
        INSECURE_NO_AUTH: flags.insecureNoAuth,
      });
      let config = configFrom(startBind(flags), startOverrides());
      const logger = createLogger(config.LOG_LEVEL);
      // A targets file: its first read joins the static targets before the runtime starts (the
      // runtime's target board and /api/v1/targets come from SCRAPE_TARGETS), then it is followed.
      const follower =
        config.SCRAPE_TARGETS_FILE === undefined
          ? undefined
          : await followTargetsFile(config.SCRAPE_TARGETS_FILE, config.SCRAPE_TARGETS, logger).catch(
              targetsFileInvalid,
            );
      // A file without targets yet is fine, as in Prometheus: the scrape waits for the file to list some.
      if (follower !== undefined && follower.initial.length > 0)
        config = configFrom(startBind(flags), startOverrides(follower.initial.join(',')));
      const scraping = config.SCRAPE_TARGETS.length > 0 || follower !== undefined;
      if (scraping) checkScrapeReplacesSource(source, flags);
      const topology = resolveTopology(config, 'start');
      checkTokensReachable(config);
      const stopWarning = checkBind(config, logger);
      const runtime = await startEmbedded({ config, logger, topology });
      if (runtime.scrapeTargets !== undefined) {
        runtime.scrapeTargets.onHealthChange = logHealthChanges(logger);
        follower?.attach(runtime.scrapeTargets);
      }
      const abort = new AbortController();
      let ingesting: Promise<unknown> = Promise.resolve();
      // A signal stops reading; what was read is stored (the ingest drains the queue) before closing.
      onSignals(async () => {
        abort.abort();
        follower?.close();
        stopWarning();
        await ingesting.catch(() => undefined);
        await runtime.close();
      }, logger);

      print(
        `nexus-telemetry API listening on ${runtime.address} (cluster ${config.CLUSTER_ID}, ${storeWhere(topology.samples, config)})`,
      );
      if (flags.ingest && scraping) {
        print(
          `scraping ${config.SCRAPE_TARGETS.length > 0 ? config.SCRAPE_TARGETS.join(', ') : `the targets of ${config.SCRAPE_TARGETS_FILE} (none yet)`} every ${config.SCRAPE_INTERVAL / 1000} s (targets: ${runtime.address}/api/v1/targets) ...`,
        );
        const run = runtime.scrape({ signal: abort.signal, progress: true });
        ingesting = run;
        const summary = await run.finally(() => follower?.close());
        print(
          `stopped scraping: ingested ${summary.rows.toLocaleString('en-US')} rows (${summary.badRows + summary.refusedByStore} bad) in ${summary.seconds.toFixed(1)} s; every good row read is stored`,
        );
        return;
      }
      if (flags.ingest) {
        print(
          `ingesting ${source}${flags.follow ? ' (following)' : ''}${flags.loop ? ' (looping)' : ''} ...`,
        );
        const started = performance.now();
        const run = runtime.ingest({
          spec: source,
          follow: flags.follow,
          loop: flags.loop,
          timestamps: flags.timestamps,
          signal: abort.signal,
          progress: true,
        });
        ingesting = run;
        let summary;
        try {
          summary = await run;
        } catch (error) {
          // An unreadable source: close the store cleanly before the error is printed.
          if (!abort.signal.aborted) await runtime.close();
          throw error;
        }
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        if (abort.signal.aborted) {
          // Shutting down: the API is closing, so report without asking it.
          print(
            `stopped: ingested ${summary.rows.toLocaleString('en-US')} rows (${summary.badRows + summary.refusedByStore} bad) in ${seconds} s before the signal; every good row read is stored`,
          );
          return;
        }
        const stored = await runtime.store.countSamples();
        // With authentication on, the in-process request has no token: the counts are left out.
        const clusters = await runtime.app.inject({
          method: 'GET',
          url: `/api/v1/clusters/${encodeURIComponent(config.CLUSTER_ID)}`,
        });
        const meta =
          clusters.statusCode === 200
            ? (clusters.json() as { metadata?: { total_hosts: number; total_gpus: number } }).metadata
            : undefined;
        print(
          `ingested ${summary.rows.toLocaleString('en-US')} rows (${summary.badRows + summary.refusedByStore} bad, see /api/v1/dead-letters) in ${seconds} s (read and stored); ` +
            `${stored.toLocaleString('en-US')} samples stored` +
            (clusters.statusCode === 401
              ? ''
              : `; cluster ${config.CLUSTER_ID}: ${meta?.total_hosts ?? 0} hosts, ${meta?.total_gpus ?? 0} GPUs`),
        );
      }
      if (abort.signal.aborted) return;
      print(
        `try: curl ${runtime.address}/api/v1/clusters/${encodeURIComponent(config.CLUSTER_ID)}   (Ctrl-C to stop)`,
      );
    },
  );

program
  .command('generate')
  .description('write realistic DCGM CSV at any scale (deterministic for a seed)')
  .requiredOption('-o, --out <file>', 'output CSV path')
  .option('--hosts <n>', 'number of hosts', '4')
  .option('--gpus-per-host <n>', 'GPUs per host', '8')
  .option('--metrics <n>', 'metrics per GPU (the sample has 10)', '10')
  .option('--interval <duration>', 'time between scrapes of one GPU, e.g. 1s, 10s', '10s')
  .option('--duration <duration>', 'time span covered, e.g. 1h (default: one scrape)')
  .option('--rows <n>', 'stop after exactly this many rows')
  .option('--start <time>', 'RFC 3339 time of the first scrape', '2025-07-18T20:42:34Z')
  .option('--seed <n>', 'random seed', '1')
  .option('--host-prefix <prefix>', 'host names are <prefix>001, <prefix>002, ...')
  .option('--workload-fraction <f>', 'fraction of jobs with container/pod/namespace attribution', '0')
  .option(
    '--faults <spec>',
    'inject faults: <kind>:<host>/<gpu>@<from>-<to>[:key=value,...] joined by ";" (docs/alerting.md)',
  )
  .action(async (flags: Record<string, string | undefined>) => {
    const options: GeneratorOptions = {
      hosts: positiveInt('--hosts', flags.hosts),
      gpusPerHost: positiveInt('--gpus-per-host', flags.gpusPerHost),
      metrics: positiveInt('--metrics', flags.metrics),
      intervalMs: durationFlag('--interval', flags.interval),
      durationMs: flags.duration === undefined ? undefined : durationFlag('--duration', flags.duration),
      rows: flags.rows === undefined ? undefined : positiveInt('--rows', flags.rows),
      start: flags.start,
      seed: positiveInt('--seed', flags.seed),
      hostPrefix: flags.hostPrefix,
      workloadFraction: Number(flags.workloadFraction),
      faults: flags.faults === undefined ? undefined : parseFaults(flags.faults),
    };
    const started = Date.now();
    const result = await writeDcgmCsv(flags.out!, options);
    print(
      `wrote ${result.rows.toLocaleString('en-US')} rows (${(result.bytes / 1048576).toFixed(1)} MiB) to ${flags.out} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  });

function positiveInt(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0)
    throw new NexusError('CONFIG_INVALID', `${flag} must be a whole number, got "${text}"`);
  return n;
}

function durationFlag(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseDuration(text);
  if (ms === undefined || ms <= 0)
    throw new NexusError('CONFIG_INVALID', `${flag} must be a duration like 10s or 1h, got "${text}"`);
  return ms;
}

/** `--queue`: its choices are the queue kinds of the backend registry. */
const queueOption = (): Option =>
  new Option(
    '--queue <kind>',
    'queue backend (default: etcd in nexus mode (ETCD_ENDPOINTS set), else Redis when REDIS_URL is set)',
  ).choices(queueKinds());

/** On SIGINT/SIGTERM run `close`, then exit 0 (1 if it failed); a second signal exits at once. */
function onSignals(close: () => Promise<void>, logger: Logger): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // A second signal: the operator does not want to wait for the drain.
      logger.warn({ signal }, 'second signal: exiting without finishing the shutdown');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

withScrapeFlags(withSourceFlags(withCommonFlags(program.command('streamer'))))
  .description(
    'read DCGM CSV (or scrape dcgm-exporter targets, or receive Prometheus remote write) and publish batches to the shared queue (etcd or Redis)',
  )
  .addOption(queueOption())
  .option(
    '--remote-write-port <port>',
    'also receive Prometheus remote write at POST /api/v1/write on this port; without a source or targets, only receive (REMOTE_WRITE_PORT)',
  )
  .option(
    '--insecure-no-auth',
    'receive remote write on a non-loopback HOST without authentication (INSECURE_NO_AUTH=true; warns every minute)',
  )
  .action(
    async (
      source: string,
      flags: CommonFlags &
        ScrapeFlags & {
          follow?: boolean;
          loop?: boolean;
          timestamps: 'original' | 'now';
          queue?: string;
          remoteWritePort?: string;
          insecureNoAuth?: boolean;
        },
    ) => {
      const config = configFrom(flags, {
        ...scrapeOverrides(flags),
        REMOTE_WRITE_PORT: flags.remoteWritePort,
        INSECURE_NO_AUTH: flags.insecureNoAuth,
      });
      const scraping = config.SCRAPE_TARGETS.length > 0 || config.SCRAPE_TARGETS_FILE !== undefined;
      if (scraping) checkScrapeReplacesSource(source, flags);
      // A receiver given no source of its own reads none (the default source is the bundled sample).
      const receiveOnly =
        config.REMOTE_WRITE_PORT !== undefined &&
        !scraping &&
        source === bundledSamplePath() &&
        !flags.follow &&
        !flags.loop;
      const topology = resolveTopology(config, 'streamer', { queue: flags.queue });
      const logger = createLogger(config.LOG_LEVEL);
      // The receiver is the streamer's one port that takes data from the network: same rule as the API.
      const stopWarning =
        config.REMOTE_WRITE_PORT === undefined
          ? () => undefined
          : checkBind(config, logger, {
              service: 'the remote write receiver serves every interface',
              risk: 'anyone who reaches the port can write samples',
            });
      const abort = new AbortController();
      let running: Promise<unknown> = Promise.resolve();
      // A signal stops reading; the batches read so far are published before the process exits.
      onSignals(async () => {
        abort.abort();
        await running.catch(() => undefined);
      }, logger);
      if (scraping) {
        print(
          `scraping ${[...config.SCRAPE_TARGETS, ...(config.SCRAPE_TARGETS_FILE ? [`the targets of ${config.SCRAPE_TARGETS_FILE}`] : [])].join(', ')} every ${config.SCRAPE_INTERVAL / 1000} s ...`,
        );
      }
      const run = runStreamerProcess(config, logger, {
        spec: scraping ? '' : source,
        follow: flags.follow,
        loop: flags.loop,
        timestamps: flags.timestamps,
        topology,
        signal: abort.signal,
        progress: true,
        scrape: scraping
          ? {
              targets: config.SCRAPE_TARGETS,
              intervalMs: config.SCRAPE_INTERVAL,
              timeoutMs: config.SCRAPE_TIMEOUT,
              bodyLimitBytes: config.SCRAPE_BODY_LIMIT,
            }
          : undefined,
        targetsFile: config.SCRAPE_TARGETS_FILE,
        receiveOnly,
      }).catch(targetsFileInvalid);
      // The signal handler waits for `running` and then exits; the summary below is printed first
      // because this await is registered before the handler's.
      const finished = run.finally(stopWarning);
      running = finished;
      const summary = await finished;
      print(
        `published ${summary.rows.toLocaleString('en-US')} rows (${summary.badRows} bad) in ${summary.batches} batches, ${summary.rowsPerSecond.toLocaleString('en-US')} rows/s`,
      );
    },
  );

withCommonFlags(program.command('collector'))
  .description('consume the shared queue(s), write samples to PostgreSQL and the live hierarchy to etcd')
  .addOption(queueOption())
  .action(async (flags: CommonFlags & { queue?: string }) => {
    const config = configFrom(flags);
    const topology = resolveTopology(config, 'collector', { queue: flags.queue });
    const logger = createLogger(config.LOG_LEVEL);
    const running = await startCollectorProcess(config, logger, { topology });
    onSignals(() => running.close(), logger);
    print(`collector ${config.COLLECTOR_ID} consuming ${running.queues.map((q) => q.topic).join(', ')}`);
  });

withCommonFlags(program.command('api'))
  .description('serve the REST API from etcd (nexus) or from PostgreSQL alone (--traditional)')
  .option('--traditional', 'REST-only API on PostgreSQL, no etcd (same as ENABLE_NEXUS=false)')
  .option(
    '--insecure-no-auth',
    'serve a non-loopback HOST without authentication (INSECURE_NO_AUTH=true; warns every minute)',
  )
  .action(async (flags: CommonFlags & { traditional?: boolean; insecureNoAuth?: boolean }) => {
    const config = configFrom(flags, { INSECURE_NO_AUTH: flags.insecureNoAuth });
    const topology = resolveTopology(config, 'api', { traditional: flags.traditional });
    const logger = createLogger(config.LOG_LEVEL);
    checkBind(config, logger);
    const running = await startApiProcess(config, logger, { topology });
    onSignals(() => running.close(), logger);
    print(`nexus-telemetry API listening on ${running.address}`);
  });

/** `start` binds 127.0.0.1 unless --host or HOST says otherwise (docs/security.md). */
function startBind<F extends CommonFlags>(flags: F): F {
  const hostSet = flags.host !== undefined || (process.env.HOST ?? '') !== '';
  return hostSet ? flags : { ...flags, host: '127.0.0.1' };
}

/** Where `start` keeps samples, for its first line: the store and its place (EMBEDDED_STORE=auto decided). */
function storeWhere(samples: string | undefined, config: Config): string {
  if (samples === 'postgres') return 'samples in PostgreSQL';
  const name = samples === 'pglite' ? 'PGlite' : 'SQLite';
  return config.MEMORY ? `samples in ${name}, in memory` : `samples in ${name} under ${config.DATA_DIR}`;
}

/**
 * Run `fn` on the token store of the configured sample store (SQLite or PGlite under DATA_DIR, or PostgreSQL),
 * migrated first. An embedded data directory in use by `start` is refused (DATA_DIR_LOCKED):
 * the running server's admin endpoints do the same job then.
 */
async function withTokenStore<T>(flags: CommonFlags, fn: (tokens: TokenStore) => Promise<T>): Promise<T> {
  const config = configFrom(flags);
  const logger = createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL);
  const topology = resolveTopology(config, 'start');
  const lockDir =
    topology.samples === undefined ? undefined : sampleStoreBackend(topology.samples).exclusiveDir?.(config);
  const dirLock =
    lockDir === undefined
      ? undefined
      : await lockDataDir(lockDir).catch((error: unknown) => {
          if (error instanceof NexusError && error.code === 'DATA_DIR_LOCKED')
            throw new NexusError(
              'DATA_DIR_LOCKED',
              `${error.message}; while it runs, manage tokens through its API with an admin token: POST/GET /api/v1/tokens, DELETE /api/v1/tokens/<id> (docs/security.md)`,
              { details: error.details },
            );
          throw error;
        });
  try {
    const store = await openTopologySampleStore(topology, config, logger);
    try {
      await store.migrate();
      const tokens = tokenStoreOf(store);
      if (tokens === undefined)
        throw new NexusError(
          'CONFIG_INVALID',
          'API tokens need a sample store that keeps them (PGlite, SQLite or PostgreSQL)',
        );
      return await fn(tokens);
    } finally {
      await store.close();
    }
  } finally {
    await dirLock?.release();
  }
}

function tokenLine(record: TokenRecord): string {
  return [
    record.id,
    record.name,
    record.scopes.join(','),
    record.createdAt,
    record.revokedAt === undefined ? 'valid' : `revoked ${record.revokedAt}`,
  ].join('\t');
}

const tokenCommand = program
  .command('token')
  .description('API tokens (AUTH=token): create, list, revoke; stored hashed in the sample store');

withCommonFlags(tokenCommand.command('create'))
  .description('create an API token and print it once (only its hash is kept)')
  .requiredOption('--name <name>', 'a name for the token, e.g. grafana')
  .option('--scope <scopes>', 'read, write, admin, comma-separated (admin grants every scope)', 'read')
  .action(async (flags: CommonFlags & { name: string; scope: string }) => {
    const scopes = parseScopes(flags.scope);
    const { token, record } = await withTokenStore(flags, (tokens) => tokens.create(flags.name, scopes));
    process.stderr.write(
      `created token ${record.id} "${record.name}" (${record.scopes.join(', ')}); it is shown only now:\n`,
    );
    print(token);
  });

withCommonFlags(tokenCommand.command('list'))
  .description('list API tokens (id, name, scopes, created, state); never their text')
  .option('--all', 'include revoked tokens')
  .action(async (flags: CommonFlags & { all?: boolean }) => {
    const records = await withTokenStore(flags, (tokens) => tokens.list({ includeRevoked: flags.all }));
    print(['id', 'name', 'scopes', 'created', 'state'].join('\t'));
    for (const record of records) print(tokenLine(record));
  });

withCommonFlags(tokenCommand.command('revoke'))
  .description('revoke an API token by id or name (API processes refuse it within a second)')
  .argument('<id-or-name>', 'the token id or name')
  .action(async (idOrName: string, flags: CommonFlags) => {
    const record = await withTokenStore(flags, (tokens) => tokens.revoke(idOrName));
    if (record === undefined)
      throw new NexusError('NOT_FOUND', `no valid token with id or name "${idOrName}"`);
    print(`revoked ${tokenLine(record)}`);
  });

program
  .command('sync')
  .description(
    "mirror one cluster's live hierarchy from one etcd to another, one way (puts and deletes), resuming from its last revision",
  )
  .requiredOption('--from <endpoints>', 'source etcd endpoints, host:port[,host:port...]')
  .requiredOption('--to <endpoints>', 'target (shared) etcd endpoints')
  .option('--cluster <id>', 'cluster to mirror (default CLUSTER_ID)')
  .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (LOG_LEVEL)')
  .action(async (flags: { from: string; to: string; cluster?: string; logLevel?: string }) => {
    const config = loadConfig(process.env, { CLUSTER_ID: flags.cluster, LOG_LEVEL: flags.logLevel });
    const logger = createLogger(config.LOG_LEVEL);
    const { startSyncProcess } = await import('../sync/process.js');
    const running = await startSyncProcess({
      config,
      from: flags.from,
      to: flags.to,
      clusterId: config.CLUSTER_ID,
      logger,
    });
    onSignals(() => running.close(), logger);
    print(`syncing cluster ${config.CLUSTER_ID} from ${flags.from} to ${flags.to}`);
  });

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

program.parseAsync(process.argv).catch((error: unknown) => {
  const message =
    error instanceof NexusError
      ? `${error.code}: ${error.message}`
      : String(error instanceof Error ? (error.stack ?? error) : error);
  process.stderr.write(`nexus-telemetry: ${message}\n`);
  process.exit(error instanceof NexusError && error.code === 'CONFIG_INVALID' ? 2 : 1);
});
