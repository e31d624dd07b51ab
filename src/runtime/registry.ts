/**
 * The backend registry: one table per port (queue, coordination, sample store), keyed by backend
 * kind. A row says what the backend needs from the configuration, whether separate processes can
 * share it, and how to open it; `open` imports the adapter dynamically, so a process loads only the
 * client libraries (etcd3, ioredis, pg, PGlite, node-sqlite3-wasm) of the backends it opens.
 *
 * Everything else that names backends comes from here: the topology (`topology.ts`) checks kinds
 * and their needs against it, the openers (`backends.ts`) open through it, the CLI offers
 * `queueKinds()` as the `--queue` choices, and docs/configuration.md lists these rows (a test keeps
 * them in step). A new backend is one adapter and one `register*Backend` call.
 */
import { join } from 'node:path';
import type { EmbeddedCoordination } from '../adapters/embedded/coordination.js';
import type { EtcdCoordination } from '../adapters/etcd/coordination.js';
import type { Config } from '../config/config.js';
import { NexusError } from '../errors.js';
import type { Coordination } from '../ports/coordination.js';
import type { Queue, QueueOptions } from '../ports/queue.js';
import type { SampleStore } from '../ports/sample-store.js';
import type { Logger } from '../util/logger.js';

/** A configuration variable (its environment name). */
export type ConfigVariable = keyof Config;

/** One requirement of a backend: a variable that must be set, or alternatives of which one must be. */
export type Need = ConfigVariable | readonly ConfigVariable[];

/** The ports that have backends. */
export type BackendPort = 'queue' | 'coordination' | 'sample store';

/** What every registry row says about its backend. */
export interface BackendInfo {
  /** Registry key, as typed after `--queue`: lower case letters, digits and `-`. */
  readonly kind: string;
  /** Variables the backend cannot open without (checked before `open`). */
  readonly needs: readonly Need[];
  /** True when separate processes reach the same backend; false when it lives inside one process. */
  readonly shared: boolean;
  /** One line for docs and messages. */
  readonly summary: string;
}

/** A queue backend. */
export interface QueueBackend extends BackendInfo {
  /**
   * Topics a collector consumes on this backend (a streamer publishes to the first). Default:
   * `['telemetry']`.
   */
  topics?(config: Config): string[];
  /** Open a handle on the topic `options.topic`; `options` are the port's settings. */
  open(config: Config, options: QueueOptions): Promise<Queue>;
}

/** A coordination (live state) backend. */
export interface CoordinationBackend extends BackendInfo {
  open(config: Config): Promise<Coordination>;
}

/** A sample store backend. `open` returns the store unmigrated; the opener applies migrations. */
export interface SampleStoreBackend extends BackendInfo {
  /**
   * A directory only one process may use at a time, or undefined. The runtime holds the data-dir
   * lock (`data-dir-lock.ts`) on it from before `open` until the store is closed.
   */
  exclusiveDir?(config: Config): string | undefined;
  open(config: Config, logger: Logger): Promise<SampleStore>;
}

/** What the built-in coordination kinds open to (type only: nothing is loaded by naming them). */
export interface CoordinationKinds {
  embedded: EmbeddedCoordination;
  etcd: EtcdCoordination;
}

