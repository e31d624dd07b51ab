/**
 * JSON schemas of the REST API, shared by the route modules: they validate params and query
 * strings, drive response serialization (only declared properties reach clients), and are what
 * @fastify/swagger turns into the OpenAPI document. They are also the one source of the API's
 * TypeScript types: every schema is `as const`, the route plugins use
 * `@fastify/type-provider-json-schema-to-ts`, so a handler's params, query and return value are
 * typed from its schemas, and views.ts derives the response types with `FromSchema`.
 */
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';

/** Which of a schema's keys {@link Closed} adds: `additionalProperties` on an object that has none. */
type AddedKeys<S> = S extends { readonly type: 'object' }
  ? 'additionalProperties' extends keyof S
    ? never
    : 'additionalProperties'
  : never;

/**
 * `S` with `additionalProperties: false` on every object schema (top level, in `properties`,
 * `items` and `additionalProperties`) that does not say otherwise. Type level only.
 */
export type Closed<S> = S extends readonly unknown[]
  ? S
  : S extends object
    ? {
        readonly [K in keyof S | AddedKeys<S>]: K extends keyof S
          ? K extends 'properties'
            ? { readonly [P in keyof S[K]]: Closed<S[K][P]> }
            : K extends 'items' | 'additionalProperties'
              ? Closed<S[K]>
              : S[K]
          : false;
      }
    : S;

/**
 * A response schema. The value is returned as it is, so the OpenAPI document keeps response
 * objects open (clients must tolerate fields added later), but its type is {@link Closed}: the
 * serializer sends only declared properties, so for the server a response object is exactly its
 * declared fields, and a handler or view that returns a field the schema lacks fails to compile
 * (json-schema-to-ts would type an open object with an `[x: string]: unknown` index signature
 * that accepts anything).
 */
export function responseSchema<const S extends JSONSchema>(schema: S): Closed<S> {
  return schema as Closed<S>;
}

/** The one error body every failing route returns. */
export const errorSchema = responseSchema({
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'Stable error code, e.g. BAD_REQUEST, NOT_FOUND' },
        message: { type: 'string' },
        parameter: { type: 'string', description: 'The offending request parameter, when there is one' },
      },
    },
  },
} as const);

/** The error body as TypeScript sees it. */
export type ErrorBody = FromSchema<typeof errorSchema>;

/** Statuses with a description of their own in {@link errorResponses}. */
type ErrorStatus = 400 | 404 | 409 | 422 | 500 | 503;

const ERROR_DESCRIPTIONS: Record<ErrorStatus, string> = {
  400: 'Bad request: a parameter is invalid (named in error.parameter)',
  404: 'Not found',
  409: 'Conflict: the GPU UUID is reported on several hosts (AMBIGUOUS_UUID); use the host route',
  422: "The read would exceed the request's row budget (READ_BUDGET_EXCEEDED, READ_MAX_ROWS)",
  500: 'Internal error',
  503: 'A backend is unavailable, the read queue is full (OVERLOADED) or the time budget ran out (READ_TIMEOUT); see Retry-After',
};

/** The schema of one error response entry. */
export type ErrorResponseSchema = typeof errorSchema & { readonly description: string };

/** Error response entries for a route schema, e.g. `errorResponses(400, 404)`. 500 and 503 are always added. */
export function errorResponses<const S extends ErrorStatus>(
  ...statuses: S[]
): Record<S | 500 | 503, ErrorResponseSchema> {
  const out: Partial<Record<ErrorStatus, ErrorResponseSchema>> = {};
  for (const status of [...statuses, 500 as const, 503 as const]) {
    out[status] = { ...errorSchema, description: ERROR_DESCRIPTIONS[status] };
  }
  return out as Record<S | 500 | 503, ErrorResponseSchema>;
}

const rfc3339 = { type: 'string', format: 'date-time' } as const;

/** Path parameters of cluster routes. */
export const clusterParams = {
  type: 'object',
  required: ['clusterId'],
  properties: { clusterId: { type: 'string', minLength: 1, maxLength: 256, description: 'Cluster id' } },
} as const;

/** Path parameters of host routes. */
export const hostParams = {
  type: 'object',
  required: ['clusterId', 'hostId'],
  properties: {
    ...clusterParams.properties,
    hostId: { type: 'string', minLength: 1, maxLength: 256, description: 'Host name' },
  },
} as const;

