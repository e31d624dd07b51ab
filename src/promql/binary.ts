/**
 * PromQL binary operators: arithmetic, comparison (filter or `bool`) and set operators between
 * scalars and instant vectors, with on/ignoring and group_left/group_right matching, as
 * Prometheus 2.42's VectorBinop, VectorscalarBinop, VectorAnd/Or/Unless and scalarBinop.
 */
import { COMPARISON_OPS, type BinaryOp, type VectorMatching } from './ast.js';
import { execError } from './functions.js';
import { dropName, labelsKey, labelsString, signature } from './labels.js';
import type { Labels } from './types.js';
import type { Sample } from './values.js';

/** Go's math.Pow special cases where JavaScript's ** differs. */
function goPow(x: number, y: number): number {
  if (y === 0) return 1;
  if (x === 1) return 1;
  if (x === -1 && (y === Infinity || y === -Infinity)) return 1;
  return x ** y;
}

/** Go's math.Mod (sign of the dividend, NaN for x=±Inf or y=0). */
function goMod(x: number, y: number): number {
  return x % y;
}

/** The value of `l op r` and whether a comparison holds (arithmetic always "holds"). */
function elemBinop(op: BinaryOp, l: number, r: number): [number, boolean] {
  switch (op) {
    case '+':
      return [l + r, true];
    case '-':
      return [l - r, true];
    case '*':
      return [l * r, true];
    case '/':
      return [l / r, true];
    case '%':
      return [goMod(l, r), true];
    case '^':
      return [goPow(l, r), true];
    case '==':
      return [l, l === r];
    case '!=':
      return [l, l !== r];
    case '>':
      return [l, l > r];
    case '<':
      return [l, l < r];
    case '>=':
      return [l, l >= r];
    case '<=':
      return [l, l <= r];
    default:
      return execError(`operator "${op}" not allowed for scalar or vector operations`);
  }
}

const dropsName = (op: BinaryOp): boolean =>
  op === '+' || op === '-' || op === '*' || op === '/' || op === '%' || op === '^';

/** scalar op scalar (comparisons only with bool: 0 or 1). */
export function scalarBinop(op: BinaryOp, l: number, r: number): number {
  const [v, keep] = elemBinop(op, l, r);
  if (COMPARISON_OPS.has(op)) return keep ? 1 : 0;
  return v;
}

/** vector op scalar, or scalar op vector when `swap` (the vector is always `vec`). */
export function vectorScalarBinop(
  op: BinaryOp,
  vec: Sample[],
  scalar: number,
  swap: boolean,
  returnBool: boolean,
): Sample[] {
  const out: Sample[] = [];
  const comparison = COMPARISON_OPS.has(op);
  for (const s of vec) {
    const l = swap ? scalar : s.v;
    const r = swap ? s.v : scalar;
    let [value, keep] = elemBinop(op, l, r);
    if (comparison && swap) value = r;
    if (returnBool) {
      value = keep ? 1 : 0;
      keep = true;
    }
    if (!keep) continue;
    out.push({ metric: dropsName(op) || returnBool ? dropName(s.metric) : s.metric, v: value });
  }
  return out;
}

function resultMetric(l: Labels, r: Labels, op: BinaryOp, m: VectorMatching): Labels {
  let out: Labels = dropsName(op) ? dropName(l) : l;
  if (m.card === 'one-to-one') {
    if (m.on) {
      const kept: Labels = {};
      for (const n of m.labels) if (out[n] !== undefined) kept[n] = out[n];
      out = kept;
    } else if (m.labels.some((n) => n in out)) {
      out = { ...out };
      for (const n of m.labels) delete out[n];
    }
  }
  if (m.include.length > 0) {
    out = { ...out };
    for (const n of m.include) {
      const v = r[n];
      if (v !== undefined && v !== '') out[n] = v;
      else delete out[n];
    }
  }
  return out;
}

/** vector op vector for arithmetic and comparison operators. */
export function vectorBinop(
  op: BinaryOp,
  lhs0: Sample[],
  rhs0: Sample[],
  m: VectorMatching,
  returnBool: boolean,
): Sample[] {
  let lhs = lhs0;
  let rhs = rhs0;
  if (m.card === 'one-to-many') [lhs, rhs] = [rhs, lhs];
  const rightSigs = new Map<string, Sample>();
  for (const rs of rhs) {
    const sig = signature(rs.metric, m.on, m.labels);
    const dup = rightSigs.get(sig);
    if (dup) {
      const oneSide = m.card === 'one-to-many' ? 'left' : 'right';
      const matched: Labels = {};
      for (const [n, v] of Object.entries(rs.metric)) {
        if (m.on ? m.labels.includes(n) : !m.labels.includes(n) && n !== '__name__') matched[n] = v;
      }
      execError(
        `found duplicate series for the match group ${labelsString(matched)} on the ${oneSide} hand-side of the operation: ` +
          `[${labelsString(rs.metric)}, ${labelsString(dup.metric)}];many-to-many matching not allowed: matching labels must be unique on one side`,
      );
    }
    rightSigs.set(sig, rs);
  }
  const matchedSigs = new Map<string, Set<string> | null>();
  const out: Sample[] = [];
  for (const ls of lhs) {
    const sig = signature(ls.metric, m.on, m.labels);
    const rs = rightSigs.get(sig);
    if (!rs) continue;
    let l = ls.v;
    let r = rs.v;
    if (m.card === 'one-to-many') [l, r] = [r, l];
    const [result, keep] = elemBinop(op, l, r);
    if (!returnBool && !keep) continue;
    const value = returnBool ? (keep ? 1 : 0) : result;
    let metric = resultMetric(ls.metric, rs.metric, op, m);
    if (returnBool) metric = dropName(metric);
    const inserted = matchedSigs.get(sig);
    if (m.card === 'one-to-one') {
      if (inserted !== undefined) {
        execError(
          'multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)',
        );
      }
      matchedSigs.set(sig, null);
    } else {
      const key = labelsKey(metric);
      if (!inserted) matchedSigs.set(sig, new Set([key]));
      else if (inserted.has(key))
        execError('multiple matches for labels: grouping labels must ensure unique label set');
      else inserted.add(key);
    }
    out.push({ metric, v: value });
  }
  return out;
}

/** `and`, `or`, `unless` (labels and values of the kept side unchanged). */
export function setBinop(
  op: 'and' | 'or' | 'unless',
  lhs: Sample[],
  rhs: Sample[],
  m: VectorMatching,
): Sample[] {
  const sig = (s: Sample): string => signature(s.metric, m.on, m.labels);
  switch (op) {
    case 'and': {
      if (lhs.length === 0 || rhs.length === 0) return [];
      const right = new Set(rhs.map(sig));
      return lhs.filter((s) => right.has(sig(s)));
    }
    case 'or': {
      if (lhs.length === 0) return [...rhs];
      if (rhs.length === 0) return [...lhs];
      const left = new Set(lhs.map(sig));
      return [...lhs, ...rhs.filter((s) => !left.has(sig(s)))];
    }
    case 'unless': {
      if (lhs.length === 0 || rhs.length === 0) return [...lhs];
      const right = new Set(rhs.map(sig));
      return lhs.filter((s) => !right.has(sig(s)));
    }
  }
}
