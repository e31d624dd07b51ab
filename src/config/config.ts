/**
 * The one typed, validated, frozen configuration. Sources, strongest first: CLI flags, environment
 * variables (the guide's names), defaults. A bad value stops start-up with a message naming the variable.
 */
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
  REDIS_URL: z.string().optional(),
  REDIS_TOPICS: z.string().default('telemetry'),
  DATABASE_URL: z.string().optional(),
  DB_HOST: z.string().optional(),
  DB_PORT: int(1, 65535).optional(),
  DB_USER: z.string().optional(),
  DB_PASSWORD: z.string().optional(),
  DB_NAME: z.string().optional(),
  DB_SSLMODE: z.enum(['disable', 'prefer', 'require', 'verify-full']).default('prefer'),
  DB_SSLROOTCERT: z.string().optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  MEMORY: bool.default(false),
  ENABLE_NEXUS: bool.default(true),
  ENABLE_WATCH_API: bool.default(true),
  ENABLE_GRAPHQL: bool.default(true),
  ENABLE_WEBSOCKET: bool.default(true),
  ENABLE_CORS: bool.default(true),
  BATCH_SIZE: int(1, 100_000).default(500),
  FLUSH_INTERVAL: duration.default(1000),
  WORKERS: int(1, 64).default(4),
  POLL_INTERVAL: duration.default(1000),
  QUEUE_MAX_DEPTH: int(1, 1_000_000).default(1000),
  STALE_AFTER: duration.default(300_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  HOST: z.string().min(1).default('0.0.0.0'),
  PORT: int(0, 65535).default(8080),
});

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
    const value = overrides[name] ?? env[name];
    if (value !== undefined && value !== '') input[name] = value;
  }
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new NexusError('CONFIG_INVALID', `invalid configuration: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  return Object.freeze(parsed.data);
}

/** Display name of the configured cluster. */
export function clusterName(config: Config): string {
  return config.CLUSTER_NAME ?? `${config.CLUSTER_ID} cluster`;
}