/** Path parameters of GPU routes under a host: the GPU is an index within the host or a UUID. */
export const gpuParams = {
  type: 'object',
  required: ['clusterId', 'hostId', 'gpuId'],
  properties: {
    ...hostParams.properties,
    gpuId: {
      type: 'string',
      minLength: 1,
      maxLength: 256,
      description: 'GPU index within the host (e.g. "0") or the GPU UUID',
    },
  },
} as const;

/** Path parameters of MIG instance routes: a GPU of a host, and the instance id (`GPU_I_ID`). */
export const migParams = {
  type: 'object',
  required: ['clusterId', 'hostId', 'gpuId', 'instanceId'],
  properties: {
    ...gpuParams.properties,
    instanceId: {
      type: 'string',
      minLength: 1,
      maxLength: 64,
      description: 'MIG GPU instance id (dcgm-exporter label GPU_I_ID), e.g. "1"',
    },
  },
} as const;

/** Path parameter of the flat GPU telemetry route: a GPU UUID. */
export const gpuUuidParams = {
  type: 'object',
  required: ['id'],
  properties: {
    id: {
      type: 'string',
      minLength: 1,
      maxLength: 256,
      description:
        'GPU UUID. A bare index such as "0" is ambiguous across hosts and is refused; ' +
        'use /api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/telemetry for indexes.',
    },
  },
} as const;

/** Largest `limit` accepted by list queries. */
export const MAX_LIMIT = 10_000;
/** `limit` when the client gives none. */
export const DEFAULT_LIMIT = 100;

const limitParam = {
  type: 'integer',
  minimum: 1,
  maximum: MAX_LIMIT,
  default: DEFAULT_LIMIT,
  description: `Most items to return (1-${MAX_LIMIT})`,
} as const;

/** Query string of the telemetry routes. Unknown parameters are refused. */
export const telemetryQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: limitParam,
    start_time: { ...rfc3339, description: 'Inclusive lower bound (RFC 3339)' },
    end_time: { ...rfc3339, description: 'Inclusive upper bound (RFC 3339)' },
    metric: {
      type: 'array',
      maxItems: 100,
      items: { type: 'string', maxLength: 2000 },
      description: 'DCGM field name(s), e.g. DCGM_FI_DEV_GPU_UTIL; comma-separated or repeated',
    },
    order: {
      type: 'string',
      enum: ['asc', 'desc'],
      default: 'desc',
      description: 'Time order (newest first by default)',
    },
    resolution: {
      type: 'string',
      enum: ['raw', '1m', '1h', 'auto'],
      default: 'raw',
      description:
        'raw samples (default), 1-minute or 1-hour rollups (value = average, plus `aggregate`), or auto by ' +
        'the range: raw up to 6 h, 1m up to 7 days, 1h beyond (raw without start_time). The x-resolution ' +
        'response header says which one served the response.',
    },
    format: {
      type: 'string',
      enum: ['items', 'compact'],
      default: 'items',
      description:
        'items (default): one object per sample, with every label; compact: the GPU once, then one entry per ' +
        'series with its labels once and arrays of times (ms, ascending) and values (rollups: also min, max, ' +
        'count, last). Same samples either way.',
    },
  },
} as const;

/** Response header naming the resolution (`raw`, `1m`, `1h`) that served a telemetry response. */
export const RESOLUTION_HEADER = 'x-resolution';

/** Min/max/avg/count/last of a rollup bucket, on telemetry items at a rollup resolution. */
export const aggregateSchema = {
  type: 'object',
  required: ['min', 'max', 'avg', 'count', 'last'],
  description: 'Only at resolution 1m or 1h: the samples of the bucket starting at `timestamp`',
  properties: {
    min: { type: 'number' },
    max: { type: 'number' },
    avg: { type: 'number', description: 'Same as `value`' },
    count: { type: 'integer', description: 'Samples in the bucket' },
    last: { type: 'number', description: 'Value of the newest sample in the bucket' },
  },
} as const;

/** Query string of GET /api/v1/dead-letters. */
export const deadLetterQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: limitParam,
    source: {
      type: 'string',
      minLength: 1,
      maxLength: 4096,
      description: 'Only dead letters from this source',
    },
  },
} as const;

/** Routes without query parameters still refuse unknown ones, in the same error shape. */
export const noQuerySchema = { type: 'object', additionalProperties: false, properties: {} } as const;

