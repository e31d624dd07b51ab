/**
 * Resolvers of the schema in sdl.ts. Hierarchy reads go through the operation's DataLoaders;
 * telemetry, dead letters and services go to the sample store and the coordination store. Bad
 * arguments throw NexusError BAD_REQUEST (shown to the client with its code). A cluster id that
 * names no cluster of the live hierarchy is an error, NOT_FOUND, naming the cluster and the known
 * ones (a query for the guide's `my-cluster` on a server started with another id says so instead of
 * answering null): in cluster(id), host(clusterId), gpu(clusterId) and telemetryUpdates(clusterId).
 * A subscription may ask to wait for a cluster not registered yet (nexus mode, subscribed before the
 * first ingest) with `waitForCluster: true`. Unknown hosts and GPUs of a known cluster resolve to
 * null; telemetry reads stored samples, which may outlive the live records, and never checks the
 * cluster. A UUID reported on several hosts is AMBIGUOUS_UUID unless clusterId/hostId pick one;
 * telemetry by UUID never mixes hosts.
 */
import type { GraphQLFieldResolver } from 'graphql';
import { attributionField, idleField, outliersField } from '../../analytics/requests.js';
import { alertEventIterator, listAlerts, type AlertEventNode } from '../../alerting/events.js';
import { listServices } from '../../discovery/registry.js';
import { NexusError } from '../../errors.js';
import { eventCursor, parseCursor } from '../../events/cursor.js';
import { compileFilter, resolveMetricName } from '../../events/filter.js';
import {
  subscribeBatchIterator,
  subscribeIterator,
  type EventIteratorOptions,
} from '../../events/iterator.js';
import type { EventFilter, TelemetryEvent, TelemetryEventType } from '../../events/types.js';
import type { GpuStatus } from '../../hierarchy/reader.js';
import {
  chooseResolution,
  type GpuSelector,
  type Resolution,
  type SampleStore,
} from '../../ports/sample-store.js';
import { ambiguousUuid, uuidPlaces } from '../gpu-identity.js';
import { parseResolution } from '../params.js';
import { MAX_LIMIT } from '../schemas.js';
import type { GraphqlContext } from './context.js';
import { hostKey } from './loaders.js';
import {
  clusterNode,
  deadLetterNode,
  eventNode,
  gpuNode,
  hostNode,
  metricInfoNodes,
  sampleNode,
  serviceNode,
  type ClusterNode,
  type GpuNode,
  type HostNode,
  type MigInstanceNode,
  type SampleNode,
} from './nodes.js';

/** A resolver as graphql-js stores it. */
export type Resolver = GraphQLFieldResolver<unknown, GraphqlContext, Record<string, unknown>>;

/** Resolvers by type name and field name; subscription fields have `subscribe` and `resolve`. */
export type ResolverMap = Record<
  string,
  Record<string, Resolver | { subscribe: Resolver; resolve: Resolver }>
>;

/** Type a resolver by its source and arguments (graphql-js checks them against the schema). */
const r = <S, A = Record<string, never>>(
  fn: (source: S, args: A, ctx: GraphqlContext) => unknown,
): Resolver => fn as unknown as Resolver;

type Maybe<T> = T | null | undefined;

interface TelemetryArgs {
  from?: Maybe<number>;
  to?: Maybe<number>;
  metrics?: Maybe<string[]>;
  limit?: Maybe<number>;
  order?: Maybe<'ASC' | 'DESC'>;
  resolution?: Maybe<string>;
}

interface TelemetryPageNode {
  samples: SampleNode[];
  hasMore: boolean;
  resolution: string;
}

const bad = (parameter: string, message: string): NexusError =>
  new NexusError('BAD_REQUEST', message, { details: { parameter } });

const isIndex = (id: string): boolean => /^\d+$/.test(id);

/** Most known cluster ids listed in a NOT_FOUND message. */
const MAX_LISTED_CLUSTERS = 20;

/** The NOT_FOUND error of a cluster id that names no cluster, listing the known ones. */
export function unknownCluster(
  clusterId: string,
  known: readonly string[],
  parameter: string,
  hint = '',
): NexusError {
  const listed = known.slice(0, MAX_LISTED_CLUSTERS).map((c) => `'${c}'`);
  if (known.length > MAX_LISTED_CLUSTERS) listed.push(`and ${known.length - MAX_LISTED_CLUSTERS} more`);
  const names = known.length === 0 ? 'none yet (nothing ingested)' : listed.join(', ');
  return new NexusError('NOT_FOUND', `cluster '${clusterId}' not found; known clusters: ${names}${hint}`, {
    details: { parameter },
  });
}

