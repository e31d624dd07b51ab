/**
 * PromQL text -> typed syntax tree ({@link Expr}). The grammar is the Prometheus project's own
 * (@prometheus-io/lezer-promql); this module walks its tree, rejects what Prometheus 2.42 does not
 * accept (or what the engine does not support) and type-checks like Prometheus' parser. Every
 * failure is a PromQLError('bad_data').
 */
import { parser } from '@prometheus-io/lezer-promql';
import type { SyntaxNode } from '@lezer/common';
import {
  COMPARISON_OPS,
  SET_OPS,
  type AggregateOp,
  type AtModifier,
  type BinaryOp,
  type Expr,
  type ValueType,
  type VectorMatching,
  type VectorSelectorNode,
} from './ast.js';
import { FUNCTIONS, UNSUPPORTED_FUNCTIONS } from './functions-table.js';
import { compileMatcherRegex } from './regex.js';
import { PromQLError, type LabelMatcher } from './types.js';

const BINARY_OPS: Record<string, BinaryOp> = {
  Add: '+',
  Sub: '-',
  Mul: '*',
  Div: '/',
  Mod: '%',
  Pow: '^',
  Eql: '==',
  Neq: '!=',
  Gtr: '>',
  Lss: '<',
  Gte: '>=',
  Lte: '<=',
  And: 'and',
  Or: 'or',
  Unless: 'unless',
};

const AGGREGATE_OPS: Record<string, AggregateOp> = {
  Sum: 'sum',
  Avg: 'avg',
  Min: 'min',
  Max: 'max',
  Count: 'count',
  Stddev: 'stddev',
  Stdvar: 'stdvar',
  Topk: 'topk',
  Bottomk: 'bottomk',
  Quantile: 'quantile',
  CountValues: 'count_values',
  Group: 'group',
};

const MATCH_OPS: Record<string, LabelMatcher['type']> = {
  EqlSingle: '=',
  Neq: '!=',
  EqlRegex: '=~',
  NeqRegex: '!~',
};

const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function bad(message: string, pos?: number): never {
  throw new PromQLError(
    'bad_data',
    `parse error: ${message}${pos === undefined ? '' : ` at position ${pos}`}`,
  );
}

/** Prometheus 3.x's name of holt_winters, the only spelling the grammar parses. */
const HOLT_WINTERS_3X = 'double_exponential_smoothing';