const clusterMetadata = {
  type: 'object',
  required: ['total_hosts', 'total_gpus', 'active_hosts', 'active_gpus'],
  properties: {
    total_hosts: { type: 'integer' },
    total_gpus: { type: 'integer' },
    active_hosts: { type: 'integer' },
    active_gpus: { type: 'integer' },
  },
} as const;

/** The guide's cluster shape. */
export const clusterSchema = responseSchema({
  type: 'object',
  required: ['cluster_id', 'cluster_name', 'region', 'metadata'],
  properties: {
    cluster_id: { type: 'string' },
    cluster_name: { type: 'string' },
    region: { type: 'string' },
    metadata: clusterMetadata,
  },
} as const);

/** A host of the live hierarchy. */
export const hostSchema = responseSchema({
  type: 'object',
  required: ['host_id', 'hostname', 'cluster_id', 'gpu_count', 'active_gpu_count', 'active', 'last_seen'],
  properties: {
    host_id: { type: 'string' },
    hostname: { type: 'string' },
    cluster_id: { type: 'string' },
    gpu_count: { type: 'integer' },
    active_gpu_count: { type: 'integer' },
    active: { type: 'boolean', description: 'Seen within the staleness window' },
    last_seen: { ...rfc3339, description: 'When the collector last heard from the host' },
  },
} as const);

const goneSince = {
  ...rfc3339,
  description: 'Present when the newest complete scrape of its target did not expose it: inactive since then',
} as const;

/** A MIG instance of a GPU with its own latest metrics (never mixed into the GPU's). */
export const migInstanceSchema = responseSchema({
  type: 'object',
  required: [
    'instance_id',
    'profile',
    'gpu_id',
    'uuid',
    'hostname',
    'cluster_id',
    'active',
    'last_seen',
    'last_sample',
    'metrics',
  ],
  properties: {
    instance_id: { type: 'string', description: 'GPU instance id (GPU_I_ID)' },
    profile: { type: 'string', description: 'GPU instance profile (GPU_I_PROFILE), e.g. 1g.10gb' },
    gpu_id: { type: 'string', description: "Index of the instance's GPU within the host" },
    uuid: { type: 'string', description: "UUID of the instance's GPU" },
    hostname: { type: 'string' },
    cluster_id: { type: 'string' },
    active: { type: 'boolean', description: 'Seen within the staleness window and not gone' },
    gone_since: goneSince,
    last_seen: { ...rfc3339, description: 'When the collector last wrote this instance' },
    last_sample: { ...rfc3339, description: 'Newest sample time' },
    metrics: {
      type: 'object',
      description: 'Latest value of each metric of the instance, keyed by DCGM field name',
      additionalProperties: {
        type: 'object',
        required: ['value', 'timestamp'],
        properties: { value: { type: 'number' }, timestamp: rfc3339 },
      },
    },
  },
} as const);

/** Health of a GPU (docs/alerting.md, "Health model"). */
export const gpuHealthSchema = responseSchema({
  type: 'object',
  required: ['state', 'since', 'reasons'],
  properties: {
    state: { type: 'string', enum: ['ok', 'warning', 'critical'] },
    since: { ...rfc3339, description: 'Sample time the GPU entered this state' },
    reasons: {
      type: 'array',
      description: 'Why it is not ok, most severe first; empty when ok',
      items: {
        type: 'object',
        required: ['code', 'severity', 'message', 'since'],
        properties: {
          code: { type: 'string', description: 'Reason code, e.g. XID_ERROR, ECC_DBE, STALE' },
          severity: { type: 'string', enum: ['warning', 'critical'] },
          message: { type: 'string' },
          since: { ...rfc3339, description: 'Sample time the reason began' },
          field: { type: 'string', description: 'DCGM field behind the reason' },
          value: { type: 'number', description: 'The field value that raised it' },
        },
      },
    },
  },
} as const);

/** One GPU's health with its identity, as GET .../gpus/{g}/health and GET /api/v1/health/gpus give it. */
export const gpuHealthEntrySchema = responseSchema({
  type: 'object',
  required: ['cluster_id', 'hostname', 'gpu_id', 'uuid', 'model_name', 'last_sample', 'health'],
  properties: {
    cluster_id: { type: 'string' },
    hostname: { type: 'string' },
    gpu_id: { type: 'string' },
    uuid: { type: 'string' },
    model_name: { type: 'string' },
    last_sample: rfc3339,
    health: gpuHealthSchema,
  },
} as const);

