/**
 * Static limits checked on a parsed document before validation and execution, the same on HTTP and
 * graphql-ws: nesting depth, number of aliases, and an estimated cost. The token limit is enforced by
 * the parser itself. Fragments are measured once each (memoised, per hierarchy scope) and fragment
 * cycles are cut, so a hostile document (deep nesting, fragment bombs, cycles) is refused in time
 * linear in its size.
 *
 * Cost: every selected field costs 1 each time it is resolved. Hierarchy lists are counted with the
 * real size of the fleet ({@link Cardinality}, a snapshot of the live hierarchy): `clusters` is every
 * cluster; `hosts` under `clusters` is every host, under one cluster the largest cluster's host count;
 * `gpus` under every host is every GPU, under one cluster's hosts the largest cluster's GPU count,
 * under one host the largest host's GPU count. Other list fields multiply what is selected under them
 * by their `limit` argument when they have one (default 100), else by an assumed size (metrics and
 * values 16, labels 8, services 10, metricCatalog 40, a subscription batch's events 32). Fields that query the sample store
 * (`telemetry`, `deadLetters`, the three `analytics*`) add 100 each time they run, `services` and
 * `alerts` 5. An array batch is costed
 * as a whole (the sum of its operations).
 */
import {
  GraphQLError,
  Kind,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
} from './graphql.js';

/** The limits of one GraphQL request. */
export interface QueryLimits {
  /** Deepest nesting of fields (the guide's cluster query is 5 deep). */
  maxDepth: number;
  /** Most aliased fields in a document. */
  maxAliases: number;
  /** Highest estimated cost of the document. */
  maxCost: number;
  /** Most lexical tokens in a document (enforced by the parser). */
  maxTokens: number;
}

/** Defaults, also the defaults of the GRAPHQL_MAX_* settings. */
export const DEFAULT_LIMITS: QueryLimits = { maxDepth: 15, maxAliases: 30, maxCost: 50_000, maxTokens: 2000 };

/**
 * Sizes of the live hierarchy the cost of hierarchy lists is computed from (docs/graphql.md#limits).
 * Kept fresh by the GraphQL plugin from the hierarchy reader.
 */
export interface Cardinality {
  clusters: number;
  hosts: number;
  gpus: number;
  /** Hosts of the largest cluster. */
  maxHostsPerCluster: number;
  /** GPUs of the cluster with the most GPUs. */
  maxGpusPerCluster: number;
  /** GPUs of the host with the most GPUs. */
  maxGpusPerHost: number;
}

/** Used before the first snapshot of the hierarchy is known: 3 clusters of 32 hosts of 8 GPUs. */
export const ASSUMED_CARDINALITY: Cardinality = {
  clusters: 3,
  hosts: 96,
  gpus: 768,
  maxHostsPerCluster: 32,
  maxGpusPerCluster: 256,
  maxGpusPerHost: 8,
};

/** Cardinality of a list of GPUs as (cluster, host) pairs plus the hosts that have no GPU. */
export function cardinalityOf(
  clusters: readonly { clusterId: string; totals: { total_hosts: number; total_gpus: number } }[],
  gpus: readonly { clusterId: string; hostname: string }[],
): Cardinality {
  const perHost = new Map<string, number>();
  for (const g of gpus) {
    const key = `${g.clusterId}\u0000${g.hostname}`;
    perHost.set(key, (perHost.get(key) ?? 0) + 1);
  }
  return {
    clusters: clusters.length,
    hosts: clusters.reduce((n, c) => n + c.totals.total_hosts, 0),
    gpus: clusters.reduce((n, c) => n + c.totals.total_gpus, 0),
    maxHostsPerCluster: Math.max(0, ...clusters.map((c) => c.totals.total_hosts)),
    maxGpusPerCluster: Math.max(0, ...clusters.map((c) => c.totals.total_gpus)),
    maxGpusPerHost: Math.max(0, ...perHost.values()),
  };
}

/** Assumed size of other list fields without a `limit` argument. */
const LIST_SIZE: Record<string, number> = {
  metrics: 16,
  values: 16,
  labels: 8,
  services: 10,
  metricCatalog: 40,
  // A GPU holds at most 7 MIG GPU instances.
  migInstances: 7,
  // telemetryUpdateBatches: a result is typically one collector write of up to 32 GPUs (a snapshot
  // or a burst can hold up to 500 events; the cost is an estimate of the usual result).
  events: 32,
};