/** Throw NOT_FOUND for a cluster id the live hierarchy does not hold (one read; the list only on failure). */
async function requireCluster(
  ctx: GraphqlContext,
  clusterId: string,
  parameter: string,
  hint = '',
): Promise<void> {
  if (await ctx.loaders.cluster.load(clusterId)) return;
  const known = (await ctx.loaders.clusters.load('all')).map((c) => c.clusterId);
  throw unknownCluster(clusterId, known, parameter, hint);
}

function ambiguous(id: string): NexusError {
  return new NexusError(
    'AMBIGUOUS_GPU_ID',
    `GPU id '${id}' is an index within a host and names a different GPU on every host: give clusterId and hostId too, or use the GPU UUID`,
    { details: { parameter: 'id' } },
  );
}

/**
 * The store selector of a GPU named by UUID: the UUID itself when it is reported on at most one
 * host (live or stored); else the one host `clusterId`/`hostId` pick, else AMBIGUOUS_UUID.
 */
async function uuidSelector(
  ctx: GraphqlContext,
  uuid: string,
  clusterId: Maybe<string>,
  hostId: Maybe<string>,
  parameter: string,
): Promise<GpuSelector> {
  const [live, stored] = await Promise.all([
    ctx.loaders.gpusByUuid.load(uuid),
    ctx.loaders.storedGpus.load('all'),
  ]);
  const places = uuidPlaces(uuid, live, stored);
  if (places.length <= 1) return { uuid };
  const picked = places.filter(
    (p) => (clusterId == null || p.clusterId === clusterId) && (hostId == null || p.hostname === hostId),
  );
  if (picked.length !== 1)
    throw ambiguousUuid(uuid, picked.length > 1 ? picked : places, parameter, 'graphql');
  const { clusterId: c, hostname, gpuId } = picked[0]!;
  return { clusterId: c, hostname, gpuId };
}

/**
 * Run a telemetry query for one GPU (its own series, or one MIG instance's) with checked arguments
 * (the selector is resolved after the checks).
 */
async function telemetry(
  store: SampleStore,
  selectGpu: () => Promise<GpuSelector> | GpuSelector,
  args: TelemetryArgs,
  migInstance?: string,
): Promise<TelemetryPageNode> {
  const limit = args.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
    throw bad('limit', `limit must be between 1 and ${MAX_LIMIT}`);
  const startMs = args.from ?? undefined;
  const endMs = args.to ?? undefined;
  if (startMs !== undefined && endMs !== undefined && startMs > endMs) throw bad('from', 'from is after to');
  let metrics: string[] | undefined;
  if (args.metrics) {
    if (args.metrics.length === 0 || args.metrics.length > 64)
      throw bad('metrics', 'metrics must list 1 to 64 names');
    metrics = [...new Set(args.metrics.map(resolveMetricName))];
  }
  let resolution: Resolution;
  try {
    resolution = chooseResolution({
      startMs,
      endMs,
      resolution: parseResolution(args.resolution ?? undefined),
    });
  } catch {
    throw bad('resolution', 'resolution must be one of raw, 1m, 1h, auto');
  }
  const gpu = await selectGpu();
  const samples = await store.querySamples({
    gpu,
    ...(migInstance !== undefined ? { migInstance } : {}),
    ...(startMs !== undefined ? { startMs } : {}),
    ...(endMs !== undefined ? { endMs } : {}),
    ...(metrics ? { metrics } : {}),
    limit: limit + 1,
    order: args.order === 'ASC' ? 'asc' : 'desc',
    resolution,
  });
  return { samples: samples.slice(0, limit).map(sampleNode), hasMore: samples.length > limit, resolution };
}

/** Find a GPU in a list by index or UUID. */
function pick(gpus: GpuStatus[], id: string): GpuStatus | undefined {
  const wanted = id.toLowerCase();
  return gpus.find((g) => g.gpuId === id) ?? gpus.find((g) => g.uuid.toLowerCase() === wanted);
}

interface SubscriptionArgs {
  clusterId?: Maybe<string>;
  hostId?: Maybe<string>;
  gpuId?: Maybe<string>;
  metrics?: Maybe<string[]>;
  eventTypes?: Maybe<TelemetryEventType[]>;
  after?: Maybe<string>;
  snapshot?: Maybe<boolean>;
  waitForCluster?: Maybe<boolean>;
}

function eventFilter(args: SubscriptionArgs): EventFilter {
  const filter: EventFilter = {};
  if (args.clusterId != null) filter.clusterId = args.clusterId;
  if (args.hostId != null) filter.hostId = args.hostId;
  if (args.gpuId != null) filter.gpuId = args.gpuId;
  if (args.metrics != null) filter.metrics = args.metrics;
  if (args.eventTypes != null) filter.eventTypes = args.eventTypes;
  return filter;
}