/** A GPU of the live hierarchy with its latest metrics. */
export const gpuSchema = responseSchema({
  type: 'object',
  required: [
    'health',
    'gpu_id',
    'uuid',
    'device',
    'model_name',
    'hostname',
    'cluster_id',
    'active',
    'last_seen',
    'last_sample',
    'metrics',
  ],
  properties: {
    gpu_id: { type: 'string', description: 'Index within the host' },
    uuid: { type: 'string' },
    device: { type: 'string' },
    model_name: { type: 'string' },
    hostname: { type: 'string' },
    cluster_id: { type: 'string' },
    active: { type: 'boolean', description: 'Seen within the staleness window and not gone' },
    gone_since: goneSince,
    last_seen: { ...rfc3339, description: 'When the collector last wrote this GPU' },
    last_sample: { ...rfc3339, description: 'Newest sample time (of the GPU or any of its MIG instances)' },
    metrics: {
      type: 'object',
      description: 'Latest value of each metric, keyed by DCGM field name',
      additionalProperties: {
        type: 'object',
        required: ['value', 'timestamp'],
        properties: { value: { type: 'number' }, timestamp: rfc3339 },
      },
    },
    mig_instances: {
      type: 'array',
      description: 'MIG instances of the GPU, by instance id; present only when it has any',
      items: migInstanceSchema,
    },
    health: gpuHealthSchema,
  },
} as const);

/** GPU identity as listed by GET /api/v1/gpus. */
export const gpuSummarySchema = responseSchema({
  type: 'object',
  required: ['uuid', 'gpu_id', 'hostname', 'cluster_id', 'model', 'device'],
  properties: {
    uuid: { type: 'string' },
    gpu_id: { type: 'string' },
    hostname: { type: 'string' },
    cluster_id: { type: 'string' },
    model: { type: 'string' },
    device: { type: 'string' },
  },
} as const);

const telemetryItemSchema = {
  type: 'object',
  required: [
    'timestamp',
    'metric_name',
    'value',
    'gpu_id',
    'uuid',
    'hostname',
    'cluster_id',
    'device',
    'model_name',
    'container',
    'pod',
    'namespace',
    'labels',
  ],
  properties: {
    timestamp: rfc3339,
    metric_name: { type: 'string', description: 'DCGM field name' },
    value: { type: 'number' },
    gpu_id: { type: 'string' },
    uuid: { type: 'string' },
    hostname: { type: 'string' },
    cluster_id: { type: 'string' },
    device: { type: 'string' },
    model_name: { type: 'string' },
    container: { type: 'string' },
    pod: { type: 'string' },
    namespace: { type: 'string' },
    labels: { type: 'object', additionalProperties: { type: 'string' } },
    aggregate: aggregateSchema,
  },
} as const;

/** Body of both telemetry routes: samples, newest first unless `order=asc`. */
export const telemetryResponseSchema = responseSchema({
  type: 'array',
  description: 'Samples; the x-has-more response header says whether more matched than `limit` returned',
  items: telemetryItemSchema,
} as const);

/** The GPU of a compact telemetry answer (a series whose samples name another carries its own). */
const compactGpuSchema = {
  type: 'object',
  required: ['cluster_id', 'hostname', 'gpu_id', 'uuid', 'device', 'model_name'],
  properties: {
    cluster_id: { type: 'string' },
    hostname: { type: 'string' },
    gpu_id: { type: 'string' },
    uuid: { type: 'string' },
    device: { type: 'string' },
    model_name: { type: 'string' },
  },
} as const;

const numbers = (description: string) => ({ type: 'array', items: { type: 'number' }, description }) as const;

/**
 * Body of the telemetry routes with `format=compact`: the GPU once, then each series (metric and
 * labels) once with parallel arrays of times and values, times ascending. The same samples as the
 * items answer to the same query (`limit` counts samples, across series).
 */
