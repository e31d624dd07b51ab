/**
 * The typed PromQL syntax tree the engine evaluates, built from the lezer parse tree by
 * src/promql/parse.ts. Durations and times are in milliseconds.
 */
import type { LabelMatcher } from './types.js';

/** The four PromQL value types, named as in Prometheus' error messages. */
export type ValueType = 'scalar' | 'instant vector' | 'range vector' | 'string';

/** An `@` modifier: a fixed time, or the query's start()/end(). */
export type AtModifier = { kind: 'time'; ms: number } | { kind: 'start' } | { kind: 'end' };

export interface VectorSelectorNode {
  kind: 'vectorSelector';
  matchers: LabelMatcher[];
  offsetMs: number;
  at?: AtModifier;
}

export interface MatrixSelectorNode {
  kind: 'matrixSelector';
  selector: VectorSelectorNode;
  rangeMs: number;
}

export interface SubqueryNode {
  kind: 'subquery';
  expr: Expr;
  rangeMs: number;
  /** 0 = the default evaluation interval. */
  stepMs: number;
  offsetMs: number;
  at?: AtModifier;
}

/** Vector matching of a binary operation between two instant vectors. */
export interface VectorMatching {
  card: 'one-to-one' | 'many-to-one' | 'one-to-many' | 'many-to-many';
  /** true: `on(labels)`; false: `ignoring(labels)` (the default, with no labels). */
  on: boolean;
  labels: string[];
  /** The extra labels of group_left/group_right, taken from the "one" side. */
  include: string[];
}

export type BinaryOp =
  '+' | '-' | '*' | '/' | '%' | '^' | '==' | '!=' | '>' | '<' | '>=' | '<=' | 'and' | 'or' | 'unless';

export type AggregateOp =
  | 'sum'
  | 'avg'
  | 'min'
  | 'max'
  | 'count'
  | 'stddev'
  | 'stdvar'
  | 'topk'
  | 'bottomk'
  | 'quantile'
  | 'count_values'
  | 'group';

export type Expr =
  | { kind: 'number'; value: number }
  | { kind: 'string'; value: string }
  | VectorSelectorNode
  | MatrixSelectorNode
  | SubqueryNode
  | { kind: 'call'; func: string; args: Expr[] }
  | {
      kind: 'aggregate';
      op: AggregateOp;
      param?: Expr;
      expr: Expr;
      grouping: string[];
      without: boolean;
    }
  | {
      kind: 'binary';
      op: BinaryOp;
      lhs: Expr;
      rhs: Expr;
      returnBool: boolean;
      /** Present when both sides are instant vectors. */
      matching?: VectorMatching;
      /** Parser-internal: an on/ignoring/group clause was written (removed once checked). */
      explicitMatching?: boolean;
    }
  | { kind: 'unary'; op: '-' | '+'; expr: Expr }
  | { kind: 'paren'; expr: Expr };

/** Comparison operators (filter, or 0/1 with `bool`). */
export const COMPARISON_OPS: ReadonlySet<BinaryOp> = new Set(['==', '!=', '>', '<', '>=', '<=']);
/** Set operators (many-to-many matching, keep the metric name). */
export const SET_OPS: ReadonlySet<BinaryOp> = new Set(['and', 'or', 'unless']);