/** Redis topics from REDIS_TOPICS (comma-separated, blanks dropped). */
export function redisTopics(config: Config): string[] {
  return config.REDIS_TOPICS.split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

const queues = new Map<string, QueueBackend>();
const coordinations = new Map<string, CoordinationBackend>();
const sampleStores = new Map<string, SampleStoreBackend>();

function register<T extends BackendInfo>(table: Map<string, T>, port: BackendPort, backend: T): void {
  if (!/^[a-z][a-z0-9-]*$/.test(backend.kind)) {
    throw new NexusError(
      'CONFIG_INVALID',
      `${port} backend kind "${backend.kind}" must be lower case letters, digits and -`,
    );
  }
  if (table.has(backend.kind)) {
    throw new NexusError('CONFIG_INVALID', `a ${port} backend "${backend.kind}" is already registered`);
  }
  table.set(backend.kind, Object.freeze({ ...backend }));
}

/** Add a queue backend; rejects (CONFIG_INVALID) a malformed or already registered kind. */
export function registerQueueBackend(backend: QueueBackend): void {
  register(queues, 'queue', backend);
}

/** Add a coordination backend; rejects (CONFIG_INVALID) a malformed or already registered kind. */
export function registerCoordinationBackend(backend: CoordinationBackend): void {
  register(coordinations, 'coordination', backend);
}

/** Add a sample store backend; rejects (CONFIG_INVALID) a malformed or already registered kind. */
export function registerSampleStoreBackend(backend: SampleStoreBackend): void {
  register(sampleStores, 'sample store', backend);
}

function lookup<T>(table: Map<string, T>, port: BackendPort, kind: string): T {
  const backend = table.get(kind);
  if (backend === undefined) {
    throw new NexusError(
      'CONFIG_INVALID',
      `unknown ${port} backend "${kind}" (registered: ${[...table.keys()].join(', ')})`,
      { details: { kind } },
    );
  }
  return backend;
}

/** The queue backend of `kind`; CONFIG_INVALID naming the registered kinds when there is none. */
export function queueBackend(kind: string): QueueBackend {
  return lookup(queues, 'queue', kind);
}

/** The coordination backend of `kind`; CONFIG_INVALID when there is none. */
export function coordinationBackend(kind: string): CoordinationBackend {
  return lookup(coordinations, 'coordination', kind);
}

/** The sample store backend of `kind`; CONFIG_INVALID when there is none. */
export function sampleStoreBackend(kind: string): SampleStoreBackend {
  return lookup(sampleStores, 'sample store', kind);
}

/** Registered queue kinds, in registration order (the CLI's `--queue` choices). */
export function queueKinds(): string[] {
  return [...queues.keys()];
}

/** Every registered backend with its port, in registration order (queues, coordination, stores). */
export function listBackends(): (BackendInfo & { port: BackendPort })[] {
  return [
    ...[...queues.values()].map((b) => ({ port: 'queue' as const, ...b })),
    ...[...coordinations.values()].map((b) => ({ port: 'coordination' as const, ...b })),
    ...[...sampleStores.values()].map((b) => ({ port: 'sample store' as const, ...b })),
  ];
}

/** The needs as docs/configuration.md writes them: "`A`, `B` or `C`"; "none" when there are none. */
export function needsText(needs: readonly Need[]): string {
  if (needs.length === 0) return 'none';
  return needs
    .map((need) => (typeof need === 'string' ? [need] : need).map((v) => `\`${v}\``).join(' or '))
    .join(', ');
}

/** Needs of `backend` that `config` leaves unset. */
export function missingNeeds(backend: BackendInfo, config: Config): Need[] {
  const set = (variable: ConfigVariable): boolean => {
    const value = config[variable];
    return value !== undefined && value !== '';
  };
  return backend.needs.filter((need) => (typeof need === 'string' ? !set(need) : !need.some(set)));
}

/** Throw CONFIG_INVALID ("the etcd queue needs ETCD_ENDPOINTS") unless every need is met. */
export function requireNeeds(backend: BackendInfo, port: BackendPort, config: Config): void {
  const missing = missingNeeds(backend, config);
  if (missing.length === 0) return;
  const first = missing[0]!;
  throw new NexusError(
    'CONFIG_INVALID',
    `the ${backend.kind} ${port} needs ${needsText(missing).replaceAll('`', '')}`,
    { details: { variable: typeof first === 'string' ? first : first[0], kind: backend.kind } },
  );
}

/** Topics the collector consumes on queue `kind`. */
export function queueTopics(kind: string, config: Config): string[] {
  return queueBackend(kind).topics?.(config) ?? ['telemetry'];
}

/** Open queue `kind` on `options.topic`, after checking its needs. */
export async function openQueue(kind: string, config: Config, options: QueueOptions): Promise<Queue> {
  const backend = queueBackend(kind);
  requireNeeds(backend, 'queue', config);
  return backend.open(config, options);
}

/** Open coordination `kind`, after checking its needs; built-in kinds resolve to their adapter type. */
export async function openCoordination<K extends string>(
  kind: K,
  config: Config,
): Promise<K extends keyof CoordinationKinds ? CoordinationKinds[K] : Coordination> {
  const backend = coordinationBackend(kind);
  requireNeeds(backend, 'coordination', config);
  return (await backend.open(config)) as K extends keyof CoordinationKinds
    ? CoordinationKinds[K]
    : Coordination;
}

/** Open sample store `kind` (unmigrated), after checking its needs. */
export async function openSampleStore(kind: string, config: Config, logger: Logger): Promise<SampleStore> {
  const backend = sampleStoreBackend(kind);
  requireNeeds(backend, 'sample store', config);
  return backend.open(config, logger);
}

registerQueueBackend({
  kind: 'embedded',
  needs: [],
  shared: false,
  summary: 'in-process queue of the `start` command; nothing survives the process',
  topics: () => ['telemetry'],
  async open(_config, options) {
    const { createEmbeddedQueue } = await import('../adapters/embedded/queue.js');
    return createEmbeddedQueue(options);
  },
});

registerQueueBackend({
  kind: 'etcd',
  needs: ['ETCD_ENDPOINTS'],
  shared: true,
  summary: 'one etcd key per batch under `/telemetry/queue/{CLUSTER_ID}/batches/` (nexus mode)',
  topics: () => ['batches'],
  async open(config, options) {
    const { createEtcdQueue } = await import('../adapters/etcd/queue.js');
    const { etcdConnectionOptions } = await import('../adapters/etcd/client.js');
    return createEtcdQueue({
      ...options,
      endpoints: config.ETCD_ENDPOINTS!,
      client: etcdConnectionOptions(config),
      clusterId: config.CLUSTER_ID,
      watch: config.ENABLE_WATCH_API,
      pollIntervalMs: config.POLL_INTERVAL,
    });
  },
});

registerQueueBackend({
  kind: 'redis',
  needs: ['REDIS_URL'],
  shared: true,
  summary: 'Redis lists, one per topic of `REDIS_TOPICS` (traditional mode; the reliable-queue pattern)',
  topics: redisTopics,
  async open(config, options) {
    const { createRedisQueue } = await import('../adapters/redis/queue.js');
    return createRedisQueue({ ...options, url: config.REDIS_URL!, tlsCaFile: config.REDIS_TLS_CA });
  },
});

registerQueueBackend({
  kind: 'nats',
  needs: ['NATS_URL'],
  shared: true,
  summary:
    'NATS JetStream work-queue stream `NEXUS_telemetry`, read by the durable pull consumer `collectors`',
  topics: () => ['telemetry'],
  async open(config, options) {
    const { createNatsQueue } = await import('../adapters/nats/queue.js');
    return createNatsQueue({
      ...options,
      servers: config.NATS_URL!,
      replicas: config.NATS_STREAM_REPLICAS,
      user: config.NATS_USER,
      password: config.NATS_PASSWORD,
    });
  },
});

/**
 * Watch-history events the embedded coordination store keeps: as many as the API's event ring
 * (EVENT_HISTORY), at least 1,000. The history holds every store write and the ring only the
 * hierarchy's, so it reaches no further back than the ring: in `start` a subscriber whose cursor
 * is older than the ring gets a RESYNC and a fresh snapshot (the hub's own watch still resumes
 * from it after a short gap). Each event holds a GPU record (about 700 bytes of JSON), so the
 * history is the largest part of the embedded heap that fills with ingest: the adapter's own
 * default (100,000 events) grew `start`'s heap by about 100 MiB, twice EVENT_HISTORY (session 18)
 * peaked 13 MiB higher at 40M samples than this (docs/performance.md, session 20).
 */
export function embeddedHistoryLimit(config: Pick<Config, 'EVENT_HISTORY'>): number {
  return Math.max(1_000, config.EVENT_HISTORY);
}

registerCoordinationBackend({
  kind: 'embedded',
  needs: [],
  shared: false,
  summary: 'in-process revisioned store of the `start` command',
  async open(config) {
    const { createEmbeddedCoordination } = await import('../adapters/embedded/coordination.js');
    return createEmbeddedCoordination({ historyLimit: embeddedHistoryLimit(config) });
  },
});

registerCoordinationBackend({
  kind: 'etcd',
  needs: ['ETCD_ENDPOINTS'],
  shared: true,
  summary: 'live hierarchy, service discovery and leader election (nexus mode)',
  async open(config) {
    const { createEtcdCoordination } = await import('../adapters/etcd/coordination.js');
    const { etcdConnectionOptions } = await import('../adapters/etcd/client.js');
    return createEtcdCoordination({ ...etcdConnectionOptions(config), endpoints: config.ETCD_ENDPOINTS! });
  },
});

registerSampleStoreBackend({
  kind: 'pglite',
  needs: [],
  shared: false,
  summary:
    'PGlite in `DATA_DIR/pglite` (locked to one process), or in memory with `MEMORY`; `start` with `EMBEDDED_STORE=pglite`, or `auto` on a DATA_DIR holding `pglite/` alone',
  exclusiveDir: (config) => (config.MEMORY ? undefined : config.DATA_DIR),
  async open(config) {
    const { createPgliteSampleStore } = await import('../adapters/pglite/sample-store.js');
    return config.MEMORY
      ? createPgliteSampleStore({ memory: true })
      : createPgliteSampleStore({ dataDir: join(config.DATA_DIR, 'pglite') });
  },
});

registerSampleStoreBackend({
  kind: 'sqlite',
  needs: [],
  shared: false,
  summary:
    "SQLite (WebAssembly) in `DATA_DIR/sqlite/samples.db` (locked to one process), or in memory with `MEMORY`; `start`'s default (`EMBEDDED_STORE=auto`, unless DATA_DIR holds `pglite/` alone)",
  exclusiveDir: (config) => (config.MEMORY ? undefined : config.DATA_DIR),
  async open(config) {
    const { createSqliteSampleStore } = await import('../adapters/sqlite/sample-store.js');
    return config.MEMORY
      ? createSqliteSampleStore({ memory: true })
      : createSqliteSampleStore({ file: join(config.DATA_DIR, 'sqlite', 'samples.db'), ownsFile: true });
  },
});

registerSampleStoreBackend({
  kind: 'postgres',
  needs: [['DATABASE_URL', 'DB_HOST']],
  shared: true,
  summary: 'PostgreSQL (TimescaleDB when present); `DATABASE_URL` wins over the `DB_*` variables',
  async open(config, logger) {
    const { createPostgresSampleStore } = await import('../adapters/postgres/sample-store.js');
    const { resolvePostgresTls } = await import('../adapters/postgres/tls.js');
    const tls = resolvePostgresTls(
      {
        sslmode: config.DB_SSLMODE,
        sslrootcert: config.DB_SSLROOTCERT,
        sslcert: config.DB_SSLCERT,
        sslkey: config.DB_SSLKEY,
      },
      config.DATABASE_URL,
    );
    return createPostgresSampleStore({
      connectionString: tls.connectionString,
      host: config.DB_HOST,
      port: config.DB_PORT,
      user: config.DB_USER,
      password: config.DB_PASSWORD,
      database: config.DB_NAME,
      ssl: tls.ssl,
      logger: logger.child({ component: 'postgres' }),
    });
  },
});

registerSampleStoreBackend({
  kind: 'victoria',
  needs: ['REMOTE_WRITE_URL', ['DATABASE_URL', 'DB_HOST']],
  shared: true,
  summary:
    'samples in a Prometheus remote-write TSDB (VictoriaMetrics; read back via `REMOTE_READ_URL`), ledger and dead letters in PostgreSQL',
  async open(config, logger) {
    const { createVictoriaSampleStore } = await import('../adapters/victoria/sample-store.js');
    const ledger = await sampleStoreBackend('postgres').open(config, logger);
    return createVictoriaSampleStore(
      {
        writeUrl: config.REMOTE_WRITE_URL!,
        readUrl: config.REMOTE_READ_URL,
        bearerToken: config.REMOTE_WRITE_BEARER_TOKEN,
      },
      ledger,
    );
  },
});