/** Parse a query into the engine's syntax tree, type-checked. Throws PromQLError('bad_data'). */
export function parsePromQL(query: string): Expr {
  if (query.trim() === '') bad('no expression found in input');
  // The 3.x grammar knows 2.42's holt_winters only under its 3.x name: parse that spelling, and map
  // it back (a query that itself says double_exponential_smoothing is 3.x-only, refused).
  if (/\bdouble_exponential_smoothing\s*\(/.test(query)) unsupportedFunction('double_exponential_smoothing');
  const renamed: number[] = [];
  const text = query.replace(/\bholt_winters(?=\s*\()/g, (_m, at: number) => {
    renamed.push(at);
    return HOLT_WINTERS_3X;
  });
  /** A position in `text` as a position in `query`. */
  const original = (at: number): number =>
    at - renamed.filter((r) => r < at).length * (HOLT_WINTERS_3X.length - 'holt_winters'.length);
  const tree = parser.parse(text);
  let errorAt = -1;
  tree.iterate({
    enter: (n) => {
      if (errorAt < 0 && n.type.isError) errorAt = n.from;
      return errorAt < 0;
    },
  });
  if (errorAt >= 0) {
    // Functions of Prometheus 2.x that the 3.x grammar no longer knows (e.g. holt_winters).
    for (const m of query.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*\(/g)) {
      if (UNSUPPORTED_FUNCTIONS.has(m[1]!)) unsupportedFunction(m[1]!);
    }
    bad(`unexpected input`, original(errorAt));
  }
  const body = children(tree.topNode);
  if (body.length !== 1) bad('expected exactly one expression');
  const expr = new Converter(text).expr(body[0]!);
  checkType(expr);
  return expr;
}

/**
 * The label matchers of a plain vector selector (`match[]` of /api/v1/series, federation).
 * Throws PromQLError('bad_data') for anything else.
 */
export function parseSeriesSelector(text: string): LabelMatcher[] {
  const expr = parsePromQL(text);
  if (expr.kind !== 'vectorSelector' || expr.offsetMs !== 0 || expr.at) {
    throw new PromQLError('bad_data', `invalid parameter "match[]": ${text} is not a vector selector`);
  }
  return expr.matchers;
}

function unsupportedFunction(name: string): never {
  throw new PromQLError('bad_data', `function "${name}" is not supported`);
}

/** Non-comment children of a lezer node. */
function children(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) if (c.type.name !== 'LineComment') out.push(c);
  return out;
}

const DURATION_RE = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
const DURATION_UNITS_MS = [365 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000, 1];

/** Prometheus' model.ParseDuration (units in descending order, each at most once), in ms. */
export function parseDuration(text: string, pos?: number): number {
  if (text === '0') return 0;
  const m = DURATION_RE.exec(text);
  if (!m || text === '') bad(`bad duration syntax: "${text}"`, pos);
  let ms = 0;
  for (let i = 0; i < DURATION_UNITS_MS.length; i++) {
    const g = m[i + 1];
    if (g !== undefined) ms += Number(g) * DURATION_UNITS_MS[i]!;
  }
  if (!Number.isSafeInteger(ms)) bad(`duration out of range: "${text}"`, pos);
  return ms;
}

/** A number literal as Prometheus' lexer reads it (decimal, hex, octal, Inf, NaN). */
export function parseNumber(text: string, pos?: number): number {
  const t = text.trim();
  let sign = 1;
  let body = t;
  if (body.startsWith('+') || body.startsWith('-')) {
    if (body.startsWith('-')) sign = -1;
    body = body.slice(1);
  }
  const lower = body.toLowerCase();
  if (lower === 'inf' || lower === 'infinity') return sign * Infinity;
  if (lower === 'nan') return NaN;
  if (/^0x[0-9a-f]+$/i.test(body)) return sign * parseInt(body.slice(2), 16);
  if (/^0[0-7]+$/.test(body)) return sign * parseInt(body, 8);
  if (/^(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(body)) return sign * Number(body);
  return bad(`unexpected number or duration "${text}"`, pos);
}

/** Go's strconv.Unquote for the three PromQL string forms. */
export function unquote(raw: string, pos?: number): string {
  const q = raw[0];
  if (raw.length < 2 || raw[raw.length - 1] !== q) bad('unterminated quoted string', pos);
  const inner = raw.slice(1, -1);
  if (q === '`') return inner;
  let out = '';
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i]!;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = inner[++i];
    switch (e) {
      case 'a':
        out += '\x07';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case '\\':
        out += '\\';
        break;
      case '"':
      case "'":
        if (e !== q) bad('invalid syntax in quoted string', pos);
        out += e;
        break;
      case 'x':
      case 'u':
      case 'U': {
        const len = e === 'x' ? 2 : e === 'u' ? 4 : 8;
        const hex = inner.slice(i + 1, i + 1 + len);
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) bad('invalid escape in quoted string', pos);
        const code = parseInt(hex, 16);
        if (e === 'x') {
          // A byte; PromQL strings are UTF-8, bytes >= 0x80 alone are not valid characters.
          if (code >= 0x80) bad('invalid \\x escape for a UTF-8 string', pos);
          out += String.fromCharCode(code);
        } else {
          if (code > 0x10ffff || (code >= 0xd800 && code < 0xe000)) bad('invalid unicode escape', pos);
          out += String.fromCodePoint(code);
        }
        i += len;
        break;
      }
      default: {
        if (e !== undefined && /[0-7]/.test(e)) {
          const oct = inner.slice(i, i + 3);
          if (!/^[0-7]{3}$/.test(oct) || parseInt(oct, 8) > 255) bad('invalid octal escape', pos);
          const code = parseInt(oct, 8);
          if (code >= 0x80) bad('invalid octal escape for a UTF-8 string', pos);
          out += String.fromCharCode(code);
          i += 2;
          break;
        }
        bad('unknown escape sequence', pos);
      }
    }
  }
  return out;
}

class Converter {
  constructor(private readonly src: string) {}

  private text(n: SyntaxNode): string {
    return this.src.slice(n.from, n.to);
  }