export const telemetryCompactResponseSchema = responseSchema({
  type: 'object',
  required: ['gpu', 'resolution', 'series'],
  description: 'format=compact: labels once per series, then time/value arrays',
  properties: {
    gpu: compactGpuSchema,
    resolution: { type: 'string', enum: ['raw', '1m', '1h'], description: 'What served the answer' },
    series: {
      type: 'array',
      description: 'One entry per series, by metric name then labels',
      items: {
        type: 'object',
        required: ['metric', 'labels', 't', 'v'],
        properties: {
          metric: { type: 'string', description: 'DCGM field name' },
          labels: {
            type: 'object',
            additionalProperties: { type: 'string' },
            description:
              "The series' labels (labels_raw), with its container, pod and namespace when they are set",
          },
          gpu: { ...compactGpuSchema, description: 'Only when the series names another GPU than `gpu`' },
          t: {
            type: 'array',
            items: { type: 'integer' },
            description: 'Sample (bucket start) times, ms, ascending',
          },
          v: numbers('Values (rollups: the bucket average), one per time'),
          min: numbers('Rollups only: bucket minimum, one per time'),
          max: numbers('Rollups only: bucket maximum, one per time'),
          count: {
            type: 'array',
            items: { type: 'integer' },
            description: 'Rollups only: samples per bucket',
          },
          last: numbers("Rollups only: the bucket's newest value, one per time"),
        },
      },
    },
  },
} as const);

/** 200 of the telemetry routes: the items (default) or the compact form (`format=compact`). */
export const telemetryAnyResponseSchema = {
  description: 'Samples as items (default), or in the compact form with format=compact',
  oneOf: [telemetryResponseSchema, telemetryCompactResponseSchema],
} as const;

/** One refused input row. */
export const deadLetterSchema = responseSchema({
  type: 'object',
  required: ['id', 'source', 'line', 'raw', 'reason', 'detail', 'received_at'],
  properties: {
    id: { type: 'integer' },
    source: { type: 'string' },
    line: { type: 'integer', description: '1-based line where the record starts' },
    raw: { type: 'string', description: 'The raw record, truncated' },
    reason: { type: 'string', description: 'Reason code, e.g. non_finite_value' },
    detail: { type: 'string' },
    received_at: rfc3339,
  },
} as const);

/** A pipeline process registered in service discovery. */
export const serviceSchema = responseSchema({
  type: 'object',
  required: ['type', 'id', 'address', 'version', 'started_at', 'health'],
  properties: {
    type: { type: 'string', enum: ['streamer', 'collector', 'api'] },
    id: { type: 'string' },
    address: { type: 'string' },
    version: { type: 'string' },
    started_at: { type: 'string', format: 'date-time' },
    health: { type: 'string', enum: ['ok', 'degraded'] },
    pid: { type: 'integer' },
    hostname: { type: 'string' },
  },
} as const);

// --- Analytics (src/api/routes/analytics.ts, docs/analytics.md) ---

const analyticsRange = {
  start: { ...rfc3339, description: 'Inclusive range start (RFC 3339); default: end - 24 h' },
  end: { ...rfc3339, description: 'Exclusive range end (RFC 3339); default: now' },
  resolution: {
    type: 'string',
    enum: ['raw', 'rollup', 'auto'],
    default: 'auto',
    description:
      'raw samples, or rollups wherever a whole 1m/1h bucket lies in the range (same answer); auto: raw up to 6 h',
  },
  interval: {
    type: 'string',
    pattern: '^[0-9]+(ms|s|m|h)$',
    description:
      'Scrape interval of every GPU (e.g. 30s); default: estimated per GPU (median sample spacing)',
  },
} as const;

/** Query string of GET /api/v1/analytics/attribution. */
export const attributionQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...analyticsRange,
    by: {
      type: 'string',
      default: 'namespace',
      maxLength: 300,
      description: 'namespace, pod (keyed namespace/pod), container, label:<name>, host or model',
    },
  },
} as const;

/** Query string of GET /api/v1/analytics/idle. */
export const idleQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...analyticsRange,
    threshold: {
      type: 'number',
      minimum: 0,
      maximum: 100,
      default: 5,
      description: 'Utilization (%) under which a minute is idle',
    },
    duration: {
      type: 'string',
      pattern: '^[0-9]+(ms|s|m|h)$',
      default: '30m',
      description: 'Shortest idle stretch listed (time held while idle)',
    },
  },
} as const;