/**
 * The hub subscription of telemetryUpdates / telemetryUpdateBatches: its filter, checked cluster,
 * cursor and queue bound.
 */
async function telemetrySubscription(
  args: SubscriptionArgs,
  ctx: GraphqlContext,
): Promise<EventIteratorOptions> {
  if (!ctx.hub) throw new NexusError('BAD_REQUEST', 'subscriptions are not enabled on this server');
  const filter = compileFilter(eventFilter(args));
  // A cluster that is not (yet) registered: an error, unless the client asked to wait for it.
  if (args.clusterId != null && args.waitForCluster !== true)
    await requireCluster(
      ctx,
      args.clusterId,
      'clusterId',
      ' (to wait for a cluster not registered yet, subscribe with waitForCluster: true)',
    );
  return {
    filter,
    ...(args.after != null ? { after: parseCursor(args.after) } : {}),
    snapshot: args.snapshot === true,
    maxQueued: ctx.maxQueuedEvents,
    ...(ctx.dropClient ? { onOverflow: ctx.dropClient } : {}),
  };
}

/** An event's metrics, narrowed to the subscription's `metrics` argument when it has one. */
function eventMetrics(event: TelemetryEvent, args: SubscriptionArgs): TelemetryEvent['metrics'] {
  return args.metrics ? compileFilter({ metrics: args.metrics }).project(event.metrics) : event.metrics;
}