/** Extra cost of fields that query the sample store or the coordination store. */
const IO_COST: Record<string, number> = {
  telemetry: 100,
  deadLetters: 100,
  analyticsAttribution: 100,
  analyticsIdle: 100,
  analyticsOutliers: 100,
  services: 5,
  alerts: 5,
};

/**
 * Where in the hierarchy a selection set is, which decides how big the lists under it are:
 * every cluster / host / GPU, those of one cluster, those of one host, or a single object.
 */
type Scope =
  | 'other'
  | 'allClusters'
  | 'cluster'
  | 'allHosts'
  | 'clusterHosts'
  | 'host'
  | 'allGpus'
  | 'clusterGpus'
  | 'hostGpus';

const ratio = (a: number, b: number): number => (b > 0 ? a / b : 0);

/** Default `limit` of fields that take one. */
const DEFAULT_LIMIT = 100;
const CAP = 1e15;

/** An error of a refused document, with a stable code in `extensions.code`. */
export function limitError(code: string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

/** Measures one document. */
class Measure {
  private readonly fragments = new Map<string, FragmentDefinitionNode>();
  private readonly depthMemo = new Map<string, number>();
  private readonly costMemo = new Map<string, number>();

  constructor(
    document: DocumentNode,
    private readonly variables: Record<string, unknown> | undefined,
    private readonly sizes: Cardinality,
  ) {
    for (const def of document.definitions) {
      if (def.kind === Kind.FRAGMENT_DEFINITION) this.fragments.set(def.name.value, def);
    }
  }

  /** Nesting depth of a selection set in fields (a cycle counts as nothing more). */
  depth(set: SelectionSetNode): number {
    let max = 0;
    for (const sel of set.selections) {
      let d = 0;
      if (sel.kind === Kind.FIELD) d = 1 + (sel.selectionSet ? this.depth(sel.selectionSet) : 0);
      else if (sel.kind === Kind.INLINE_FRAGMENT) d = this.depth(sel.selectionSet);
      else d = this.fragmentDepth(sel.name.value);
      if (d > max) max = d;
    }
    return max;
  }

  private fragmentDepth(name: string): number {
    const memo = this.depthMemo.get(name);
    if (memo !== undefined) return memo;
    const fragment = this.fragments.get(name);
    if (!fragment) return 0;
    this.depthMemo.set(name, 0); // cut cycles; validation reports them
    const d = this.depth(fragment.selectionSet);
    this.depthMemo.set(name, d);
    return d;
  }

  /** Estimated cost of a selection set resolved once, in `scope`. */
  cost(set: SelectionSetNode, scope: Scope = 'other'): number {
    let total = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) total += this.fieldCost(sel, scope);
      else if (sel.kind === Kind.INLINE_FRAGMENT) total += this.cost(sel.selectionSet, scope);
      else total += this.fragmentCost(sel.name.value, scope);
      if (total > CAP) return CAP;
    }
    return total;
  }

  private fragmentCost(name: string, scope: Scope): number {
    const key = `${scope}:${name}`;
    const memo = this.costMemo.get(key);
    if (memo !== undefined) return memo;
    const fragment = this.fragments.get(name);
    if (!fragment) return 0;
    this.costMemo.set(key, 0);
    const c = this.cost(fragment.selectionSet, scope);
    this.costMemo.set(key, c);
    return c;
  }

  private fieldCost(field: FieldNode, scope: Scope): number {
    const name = field.name.value;
    const base = 1 + (IO_COST[name] ?? 0);
    if (!field.selectionSet) return base;
    const [multiplier, childScope] = this.multiplier(field, scope);
    const children = this.cost(field.selectionSet, childScope);
    return Math.min(CAP, base + multiplier * children);
  }

  /** How many times what is selected under `field` is resolved per resolution of `field`, and where. */
  private multiplier(field: FieldNode, scope: Scope): [number, Scope] {
    const name = field.name.value;
    if (name.startsWith('__')) return [1, 'other'];
    const limitArg = field.arguments?.find((a) => a.name.value === 'limit');
    if (limitArg) {
      const v = limitArg.value;
      if (v.kind === Kind.INT) return [Math.max(1, Number(v.value)), 'other'];
      if (v.kind === Kind.VARIABLE) {
        const given = this.variables?.[v.name.value];
        return [
          typeof given === 'number' && Number.isFinite(given) ? Math.max(1, given) : DEFAULT_LIMIT,
          'other',
        ];
      }
      return [DEFAULT_LIMIT, 'other'];
    }
    const n = this.sizes;
    switch (name) {
      case 'telemetry':
      case 'deadLetters':
        return [DEFAULT_LIMIT, 'other'];
      case 'clusters':
        return [n.clusters, 'allClusters'];
      case 'cluster':
        return [1, 'cluster'];
      case 'host':
        return [1, 'host'];
      case 'gpu':
        return [1, 'other'];
      // Counts multiply along the path, so under every cluster the per-cluster average makes the
      // product exact; under one cluster the largest cluster is the bound.
      case 'hosts':
        return scope === 'allClusters'
          ? [ratio(n.hosts, n.clusters), 'allHosts']
          : [n.maxHostsPerCluster, 'clusterHosts'];
      case 'gpus':
        if (scope === 'allHosts') return [ratio(n.gpus, n.hosts), 'allGpus'];
        if (scope === 'clusterHosts')
          return [ratio(n.maxGpusPerCluster, n.maxHostsPerCluster), 'clusterGpus'];
        return [n.maxGpusPerHost, 'hostGpus'];
      default:
        return [LIST_SIZE[name] ?? 1, 'other'];
    }
  }
}

