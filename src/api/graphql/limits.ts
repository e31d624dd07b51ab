/**
 * Static limits checked on a parsed document before validation and execution, the same on HTTP and
 * graphql-ws: nesting depth, number of aliases, and an estimated cost. The token limit is enforced by
 * the parser itself. Fragments are measured once each (memoised) and fragment cycles are cut, so a
 * hostile document (deep nesting, fragment bombs, cycles) is refused in time linear in its size.
 *
 * Cost: every selected field costs 1; a list field multiplies the cost of what is selected under it by
 * its `limit` argument when it has one, else by an assumed size (clusters 3, hosts 32, gpus 8, metrics
 * and values 16, labels 8, services 10, metricCatalog 40); fields that read the sample store add 10.
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

/** Assumed size of list fields without a `limit` argument. */
const LIST_SIZE: Record<string, number> = {
  clusters: 3,
  hosts: 32,
  gpus: 8,
  metrics: 16,
  values: 16,
  labels: 8,
  services: 10,
  metricCatalog: 40,
};

/** Extra cost of fields that query the sample store or the coordination store. */
const IO_COST: Record<string, number> = { telemetry: 10, deadLetters: 10, services: 5 };

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

  /** Estimated cost of a selection set. */
  cost(set: SelectionSetNode): number {
    let total = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) total += this.fieldCost(sel);
      else if (sel.kind === Kind.INLINE_FRAGMENT) total += this.cost(sel.selectionSet);
      else total += this.fragmentCost(sel.name.value);
      if (total > CAP) return CAP;
    }
    return total;
  }

  private fragmentCost(name: string): number {
    const memo = this.costMemo.get(name);
    if (memo !== undefined) return memo;
    const fragment = this.fragments.get(name);
    if (!fragment) return 0;
    this.costMemo.set(name, 0);
    const c = this.cost(fragment.selectionSet);
    this.costMemo.set(name, c);
    return c;
  }

  private fieldCost(field: FieldNode): number {
    const name = field.name.value;
    const base = 1 + (IO_COST[name] ?? 0);
    if (!field.selectionSet) return base;
    const children = this.cost(field.selectionSet);
    return Math.min(CAP, base + this.multiplier(field) * children);
  }

  private multiplier(field: FieldNode): number {
    const name = field.name.value;
    if (name.startsWith('__')) return 1;
    const limitArg = field.arguments?.find((a) => a.name.value === 'limit');
    if (limitArg) {
      const v = limitArg.value;
      if (v.kind === Kind.INT) return Math.max(1, Number(v.value));
      if (v.kind === Kind.VARIABLE) {
        const given = this.variables?.[v.name.value];
        return typeof given === 'number' && Number.isFinite(given) ? Math.max(1, given) : DEFAULT_LIMIT;
      }
      return DEFAULT_LIMIT;
    }
    if (name === 'telemetry' || name === 'deadLetters') return DEFAULT_LIMIT;
    return LIST_SIZE[name] ?? 1;
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

/**
 * Check depth, aliases and cost of every operation of `document` (fragments included). Returns the
 * errors, empty when the document is within the limits.
 */
export function checkLimits(
  document: DocumentNode,
  limits: QueryLimits,
  variables?: Record<string, unknown>,
): GraphQLError[] {
  let aliases = 0;
  for (const def of document.definitions) {
    if (def.kind === Kind.OPERATION_DEFINITION || def.kind === Kind.FRAGMENT_DEFINITION)
      aliases += countAliases(def.selectionSet);
  }
  if (aliases > limits.maxAliases)
    return [
      limitError('TOO_MANY_ALIASES', `document has ${aliases} aliases; the limit is ${limits.maxAliases}`),
    ];

  const measure = new Measure(document, variables);
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
    if (cost > limits.maxCost) {
      const shown = cost >= CAP ? 'unbounded' : String(Math.round(cost));
      errors.push(
        limitError(
          'QUERY_TOO_COSTLY',
          `${label} has an estimated cost of ${shown}; the limit is ${limits.maxCost}`,
        ),
      );
    }
  }
  return errors;
}