/** Every resolver of the schema. */
export const resolvers: ResolverMap = {
  Query: {
    clusters: r(async (_: unknown, __, ctx) => (await ctx.loaders.clusters.load('all')).map(clusterNode)),
    cluster: r(async (_: unknown, { id }: { id: string }, ctx) => {
      const c = await ctx.loaders.cluster.load(id);
      if (!c) await requireCluster(ctx, id, 'id');
      return c ? clusterNode(c) : null;
    }),
    host: r(async (_: unknown, args: { clusterId: string; hostId: string }, ctx) => {
      const hosts = await ctx.loaders.hosts.load(args.clusterId);
      if (!hosts) await requireCluster(ctx, args.clusterId, 'clusterId');
      const h = hosts?.find((x) => x.hostname === args.hostId);
      return h ? hostNode(h) : null;
    }),
    gpu: r(
      async (_: unknown, args: { id: string; clusterId?: Maybe<string>; hostId?: Maybe<string> }, ctx) => {
        let gpu: GpuStatus | undefined;
        if (args.clusterId != null && args.hostId != null) {
          gpu = pick(await ctx.loaders.gpus.load(hostKey(args.clusterId, args.hostId)), args.id);
        } else if (isIndex(args.id)) {
          throw ambiguous(args.id);
        } else {
          const matches = (await ctx.loaders.gpusByUuid.load(args.id)).filter(
            (g) =>
              (args.clusterId == null || g.clusterId === args.clusterId) &&
              (args.hostId == null || g.hostname === args.hostId),
          );
          if (matches.length > 1) throw ambiguousUuid(args.id, matches, 'id', 'graphql');
          gpu = matches[0];
        }
        if (!gpu && args.clusterId != null) await requireCluster(ctx, args.clusterId, 'clusterId');
        return gpu ? gpuNode(gpu) : null;
      },
    ),
    telemetry: r(
      (
        _: unknown,
        args: TelemetryArgs & { gpuId: string; clusterId?: Maybe<string>; hostId?: Maybe<string> },
        ctx,
      ) => {
        if (!isIndex(args.gpuId)) {
          const uuid = args.gpuId;
          return telemetry(
            ctx.store,
            () => uuidSelector(ctx, uuid, args.clusterId, args.hostId, 'gpuId'),
            args,
          );
        }
        if (args.clusterId == null || args.hostId == null) throw ambiguous(args.gpuId);
        const selector = { clusterId: args.clusterId, hostname: args.hostId, gpuId: args.gpuId };
        return telemetry(ctx.store, () => selector, args);
      },
    ),
    deadLetters: r(async (_: unknown, args: { limit?: Maybe<number>; source?: Maybe<string> }, ctx) => {
      const limit = args.limit ?? 100;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
        throw bad('limit', `limit must be between 1 and ${MAX_LIMIT}`);
      const rows = await ctx.store.listDeadLetters(
        args.source != null ? { limit, source: args.source } : { limit },
      );
      return rows.map(deadLetterNode);
    }),
    services: r(async (_: unknown, args: { type?: Maybe<string> }, ctx) => {
      const nodes = (await listServices(ctx.coordination)).map(serviceNode);
      return args.type != null ? nodes.filter((s) => s.type === args.type) : nodes;
    }),
    metricCatalog: r(() => metricInfoNodes()),
    analyticsAttribution: r((_: unknown, args: Parameters<typeof attributionField>[1], ctx) =>
      attributionField(ctx.store, args, Date.now(), ctx.prices),
    ),
    analyticsIdle: r((_: unknown, args: Parameters<typeof idleField>[1], ctx) => idleField(ctx.store, args)),
    analyticsOutliers: r((_: unknown, args: Parameters<typeof outliersField>[1], ctx) =>
      outliersField(ctx.store, args),
    ),
    cursor: r(async (_: unknown, __, ctx) => String(await ctx.coordination.revision())),
    alerts: r(async (_: unknown, args: { clusterId?: Maybe<string>; state?: Maybe<string> }, ctx) =>
      (await listAlerts(ctx.coordination, args.clusterId ?? undefined)).filter(
        (a) => args.state == null || a.state === args.state,
      ),
    ),
  },
  Cluster: {
    hosts: r(async (c: ClusterNode, __, ctx) => ((await ctx.loaders.hosts.load(c.id)) ?? []).map(hostNode)),
    host: r(async (c: ClusterNode, { id }: { id: string }, ctx) => {
      const h = (await ctx.loaders.hosts.load(c.id))?.find((x) => x.hostname === id);
      return h ? hostNode(h) : null;
    }),
  },
  Host: {
    cluster: r(async (h: HostNode, __, ctx) => {
      const c = await ctx.loaders.cluster.load(h.clusterId);
      return c ? clusterNode(c) : null;
    }),
    gpus: r(async (h: HostNode, __, ctx) =>
      (await ctx.loaders.gpus.load(hostKey(h.clusterId, h.hostname))).map(gpuNode),
    ),
    gpu: r(async (h: HostNode, { id }: { id: string }, ctx) => {
      const g = pick(await ctx.loaders.gpus.load(hostKey(h.clusterId, h.hostname)), id);
      return g ? gpuNode(g) : null;
    }),
  },
  GPU: {
    host: r(async (g: GpuNode, __, ctx) => {
      const h = (await ctx.loaders.hosts.load(g.clusterId))?.find((x) => x.hostname === g.hostId);
      return h ? hostNode(h) : null;
    }),
    // This GPU's own samples: by UUID, or by its host when the UUID is reported on several hosts.
    telemetry: r((g: GpuNode, args: TelemetryArgs, ctx) =>
      telemetry(ctx.store, () => uuidSelector(ctx, g.uuid, g.clusterId, g.hostId, 'id'), args),
    ),
  },
  MigInstance: {
    // The instance's own series, by its GPU's place (its GPU_I_ID is unique within the GPU only).
    telemetry: r((m: MigInstanceNode, args: TelemetryArgs, ctx) =>
      telemetry(
        ctx.store,
        () => ({ clusterId: m.clusterId, hostname: m.hostId, gpuId: m.gpuIndex }),
        args,
        m.id,
      ),
    ),
  },
  Subscription: {
    alertUpdates: {
      subscribe: r((_: unknown, args: { clusterId?: Maybe<string> }, ctx) =>
        alertEventIterator(ctx.coordination, {
          clusterId: args.clusterId ?? undefined,
          maxQueued: ctx.maxQueuedEvents,
          ...(ctx.dropClient ? { onOverflow: ctx.dropClient } : {}),
        }),
      ),
      resolve: r((event: AlertEventNode) => ({ ...event, revision: String(event.revision) })),
    },
    telemetryUpdates: {
      subscribe: r(async (_: unknown, args: SubscriptionArgs, ctx) =>
        subscribeIterator(ctx.hub!, await telemetrySubscription(args, ctx)),
      ),
      resolve: r((event: TelemetryEvent, args: SubscriptionArgs) =>
        eventNode(event, eventMetrics(event, args)),
      ),
    },
    telemetryUpdateBatches: {
      subscribe: r(async (_: unknown, args: SubscriptionArgs, ctx) =>
        subscribeBatchIterator(ctx.hub!, await telemetrySubscription(args, ctx)),
      ),
      resolve: r((batch: readonly TelemetryEvent[], args: SubscriptionArgs) => {
        const narrow = args.metrics ? compileFilter({ metrics: args.metrics }) : undefined;
        return {
          cursor: eventCursor(batch[batch.length - 1] as TelemetryEvent),
          events: batch.map((event) =>
            eventNode(event, narrow ? narrow.project(event.metrics) : event.metrics),
          ),
        };
      }),
    },
  },
};