  expr(n: SyntaxNode): Expr {
    const kids = children(n);
    switch (n.type.name) {
      case 'ParenExpr':
        return { kind: 'paren', expr: this.expr(one(kids, n)) };
      case 'NumberDurationLiteral':
        return { kind: 'number', value: parseNumber(this.text(n), n.from) };
      case 'StringLiteral':
        return { kind: 'string', value: unquote(this.text(n), n.from) };
      case 'VectorSelector':
        return this.vectorSelector(n, kids);
      case 'MatrixSelector': {
        const rangeMs = this.duration(kids[1] ?? n);
        if (rangeMs <= 0) bad('duration must be greater than 0', n.from);
        return postfix(this.expr(kids[0] ?? n), (inner) => {
          if (inner.kind !== 'vectorSelector') bad('ranges only allowed for vector selectors', n.from);
          if (inner.offsetMs !== 0 || inner.at) bad('no offset modifiers allowed before range', n.from);
          return { kind: 'matrixSelector', selector: inner, rangeMs };
        });
      }
      case 'SubqueryExpr': {
        const rangeMs = this.duration(kids[1] ?? n);
        const stepMs = kids[2] ? this.duration(kids[2]) : 0;
        if (kids.length > 3) bad('unexpected input in subquery', n.from);
        if (rangeMs <= 0 || (kids[2] && stepMs <= 0)) bad('duration must be greater than 0', n.from);
        return postfix(this.expr(kids[0] ?? n), (inner) => ({
          kind: 'subquery',
          expr: inner,
          rangeMs,
          stepMs,
          offsetMs: 0,
        }));
      }
      case 'OffsetExpr':
        return this.offset(n, kids);
      case 'StepInvariantExpr':
        return this.at(n, kids);
      case 'FunctionCall':
        return this.call(n, kids);
      case 'AggregateExpr':
        return this.aggregate(n, kids);
      case 'BinaryExpr':
        return this.binary(n, kids);
      case 'UnaryExpr': {
        const op = this.text(kids[0] ?? n) === '-' ? '-' : '+';
        const inner = this.expr(kids[1] ?? n);
        if (inner.kind === 'number')
          return { kind: 'number', value: op === '-' ? -inner.value : inner.value };
        return { kind: 'unary', op, expr: inner };
      }
      default:
        return bad(`unsupported expression "${this.text(n)}"`, n.from);
    }
  }

  private vectorSelector(n: SyntaxNode, kids: SyntaxNode[]): Expr {
    const matchers: LabelMatcher[] = [];
    let name: string | undefined;
    for (const k of kids) {
      if (k.type.name === 'Identifier') name = this.text(k);
      else if (k.type.name === 'LabelMatchers') {
        for (const m of children(k)) {
          if (m.type.name !== 'UnquotedLabelMatcher') bad('quoted label names are not supported', m.from);
          const [ln, op, value] = children(m);
          if (!ln || !op || !value) bad('invalid label matcher', m.from);
          const type = MATCH_OPS[children(op)[0]?.type.name ?? ''];
          if (!type) bad('invalid label matcher operator', op.from);
          const matcher: LabelMatcher = {
            name: this.text(ln),
            type,
            value: unquote(this.text(value), value.from),
          };
          if (type === '=~' || type === '!~') compileMatcherRegex(matcher.value);
          matchers.push(matcher);
        }
      } else bad(`unexpected "${this.text(k)}" in selector`, k.from);
    }
    if (name !== undefined) {
      const dup = matchers.find((m) => m.name === '__name__');
      if (dup) bad(`metric name must not be set twice: "${name}" or "${dup.value}"`, n.from);
      matchers.unshift({ name: '__name__', type: '=', value: name });
    }
    if (!matchers.some((m) => !matcherMatchesEmpty(m))) {
      bad('vector selector must contain at least one non-empty matcher', n.from);
    }
    const sel: VectorSelectorNode = { kind: 'vectorSelector', matchers, offsetMs: 0 };
    return sel;
  }

  private duration(n: SyntaxNode): number {
    const kids = children(n);
    if (
      n.type.name !== 'DurationExpr' ||
      kids.length !== 1 ||
      kids[0]!.type.name !== 'NumberDurationLiteralInDurationContext'
    ) {
      bad('duration expressions are not supported', n.from);
    }
    return parseDuration(this.text(kids[0]!), n.from);
  }

