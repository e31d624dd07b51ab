/**
 * Opens the shared backends of the multi-process modes from configuration: the queue(s), the sample
 * store and the coordination store. Adapters are imported dynamically, so a process loads only the
 * client libraries (etcd3, pg, ioredis) of the backends it is configured for.
 */
import { readFileSync } from 'node:fs';
import { queueDepthFor, type Config } from '../config/config.js';
import { NexusError } from '../errors.js';
import type { Coordination } from '../ports/coordination.js';
import type { Queue } from '../ports/queue.js';
import type { SampleStore } from '../ports/sample-store.js';
import type { Logger } from '../util/logger.js';

export type QueueKind = 'embedded' | 'etcd' | 'redis';

/** Whether etcd is configured and the Nexus integration is on. */
export function nexusEnabled(config: Config): boolean {
  return config.ENABLE_NEXUS && Boolean(config.ETCD_ENDPOINTS);
}

/** Redis topics from REDIS_TOPICS (comma-separated, blanks dropped). */
export function redisTopics(config: Config): string[] {
  return config.REDIS_TOPICS.split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

/** The queue a producer publishes to: `kind` when given, else etcd when configured, else Redis. */
export async function openProducerQueue(config: Config, kind?: QueueKind): Promise<Queue> {
  const chosen = kind ?? (nexusEnabled(config) ? 'etcd' : config.REDIS_URL ? 'redis' : undefined);
  if (chosen === 'etcd') return openEtcdQueue(config);
  if (chosen === 'redis') return openRedisQueue(config, redisTopics(config)[0] ?? 'telemetry');
  throw new NexusError(
    'CONFIG_INVALID',
    chosen === 'embedded'
      ? 'an embedded queue lives inside one process; a separate streamer needs etcd (ETCD_ENDPOINTS) or Redis (REDIS_URL)'
      : 'no shared queue configured: set ETCD_ENDPOINTS (nexus mode) or REDIS_URL (traditional mode), or use --queue',
    { details: { variable: 'ETCD_ENDPOINTS' } },
  );
}

/**
 * The queues a collector consumes: with `kind`, that one; otherwise the etcd queue when nexus is
 * enabled and every Redis topic when REDIS_URL is set, at once (as the guide's collector does).
 */
export async function openConsumerQueues(config: Config, kind?: QueueKind): Promise<Queue[]> {
  const queues: Queue[] = [];
  if (kind === 'embedded') return openProducerQueue(config, 'embedded').then((q) => [q]);
  if ((kind === undefined || kind === 'etcd') && (kind === 'etcd' || nexusEnabled(config))) {
    queues.push(await openEtcdQueue(config));
  }
  if ((kind === undefined || kind === 'redis') && config.REDIS_URL) {
    for (const topic of redisTopics(config)) queues.push(await openRedisQueue(config, topic));
  }
  if (queues.length === 0) return [await openProducerQueue(config, kind)];
  return queues;
}

async function openEtcdQueue(config: Config): Promise<Queue> {
  if (!config.ETCD_ENDPOINTS) {
    throw new NexusError('CONFIG_INVALID', 'the etcd queue needs ETCD_ENDPOINTS', {
      details: { variable: 'ETCD_ENDPOINTS' },
    });
  }
  const { createEtcdQueue } = await import('../adapters/etcd/queue.js');
  return createEtcdQueue({
    topic: 'batches',
    endpoints: config.ETCD_ENDPOINTS,
    clusterId: config.CLUSTER_ID,
    maxDepth: queueDepthFor(config, 'shared'),
    watch: config.ENABLE_WATCH_API,
    pollIntervalMs: config.POLL_INTERVAL,
  });
}

async function openRedisQueue(config: Config, topic: string): Promise<Queue> {
  if (!config.REDIS_URL) {
    throw new NexusError('CONFIG_INVALID', 'the Redis queue needs REDIS_URL', {
      details: { variable: 'REDIS_URL' },
    });
  }
  const { createRedisQueue } = await import('../adapters/redis/queue.js');
  return createRedisQueue({ topic, url: config.REDIS_URL, maxDepth: queueDepthFor(config, 'shared') });
}

/** Whether PostgreSQL is configured (DATABASE_URL or DB_HOST). */
export function postgresConfigured(config: Config): boolean {
  return Boolean(config.DATABASE_URL || config.DB_HOST);
}

/** The sample store shared by separate processes: PostgreSQL. Migrations are applied (once, under a lock). */
export async function openSharedStore(config: Config, logger: Logger): Promise<SampleStore> {
  if (!postgresConfigured(config)) {
    throw new NexusError(
      'CONFIG_INVALID',
      'separate collector and API processes share samples through PostgreSQL: set DATABASE_URL or DB_HOST/DB_PORT/DB_USER/DB_PASSWORD/DB_NAME',
      { details: { variable: 'DATABASE_URL' } },
    );
  }
  const { createPostgresSampleStore } = await import('../adapters/postgres/sample-store.js');
  const store = await createPostgresSampleStore({
    connectionString: config.DATABASE_URL,
    host: config.DB_HOST,
    port: config.DB_PORT,
    user: config.DB_USER,
    password: config.DB_PASSWORD,
    database: config.DB_NAME,
    ssl: sslOptions(config),
    logger: logger.child({ component: 'postgres' }),
  });
  await store.migrate();
  return store;
}

function sslOptions(config: Config): boolean | { rejectUnauthorized: boolean; ca?: string } | undefined {
  switch (config.DB_SSLMODE) {
    case 'disable':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-full':
      return {
        rejectUnauthorized: true,
        ca: config.DB_SSLROOTCERT ? readFileSync(config.DB_SSLROOTCERT, 'utf8') : undefined,
      };
    default:
      return undefined;
  }
}

/** The coordination store: etcd in nexus mode. */
export async function openSharedCoordination(config: Config): Promise<Coordination> {
  if (!nexusEnabled(config)) {
    throw new NexusError(
      'CONFIG_INVALID',
      'the live hierarchy is shared through etcd: set ETCD_ENDPOINTS (and ENABLE_NEXUS=true)',
      {
        details: { variable: 'ETCD_ENDPOINTS' },
      },
    );
  }
  const { createEtcdCoordination } = await import('../adapters/etcd/coordination.js');
  return createEtcdCoordination({ endpoints: config.ETCD_ENDPOINTS! });
}