/** Query string of GET /api/v1/analytics/outliers. */
export const outlierQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...analyticsRange,
    k: {
      type: 'number',
      minimum: 0.1,
      maximum: 1000,
      default: 5,
      description: 'Robust deviations (median/MAD) to stand out',
    },
    duration: {
      type: 'string',
      pattern: '^[0-9]+(ms|s|m|h)$',
      default: '10m',
      description: 'Shortest stretch listed (wall time of consecutive out-of-line minutes)',
    },
  },
} as const;

const analyticsEnvelope = {
  start: { type: 'string', format: 'date-time' },
  end: { type: 'string', format: 'date-time' },
  resolution: {
    type: 'string',
    enum: ['raw', 'rollup'],
    description: 'The read path that served the answer',
  },
} as const;

/** One attribution group. */
export const attributionRowSchema = {
  type: 'object',
  required: [
    'key',
    'gpus',
    'gpu_hours_allocated',
    'gpu_hours_busy',
    'energy_kwh',
    'avg_utilization',
    'peak_utilization',
    'avg_memory_used_mib',
    'peak_memory_used_mib',
    'allocated_cost',
    'effective_cost',
    'waste_fraction',
  ],
  properties: {
    key: { type: 'string', description: 'The group (empty: series without that label)' },
    gpus: { type: 'integer' },
    gpu_hours_allocated: { type: 'number' },
    gpu_hours_busy: { type: 'number' },
    energy_kwh: { type: 'number' },
    avg_utilization: { type: 'number' },
    peak_utilization: { type: 'number' },
    avg_memory_used_mib: { type: 'number' },
    peak_memory_used_mib: { type: 'number' },
    allocated_cost: { type: 'number' },
    effective_cost: { type: 'number' },
    waste_fraction: { type: 'number' },
  },
} as const;

/** Response of GET /api/v1/analytics/attribution. */
export const attributionResponseSchema = responseSchema({
  type: 'object',
  required: ['start', 'end', 'resolution', 'by', 'rows'],
  properties: {
    ...analyticsEnvelope,
    by: { type: 'string' },
    rows: { type: 'array', items: attributionRowSchema },
  },
} as const);

/** One idle-but-allocated stretch. */
export const idleRowSchema = {
  type: 'object',
  required: [
    'namespace',
    'pod',
    'container',
    'hostname',
    'gpu_id',
    'uuid',
    'model',
    'mig_instance',
    'start',
    'end',
    'idle_seconds',
    'gpu_hours_wasted',
    'max_utilization',
  ],
  properties: {
    namespace: { type: 'string' },
    pod: { type: 'string' },
    container: { type: 'string' },
    hostname: { type: 'string' },
    gpu_id: { type: 'string' },
    uuid: { type: 'string' },
    model: { type: 'string' },
    mig_instance: { type: 'string' },
    start: { type: 'string', format: 'date-time' },
    end: { type: 'string', format: 'date-time' },
    idle_seconds: { type: 'number' },
    gpu_hours_wasted: { type: 'number' },
    max_utilization: { type: 'number' },
  },
} as const;

/** Response of GET /api/v1/analytics/idle. */
export const idleResponseSchema = responseSchema({
  type: 'object',
  required: ['start', 'end', 'resolution', 'rows'],
  properties: { ...analyticsEnvelope, rows: { type: 'array', items: idleRowSchema } },
} as const);

/** One peer-outlier stretch. */
export const outlierRowSchema = {
  type: 'object',
  required: [
    'cluster_id',
    'hostname',
    'gpu_id',
    'uuid',
    'model',
    'signal',
    'start',
    'end',
    'max_score',
    'mean_deviation',
    'peers',
  ],
  properties: {
    cluster_id: { type: 'string' },
    hostname: { type: 'string' },
    gpu_id: { type: 'string' },
    uuid: { type: 'string' },
    model: { type: 'string' },
    signal: { type: 'string', enum: ['temperature', 'power', 'sm_clock'] },
    start: { type: 'string', format: 'date-time' },
    end: { type: 'string', format: 'date-time' },
    max_score: { type: 'number' },
    mean_deviation: { type: 'number' },
    peers: { type: 'integer' },
  },
} as const;

/** Response of GET /api/v1/analytics/outliers. */
export const outlierResponseSchema = responseSchema({
  type: 'object',
  required: ['start', 'end', 'resolution', 'rows'],
  properties: { ...analyticsEnvelope, rows: { type: 'array', items: outlierRowSchema } },
} as const);