  private offset(n: SyntaxNode, kids: SyntaxNode[]): Expr {
    const inner = this.expr(kids[0] ?? n);
    let d = kids[2];
    let sign = 1;
    while (d && d.type.name === 'OffsetDurationExpr') {
      const dk = children(d);
      if (dk.length === 1) d = dk[0];
      else if (dk.length === 2 && dk[0]!.type.name === 'UnaryOp') {
        if (this.text(dk[0]!) === '-') sign = -sign;
        d = dk[1];
      } else bad('duration expressions are not supported', d.from);
    }
    if (!d || d.type.name !== 'NumberDurationLiteralInDurationContext') bad('invalid offset', n.from);
    const ms = sign * parseDuration(this.text(d), d.from);
    return postfix(inner, (operand) => {
      const target = operand.kind === 'matrixSelector' ? operand.selector : operand;
      if (target.kind !== 'vectorSelector' && target.kind !== 'subquery') {
        bad(
          'offset modifier must be preceded by an instant vector selector or range vector selector or a subquery',
          n.from,
        );
      }
      if (target.offsetMs !== 0) bad('offset may not be set multiple times', n.from);
      target.offsetMs = ms;
      return operand;
    });
  }

  private at(n: SyntaxNode, kids: SyntaxNode[]): Expr {
    const inner = this.expr(kids[0] ?? n);
    const v = kids[2];
    if (!v) bad('invalid @ modifier', n.from);
    let at: AtModifier;
    if (v.type.name === 'AtModifierPreprocessors') {
      at = children(v)[0]?.type.name === 'AtEnd' ? { kind: 'end' } : { kind: 'start' };
    } else if (v.type.name === 'NumberDurationLiteral') {
      const s = parseNumber(this.text(v), v.from);
      const ms = Math.sign(s) * Math.round(Math.abs(s) * 1000);
      if (!Number.isFinite(s) || !Number.isSafeInteger(ms))
        bad('timestamp out of bounds for @ modifier', v.from);
      at = { kind: 'time', ms: ms === 0 ? 0 : ms };
    } else return bad('invalid @ modifier', v.from);
    return postfix(inner, (operand) => {
      const target = operand.kind === 'matrixSelector' ? operand.selector : operand;
      if (target.kind !== 'vectorSelector' && target.kind !== 'subquery') {
        bad(
          '@ modifier must be preceded by an instant vector selector or range vector selector or a subquery',
          n.from,
        );
      }
      if (target.at) bad('@ <timestamp> may not be set multiple times', n.from);
      target.at = at;
      return operand;
    });
  }

  private call(n: SyntaxNode, kids: SyntaxNode[]): Expr {
    const ident = kids[0];
    const body = kids[1];
    if (!ident || !body) bad('invalid function call', n.from);
    const spelled = this.text(ident);
    const func = spelled === HOLT_WINTERS_3X ? 'holt_winters' : spelled;
    if (!FUNCTIONS[func]) {
      if (UNSUPPORTED_FUNCTIONS.has(func) || /^[a-z_0-9]+$/.test(func)) unsupportedFunction(func);
      bad(`unknown function with name "${func}"`, n.from);
    }
    return { kind: 'call', func, args: children(body).map((a) => this.expr(a)) };
  }

  private aggregate(n: SyntaxNode, kids: SyntaxNode[]): Expr {
    let op: AggregateOp | undefined;
    let grouping: string[] = [];
    let without = false;
    let args: Expr[] = [];
    for (const k of kids) {
      if (k.type.name === 'AggregateOp') {
        const name = children(k)[0]?.type.name ?? '';
        op = AGGREGATE_OPS[name];
        if (!op) bad(`aggregation "${this.text(k)}" is not supported`, k.from);
      } else if (k.type.name === 'AggregateModifier') {
        const mk = children(k);
        without = mk[0]?.type.name === 'Without';
        grouping = mk[1] ? this.groupingLabels(mk[1]) : [];
      } else if (k.type.name === 'FunctionCallBody') {
        args = children(k).map((a) => this.expr(a));
      } else bad(`unexpected "${this.text(k)}" in aggregation`, k.from);
    }
    if (!op) return bad('aggregation operator expected', n.from);
    if (args.length === 0) bad('no arguments for aggregate expression provided', n.from);
    const withParam = op === 'topk' || op === 'bottomk' || op === 'quantile' || op === 'count_values';
    const desired = withParam ? 2 : 1;
    if (args.length !== desired) {
      bad(
        `wrong number of arguments for aggregate expression provided, expected ${desired}, got ${args.length}`,
        n.from,
      );
    }
    return withParam
      ? { kind: 'aggregate', op, param: args[0]!, expr: args[1]!, grouping, without }
      : { kind: 'aggregate', op, expr: args[0]!, grouping, without };
  }