/** Number of aliased fields anywhere in the document. */
function countAliases(set: SelectionSetNode): number {
  let n = 0;
  for (const sel of set.selections) {
    if (sel.kind === Kind.FIELD) {
      if (sel.alias) n++;
      if (sel.selectionSet) n += countAliases(sel.selectionSet);
    } else if (sel.kind === Kind.INLINE_FRAGMENT) n += countAliases(sel.selectionSet);
  }
  return n;
}

/** What {@link analyzeDocument} found. */
export interface DocumentAnalysis {
  /** Limit errors, empty when the document is within the limits. */
  errors: GraphQLError[];
  /** Estimated cost of each operation, by name ('' for an anonymous one). */
  costs: Map<string, number>;
}

/**
 * Check depth, aliases and cost of every operation of `document` (fragments included), costing
 * hierarchy lists with `sizes` (default {@link ASSUMED_CARDINALITY}).
 */
export function analyzeDocument(
  document: DocumentNode,
  limits: QueryLimits,
  variables?: Record<string, unknown>,
  sizes: Cardinality = ASSUMED_CARDINALITY,
): DocumentAnalysis {
  const costs = new Map<string, number>();
  let aliases = 0;
  for (const def of document.definitions) {
    if (def.kind === Kind.OPERATION_DEFINITION || def.kind === Kind.FRAGMENT_DEFINITION)
      aliases += countAliases(def.selectionSet);
  }
  if (aliases > limits.maxAliases)
    return {
      errors: [
        limitError('TOO_MANY_ALIASES', `document has ${aliases} aliases; the limit is ${limits.maxAliases}`),
      ],
      costs,
    };

  const measure = new Measure(document, variables, sizes);
  const errors: GraphQLError[] = [];
  for (const def of document.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION) continue;
    const label = def.name ? `operation ${def.name.value}` : 'the operation';
    const depth = measure.depth(def.selectionSet);
    if (depth > limits.maxDepth) {
      errors.push(
        limitError('QUERY_TOO_DEEP', `${label} is ${depth} levels deep; the limit is ${limits.maxDepth}`),
      );
      continue;
    }
    const cost = measure.cost(def.selectionSet);
    costs.set(def.name?.value ?? '', cost);
    if (cost > limits.maxCost) errors.push(tooCostly(label, cost, limits.maxCost));
  }
  return { errors, costs };
}

/** QUERY_TOO_COSTLY for `what` (an operation, a batch) of estimated cost `cost`. */
export function tooCostly(what: string, cost: number, maxCost: number): GraphQLError {
  const shown = cost >= CAP ? 'unbounded' : String(Math.round(cost));
  return limitError('QUERY_TOO_COSTLY', `${what} has an estimated cost of ${shown}; the limit is ${maxCost}`);
}

/**
 * Check depth, aliases and cost of every operation of `document` (fragments included). Returns the
 * errors, empty when the document is within the limits.
 */
export function checkLimits(
  document: DocumentNode,
  limits: QueryLimits,
  variables?: Record<string, unknown>,
  sizes?: Cardinality,
): GraphQLError[] {
  return analyzeDocument(document, limits, variables, sizes).errors;
}
