/**
 * The one typed, validated, frozen configuration. Sources, strongest first: CLI flags, environment
 * variables (the guide's names), defaults. A bad value stops start-up with a message naming the variable.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';
import { NexusError } from '../errors.js';
import { parseDuration } from './duration.js';

const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes' || v === 'on');

const duration = z.union([z.number().nonnegative(), z.string()]).transform((v, ctx) => {
  const ms = typeof v === 'number' ? v : parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `"${String(v)}" is not a duration (examples: 500ms, 1s, 5m, 1h)`,
    });
    return z.NEVER;
  }
  return ms;
});

/** Parse a comma-separated origin allowlist; throws naming a value that is not `*` or `scheme://host[:port]`. */
export function parseOrigins(text: string): string[] {
  const origins = text
    .split(',')
    .map((o) => o.trim())
    .filter((o) => o !== '');
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s?#]+$/i.test(origin.replace(/\/+$/, ''))) {
      throw new Error(`"${origin}" is not an origin such as http://localhost:3000 (or *)`);
    }
  }
  return origins;
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Every setting, keyed by its environment variable name. Documented in docs/configuration.md. */
const schema = z.object({
  CLUSTER_ID: z
    .string()
    .min(1)
    .regex(/^[^/]+$/, 'must not contain "/"')
    .default('local'),
  CLUSTER_NAME: z.string().min(1).optional(),
  CLUSTER_REGION: z.string().default('local'),
  COLLECTOR_ID: z.string().min(1).default(`collector-${hostname()}-${process.pid}`),
  SERVICE_ID: z.string().min(1).default(`api-${hostname()}-${process.pid}`),
  ETCD_ENDPOINTS: z.string().optional(),
  /** CA certificate (PEM) that signed etcd's server certificate; turns on TLS to etcd. */
  ETCD_CA_FILE: z.string().min(1).optional(),
  /** Client certificate chain (PEM) for etcd's `--client-cert-auth`, with ETCD_KEY_FILE. */
  ETCD_CERT_FILE: z.string().min(1).optional(),
  /** Private key (PEM) of ETCD_CERT_FILE. */
  ETCD_KEY_FILE: z.string().min(1).optional(),
  /** etcd user when etcd auth is on (with ETCD_PASSWORD). */
  ETCD_USERNAME: z.string().min(1).optional(),
  /** Password of ETCD_USERNAME; never logged. */
  ETCD_PASSWORD: z.string().optional(),
  REDIS_URL: z.string().optional(),
  /** PEM CA file the Redis server certificate must chain to (rediss:// URLs; default: the system CAs). */
  REDIS_TLS_CA: z.string().min(1).optional(),
  REDIS_TOPICS: z.string().default('telemetry'),
  /** NATS servers with JetStream, comma-separated `nats://host:port` (queue kind `nats`). */
  NATS_URL: z.string().optional(),
  /** Replicas of the JetStream stream the `nats` queue creates (3 on a three-node cluster). */
  NATS_STREAM_REPLICAS: int(1, 5).default(1),
  /** NATS user when the servers require one (with NATS_PASSWORD). */
  NATS_USER: z.string().min(1).optional(),
  /** Password of NATS_USER; never logged. */
  NATS_PASSWORD: z.string().optional(),
  DATABASE_URL: z.string().optional(),
  DB_HOST: z.string().optional(),
  DB_PORT: int(1, 65535).optional(),
  DB_USER: z.string().optional(),
  DB_PASSWORD: z.string().optional(),
  DB_NAME: z.string().optional(),
  /** libpq-style TLS mode of the PostgreSQL connection (an `sslmode=` in DATABASE_URL wins). */
  DB_SSLMODE: z.enum(['disable', 'prefer', 'require', 'verify-ca', 'verify-full']).default('prefer'),
  /** PEM CA file the PostgreSQL server certificate must chain to (verify-ca, verify-full). */
  DB_SSLROOTCERT: z.string().min(1).optional(),
  /** PEM client certificate file for PostgreSQL (with DB_SSLKEY). */
  DB_SSLCERT: z.string().min(1).optional(),
  /** PEM private key file of DB_SSLCERT. */
  DB_SSLKEY: z.string().min(1).optional(),
  /** Prometheus remote write endpoint of a TSDB for samples (sample store `victoria`). */
  REMOTE_WRITE_URL: z.string().url().optional(),
  /** Base URL of that TSDB's read API (default: REMOTE_WRITE_URL without `/api/v1/write`). */
  REMOTE_READ_URL: z.string().url().optional(),
  /** Bearer token sent to REMOTE_WRITE_URL and REMOTE_READ_URL; never logged. */
  REMOTE_WRITE_BEARER_TOKEN: z.string().min(1).optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  MEMORY: bool.default(false),
  /**
   * Sample store of `start` without PostgreSQL: `sqlite` (DATA_DIR/sqlite), `pglite` (DATA_DIR/pglite),
   * or `auto`: PGlite for a DATA_DIR holding `pglite/` alone, else SQLite (`embeddedStoreKind`).
   */
  EMBEDDED_STORE: z.enum(['auto', 'pglite', 'sqlite']).default('auto'),
  ENABLE_NEXUS: bool.default(true),
  ENABLE_WATCH_API: bool.default(true),
  ENABLE_GRAPHQL: bool.default(true),
  ENABLE_WEBSOCKET: bool.default(true),
  ENABLE_CORS: bool.default(true),
  CORS_ORIGINS: z
    .string()
    .default('http://localhost:3000,http://localhost:8080')
    .transform((v, ctx) => {
      try {
        return parseOrigins(v);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    }),
  CORS_CREDENTIALS: bool.default(false),
  GRAPHQL_INTROSPECTION: bool.optional(),
  GRAPHQL_MAX_DEPTH: int(2, 100).default(15),
  GRAPHQL_MAX_ALIASES: int(0, 10_000).default(30),
  GRAPHQL_MAX_COST: int(1, 100_000_000).default(50_000),
  GRAPHQL_MAX_TOKENS: int(100, 1_000_000).default(2000),
  GRAPHQL_MAX_BATCH: int(0, 100).default(10),
  /** Sample-store reads of API requests running at once (REST and GraphQL share them). */
  READ_CONCURRENCY: int(1, 1000).default(4),
  /** Reads waiting for a slot; one more is refused with 503 OVERLOADED. */
  READ_QUEUE: int(0, 100_000).default(64),
  /** Time budget of one request's store reads, waiting included (0: none). */
  READ_TIMEOUT: duration.default(10_000),
  RATE_LIMIT: int(0, 10_000_000).default(0),
  RATE_LIMIT_WINDOW: duration.default(60_000),
  /** Rows one request may read from the sample store (0: no limit). */
  READ_MAX_ROWS: int(0, 100_000_000).default(50_000),
  /** Longest one PromQL query (/api/v1/query, query_range) may run; a `timeout` parameter may shorten it. */
  PROMQL_TIMEOUT: duration.default(120_000),
  /** Most samples one PromQL selector may load (Prometheus' --query.max-samples, lower for a JS heap). */
  PROMQL_MAX_SAMPLES: int(1, 1_000_000_000).default(5_000_000),
  WS_MAX_PAYLOAD: int(1024, 16 * 1024 * 1024).default(64 * 1024),
  WS_MAX_BUFFERED: int(16 * 1024, 1024 * 1024 * 1024).default(1024 * 1024),
  WS_HEARTBEAT: duration.default(30_000),
  WS_INIT_TIMEOUT: duration.default(3000),
  WS_MAX_CONNECTIONS: int(1, 1_000_000).default(1000),
  WS_MAX_SUBSCRIPTIONS: int(1, 10_000).default(20),
  EVENT_HISTORY: int(0, 10_000_000).default(10_000),
  BATCH_SIZE: int(1, 100_000).optional(),
  FLUSH_INTERVAL: duration.default(1000),
  WORKERS: int(1, 64).default(4),
  POLL_INTERVAL: duration.default(1000),
  CLAIM_TTL: duration
    .default(30_000)
    .refine((ms) => ms >= 1000 && ms <= 86_400_000, 'must be between 1s and 24h'),
  HIERARCHY_INTERVAL: duration.default(0),
  QUEUE_MAX_DEPTH: int(1, 1_000_000).optional(),
  STALE_AFTER: duration.default(300_000),
  ELECTION_TTL: duration
    .default(10_000)
    .refine((ms) => ms >= 1000, 'must be at least 1s (etcd lease TTLs are whole seconds)'),
  MAINTENANCE_INTERVAL: duration.default(30_000),
  COMPACTION_KEEP_REVISIONS: int(0, 100_000_000).default(2_000),
  RETENTION_RAW: duration.default(7 * 86_400_000),
  RETENTION_ROLLUP: duration.default(90 * 86_400_000),
  /** Hot window: raw samples become compressed chunks once their 6-hour window ended this long ago (0: never). */
  COMPACT_AFTER: duration.default(2 * 3_600_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: int(0, 65535).default(8080),
  /** Collector, and a scraping streamer: serve GET /health and GET /metrics on this port (unset: no HTTP server). */
  METRICS_PORT: int(0, 65535).optional(),
  REMOTE_WRITE_PORT: int(0, 65535).optional(),
  /** `start` and `streamer`: HTTP(S) URLs of Prometheus exposition endpoints (dcgm-exporter /metrics) to scrape, comma-separated. */
  SCRAPE_TARGETS: z
    .string()
    .default('')
    .transform((v, ctx) => {
      try {
        return parseScrapeTargets(v);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    }),
  /**
   * `start`, `streamer`: a Prometheus file_sd targets file (JSON) whose targets are scraped too,
   * reloaded when it changes.
   */
  SCRAPE_TARGETS_FILE: z.string().min(1).optional(),
  /** Time between two scrapes of one target. */
  SCRAPE_INTERVAL: duration.default(10_000).refine((ms) => ms > 0, 'must be more than 0'),
  /** Longest one scrape may take (request, body and parse); at most SCRAPE_INTERVAL. */
  SCRAPE_TIMEOUT: duration.default(5_000).refine((ms) => ms > 0, 'must be more than 0'),
  /** Largest decoded body of one scrape, bytes; a bigger one fails the scrape. */
  SCRAPE_BODY_LIMIT: int(1024, 2 ** 31).default(32 * 1024 * 1024),
  /** API authentication: `none`, `token` (API tokens), `jwt` (OIDC bearer JWTs) or `token,jwt` (docs/security.md). */
  AUTH: z
    .string()
    .default('none')
    .transform((v, ctx) => {
      const modes = [...new Set(v.split(',').map((m) => m.trim().toLowerCase()))].filter((m) => m !== '');
      const bad = modes.filter((m) => m !== 'none' && m !== 'token' && m !== 'jwt');
      if (bad.length > 0 || modes.length === 0 || (modes.includes('none') && modes.length > 1)) {
        ctx.addIssue({ code: 'custom', message: `"${v}" is not one of none, token, jwt, token,jwt` });
        return z.NEVER;
      }
      return { token: modes.includes('token'), jwt: modes.includes('jwt') };
    }),
  /** URL of the OIDC issuer's JSON Web Key Set (AUTH includes jwt). */
  JWT_JWKS_URL: z.string().url().optional(),
  /** Required `iss` of bearer JWTs. */
  JWT_ISSUER: z.string().min(1).optional(),
  /** Required `aud` of bearer JWTs. */
  JWT_AUDIENCE: z.string().min(1).optional(),
  /** Claim holding a JWT's scopes (space-separated text or an array). */
  JWT_SCOPE_CLAIM: z.string().min(1).default('scope'),
  /** GET /metrics needs a `read` token too (default: public, for scrapers on loopback). */
  METRICS_AUTH: bool.default(false),
  /** Serve the API on a non-loopback HOST without authentication (AUTH=none): refused unless true. */
  INSECURE_NO_AUTH: bool.default(false),
  /** The API serves HTTPS with this PEM certificate chain (with TLS_KEY_FILE), reloaded when it changes. */
  TLS_CERT_FILE: z.string().min(1).optional(),
  /** PEM private key of TLS_CERT_FILE. */
  TLS_KEY_FILE: z.string().min(1).optional(),
  /**
   * `streamer` in nexus mode: lease TTL of a streamer's share of the scrape targets (whole seconds, at
   * least 1s): how long a dead streamer's targets may stay unscraped before the others take them.
   */
  SCRAPE_LEASE_TTL: duration
    .default(10_000)
    .refine((ms) => ms >= 1000, 'must be at least 1s (etcd lease TTLs are whole seconds)'),
  /** Analytics: price per GPU-hour by model, `H100=2.5,A100=1.2,default=1` (a model takes its longest contained key). */
  ANALYTICS_PRICES: z
    .string()
    .default('default=1')
    .refine(
      (v) => /^\s*$|^\s*[^=,]+=\s*\d+(\.\d+)?\s*(,\s*[^=,]+=\s*\d+(\.\d+)?\s*)*$/.test(v),
      'must be <model>=<price>,... (e.g. H100=2.5,A100=1.2,default=1)',
    ),
  /** Alert rule files (Prometheus format): comma-separated paths or globs (wildcards in the file name). */
  ALERT_RULES_FILES: z.string().default(''),
  /** Evaluate the built-in GPU health rules (rules/gpu-health.rules.yml). */
  ALERT_BUILTIN_RULES: bool.default(true),
  /** Evaluation interval of rule groups without their own `interval`. */
  ALERT_EVAL_INTERVAL: duration.default(60_000).refine((ms) => ms >= 1000, 'must be at least 1s'),
  /** Time between two sends of a firing alert to Alertmanager. */
  ALERT_RESEND_DELAY: duration.default(60_000),
  /** Base URL of the alerts' generatorURL (default http://{hostname}:{PORT}). */
  ALERT_EXTERNAL_URL: z.string().url().optional(),
  /** Alertmanager base URLs, comma-separated (alerts go to {url}/api/v2/alerts). */
  ALERTMANAGER_URL: z.string().default(''),
  /** Webhook URLs notified once when an alert fires and once when it resolves, comma-separated. */
  WEBHOOK_URLS: z.string().default(''),
  /** Key of the webhooks' HMAC-SHA256 signature header. */
  WEBHOOK_SECRET: z.string().min(1).optional(),
});

/** Secrets that may instead be read from the file named by `<NAME>_FILE` (trailing newline dropped). */
export const FILE_SECRETS = [
  'DB_PASSWORD',
  'DATABASE_URL',
  'REDIS_URL',
  'ETCD_PASSWORD',
  'WEBHOOK_SECRET',
  'REMOTE_WRITE_BEARER_TOKEN',
  'NATS_PASSWORD',
] as const;

/** Parse a comma-separated list of scrape target URLs; throws naming one that is not http(s). */
export function parseScrapeTargets(text: string): string[] {
  const targets: string[] = [];
  for (const item of text.split(',')) {
    const target = item.trim();
    if (target === '') continue;
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      throw new Error(`"${target}" is not a URL such as http://localhost:9400/metrics`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`"${target}" is not an http or https URL`);
    if (!targets.includes(url.href)) targets.push(url.href);
  }
  return targets;
}

/** The validated configuration. Durations are in milliseconds. */
export type Config = Readonly<z.output<typeof schema>>;

/** Names of every environment variable the code reads (for docs and deployment checks). */
export const CONFIG_VARIABLES = Object.keys(schema.shape) as (keyof typeof schema.shape)[];

/**
 * Build the configuration from environment variables and flag overrides (flags win).
 * Throws NexusError CONFIG_INVALID naming every bad variable.
 */
export function loadConfig(
  env: Record<string, string | undefined> = process.env,
  overrides: Partial<Record<keyof typeof schema.shape, unknown>> = {},
): Config {
  const input: Record<string, unknown> = {};
  for (const name of CONFIG_VARIABLES) {
    const value = overrides[name] ?? env[name] ?? secretFromFile(env, name);
    if (value !== undefined && value !== '') input[name] = value;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new NexusError('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  const config = parsed.data;
  if (config.CORS_CREDENTIALS && config.CORS_ORIGINS.includes('*')) {
    throw new NexusError(
      'CONFIG_INVALID',
      'invalid configuration: CORS_CREDENTIALS: cannot be true while CORS_ORIGINS allows * (list the origins)',
      { details: { problems: ['CORS_CREDENTIALS'] } },
    );
  }
  if ((config.TLS_CERT_FILE === undefined) !== (config.TLS_KEY_FILE === undefined)) {
    throw new NexusError(
      'CONFIG_INVALID',
      'invalid configuration: TLS_CERT_FILE and TLS_KEY_FILE: set both or neither',
      { details: { problems: ['TLS_CERT_FILE', 'TLS_KEY_FILE'] } },
    );
  }
  if ((config.ETCD_CERT_FILE === undefined) !== (config.ETCD_KEY_FILE === undefined)) {
    throw new NexusError(
      'CONFIG_INVALID',
      'invalid configuration: ETCD_CERT_FILE and ETCD_KEY_FILE: set both or neither',
      { details: { problems: ['ETCD_CERT_FILE', 'ETCD_KEY_FILE'] } },
    );
  }
  if ((config.ETCD_USERNAME === undefined) !== (config.ETCD_PASSWORD === undefined)) {
    throw new NexusError(
      'CONFIG_INVALID',
      'invalid configuration: ETCD_USERNAME and ETCD_PASSWORD: set both or neither',
      { details: { problems: ['ETCD_USERNAME', 'ETCD_PASSWORD'] } },
    );
  }
  if ((config.NATS_USER === undefined) !== (config.NATS_PASSWORD === undefined)) {
    throw new NexusError(
      'CONFIG_INVALID',
      'invalid configuration: NATS_USER and NATS_PASSWORD: set both or neither',
      { details: { problems: ['NATS_USER', 'NATS_PASSWORD'] } },
    );
  }
  if (config.AUTH.jwt && config.JWT_JWKS_URL === undefined) {
    throw new NexusError(
      'CONFIG_INVALID',
      'invalid configuration: JWT_JWKS_URL: required when AUTH includes jwt',
      { details: { problems: ['JWT_JWKS_URL'] } },
    );
  }
  if (config.SCRAPE_TIMEOUT > config.SCRAPE_INTERVAL) {
    throw new NexusError(
      'CONFIG_INVALID',
      `invalid configuration: SCRAPE_TIMEOUT: ${config.SCRAPE_TIMEOUT} ms is longer than SCRAPE_INTERVAL (${config.SCRAPE_INTERVAL} ms)`,
      { details: { problems: ['SCRAPE_TIMEOUT'] } },
    );
  }
  if (config.HIERARCHY_INTERVAL * 4 > config.CLAIM_TTL) {
    // A batch is acked after its hierarchy round: with rounds this far apart its claim would lapse
    // first, and the batch would be redelivered for ever.
    throw new NexusError(
      'CONFIG_INVALID',
      `invalid configuration: HIERARCHY_INTERVAL: ${config.HIERARCHY_INTERVAL} ms is more than a quarter of CLAIM_TTL (${config.CLAIM_TTL} ms)`,
      { details: { problems: ['HIERARCHY_INTERVAL'] } },
    );
  }
  return Object.freeze(config);
}

/** `<name>_FILE`'s content for a {@link FILE_SECRETS} name; throws CONFIG_INVALID when unreadable. */
function secretFromFile(env: Record<string, string | undefined>, name: string): string | undefined {
  const path = (FILE_SECRETS as readonly string[]).includes(name) ? env[`${name}_FILE`] : undefined;
  if (path === undefined || path === '') return undefined;
  try {
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new NexusError(
      'CONFIG_INVALID',
      `invalid configuration: ${name}_FILE: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      { details: { problems: [`${name}_FILE`] } },
    );
  }
}

/** Whether `host` is a loopback bind address (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Rows per batch: BATCH_SIZE when set; otherwise 5,000 in embedded mode (no queue backend to
 * protect, and fewer, larger batches cost less per row) and 2,000 on etcd, Redis or NATS (one batch
 * is one etcd key of 100-150 KiB, well below etcd's 1.5 MiB request limit; against 500, a quarter of
 * the claims, acks and ledger rows: nexus end-to-end about 1.4x faster, docs/performance.md).
 */
export function batchSizeFor(config: Config, mode: 'embedded' | 'shared'): number {
  return config.BATCH_SIZE ?? (mode === 'embedded' ? 5000 : 2000);
}

/**
 * Batches the queue holds before producers wait: QUEUE_MAX_DEPTH, else 20 in embedded mode (100k
 * rows of 5,000-row batches, held in this process's memory) and 200 on etcd, Redis and NATS (400k
 * rows, about 20-30 MiB of 2,000-row binary batches in the backend).
 */
export function queueDepthFor(config: Config, mode: 'embedded' | 'shared'): number {
  return config.QUEUE_MAX_DEPTH ?? (mode === 'embedded' ? 20 : 200);
}

/** Display name of the configured cluster. */
export function clusterName(config: Config): string {
  return config.CLUSTER_NAME ?? `${config.CLUSTER_ID} cluster`;
}