  private groupingLabels(n: SyntaxNode): string[] {
    return children(n).map((l) => {
      if (l.type.name !== 'LabelName') bad('quoted label names are not supported', l.from);
      return this.text(l);
    });
  }

  private binary(n: SyntaxNode, kids: SyntaxNode[]): Expr {
    const lhsNode = kids[0];
    const rhsNode = kids[kids.length - 1];
    const opNode = kids[1];
    if (!lhsNode || !rhsNode || !opNode || kids.length < 3) bad('invalid binary expression', n.from);
    const op = BINARY_OPS[opNode.type.name];
    if (!op) bad(`binary operator "${this.text(opNode)}" is not supported`, opNode.from);
    let returnBool = false;
    let matching: VectorMatching | undefined;
    for (const k of kids.slice(2, -1)) {
      if (k.type.name === 'BoolModifier') returnBool = true;
      else if (k.type.name === 'MatchingModifierClause') matching = this.matching(k);
      else bad(`unexpected "${this.text(k)}" in binary expression`, k.from);
    }
    const rhs = this.expr(rhsNode);
    const lhsText = lhsNode.type.name === 'NumberDurationLiteral' ? this.text(lhsNode) : '';
    if (op === '^' && /^[+-]/.test(lhsText)) {
      // The grammar reads `-2 ^ x` as the literal -2; in PromQL unary minus binds looser than ^.
      const base: Expr = { kind: 'number', value: parseNumber(lhsText.slice(1), lhsNode.from) };
      const pow: Expr = { kind: 'binary', op, lhs: base, rhs, returnBool };
      return lhsText.startsWith('-') ? { kind: 'unary', op: '-', expr: pow } : pow;
    }
    const lhs = this.expr(lhsNode);
    const m: VectorMatching = matching ?? { card: 'one-to-one', on: false, labels: [], include: [] };
    if (SET_OPS.has(op) && m.card === 'one-to-one') m.card = 'many-to-many';
    return {
      kind: 'binary',
      op,
      lhs,
      rhs,
      returnBool,
      matching: m,
      ...(matching ? { explicitMatching: true } : {}),
    };
  }

  private matching(n: SyntaxNode): VectorMatching {
    const m: VectorMatching = { card: 'one-to-one', on: false, labels: [], include: [] };
    let seenGroup = false;
    for (const k of children(n)) {
      switch (k.type.name) {
        case 'On':
          m.on = true;
          break;
        case 'Ignoring':
          m.on = false;
          break;
        case 'GroupLeft':
          m.card = 'many-to-one';
          seenGroup = true;
          break;
        case 'GroupRight':
          m.card = 'one-to-many';
          seenGroup = true;
          break;
        case 'GroupingLabels':
          if (seenGroup) m.include = this.groupingLabels(k);
          else m.labels = this.groupingLabels(k);
          break;
        default:
          bad(`"${this.text(k)}" is not supported in vector matching`, k.from);
      }
    }
    return m;
  }
}

function one(kids: SyntaxNode[], n: SyntaxNode): SyntaxNode {
  if (kids.length !== 1) bad('unexpected input', n.from);
  return kids[0]!;
}

/** Whether a matcher accepts the empty string (Prometheus' Matcher.Matches("")). */
export function matcherMatchesEmpty(m: LabelMatcher): boolean {
  switch (m.type) {
    case '=':
      return m.value === '';
    case '!=':
      return m.value !== '';
    case '=~':
      return compileMatcherRegex(m.value).test('');
    case '!~':
      return !compileMatcherRegex(m.value).test('');
  }
}

/** The value type an expression evaluates to. */
export function typeOf(e: Expr): ValueType {
  switch (e.kind) {
    case 'number':
      return 'scalar';
    case 'string':
      return 'string';
    case 'vectorSelector':
    case 'aggregate':
      return 'instant vector';
    case 'matrixSelector':
    case 'subquery':
      return 'range vector';
    case 'call':
      return FUNCTIONS[e.func]!.returnType;
    case 'binary':
      return typeOf(e.lhs) === 'scalar' && typeOf(e.rhs) === 'scalar' ? 'scalar' : 'instant vector';
    case 'unary':
    case 'paren':
      return typeOf(e.expr);
  }
}

function expectType(e: Expr, want: ValueType, context: string): void {
  const got = typeOf(e);
  if (got !== want) bad(`expected type ${want} in ${context}, got ${got}`);
}

/** Prometheus' checkAST for the parts not already checked while converting. */
function checkType(e: Expr): void {
  switch (e.kind) {
    case 'matrixSelector':
      return checkType(e.selector);
    case 'subquery':
      checkType(e.expr);
      if (typeOf(e.expr) !== 'instant vector') {
        bad(`subquery is only allowed on instant vector, got ${typeOf(e.expr)} instead`);
      }
      return;
    case 'paren':
      return checkType(e.expr);
    case 'unary': {
      checkType(e.expr);
      const t = typeOf(e.expr);
      if (t !== 'scalar' && t !== 'instant vector') {
        bad('unary expression only allowed on expressions of type scalar or instant vector');
      }
      return;
    }
    case 'binary':
      checkType(e.lhs);
      checkType(e.rhs);
      return checkBinary(e);
    case 'aggregate':
      checkType(e.expr);
      expectType(e.expr, 'instant vector', 'aggregation expression');
      if (e.param) {
        checkType(e.param);
        expectType(e.param, e.op === 'count_values' ? 'string' : 'scalar', 'aggregation parameter');
      }
      return;
    case 'call': {
      const sig = FUNCTIONS[e.func]!;
      const nargs = sig.argTypes.length;
      if (sig.variadic === 0) {
        if (nargs !== e.args.length) {
          bad(`expected ${nargs} argument(s) in call to "${e.func}", got ${e.args.length}`);
        }
      } else {
        const na = nargs - 1;
        if (na > e.args.length) {
          bad(`expected at least ${na} argument(s) in call to "${e.func}", got ${e.args.length}`);
        } else if (sig.variadic > 0 && na + sig.variadic < e.args.length) {
          bad(
            `expected at most ${na + sig.variadic} argument(s) in call to "${e.func}", got ${e.args.length}`,
          );
        }
      }
      e.args.forEach((arg, i) => {
        checkType(arg);
        const t = sig.argTypes[Math.min(i, nargs - 1)];
        if (i >= nargs && sig.variadic !== -1) return;
        if (t) expectType(arg, t, `call to function "${e.func}"`);
      });
      return;
    }
    default:
      return;
  }
}

/** Prometheus' checks of a binary expression (after postfix modifiers found their operands). */
function checkBinary(e: Extract<Expr, { kind: 'binary' }>): void {
  const { op, returnBool } = e;
  const lt = typeOf(e.lhs);
  const rt = typeOf(e.rhs);
  if (returnBool && !COMPARISON_OPS.has(op)) bad('bool modifier can only be used on comparison operators');
  if (COMPARISON_OPS.has(op) && !returnBool && lt === 'scalar' && rt === 'scalar') {
    bad('comparisons between scalars must use BOOL modifier');
  }
  const m = e.matching;
  if (m?.on) {
    for (const l of m.include) {
      if (m.labels.includes(l)) bad(`label "${l}" must not occur in ON and GROUP clause at once`);
    }
  }
  for (const t of [lt, rt]) {
    if (t !== 'scalar' && t !== 'instant vector')
      bad('binary expression must contain only scalar and instant vector types');
  }
  const bothVectors = lt === 'instant vector' && rt === 'instant vector';
  if (!bothVectors) {
    if (e.explicitMatching && m && m.labels.length > 0)
      bad('vector matching only allowed between instant vectors');
    delete e.matching;
  } else if (SET_OPS.has(op) && m && (m.card === 'one-to-many' || m.card === 'many-to-one')) {
    bad(`no grouping allowed for "${op}" operation`);
  }
  if ((lt === 'scalar' || rt === 'scalar') && SET_OPS.has(op))
    bad(`set operator "${op}" not allowed in binary scalar expression`);
  delete e.explicitMatching;
}

/**
 * Applies a postfix modifier (range, subquery, offset, @) to its operand. The lezer grammar
 * attaches them to a whole preceding binary or unary expression; PromQL binds them to the
 * rightmost operand.
 */
function postfix(e: Expr, apply: (operand: Expr) => Expr): Expr {
  if (e.kind === 'binary') return { ...e, rhs: postfix(e.rhs, apply) };
  if (e.kind === 'unary') return { ...e, expr: postfix(e.expr, apply) };
  return apply(e);
}

/** Label names valid in Prometheus 2.42 (count_values, label_replace targets). */
export function isValidLabelName(name: string): boolean {
  return LABEL_NAME_RE.test(name);
}
