/**
 * Prometheus rule files (YAML: `groups` of alerting and recording rules) parsed and checked the way
 * `promtool check rules` checks them: unknown fields, missing or conflicting fields, durations,
 * label names, templates and PromQL. The first problem refuses the whole file with its file name,
 * line, column and reason (NexusError CONFIG_INVALID, details `{file, line, column, reason}`).
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import { NexusError } from '../errors.js';
import { parseDuration, parsePromQL } from '../promql/parse.js';
import { compileTemplate } from './template.js';

/** An alerting rule (`alert:`). */
export interface AlertingRuleSpec {
  kind: 'alert';
  name: string;
  expr: string;
  /** `for`: how long the expression must hold before the alert fires (ms). */
  forMs: number;
  /** `keep_firing_for`: how long a firing alert stays firing after the expression stops (ms). */
  keepFiringForMs: number;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Line of the rule in its file (1-based). */
  line: number;
}

/** A recording rule (`record:`). */
export interface RecordingRuleSpec {
  kind: 'record';
  name: string;
  expr: string;
  labels: Record<string, string>;
  line: number;
}

export type RuleSpec = AlertingRuleSpec | RecordingRuleSpec;

/** One group of one file. */
export interface RuleGroupSpec {
  name: string;
  file: string;
  /** The group's `interval` (ms); undefined: the global evaluation interval. */
  intervalMs: number | undefined;
  /** `limit`: most alerts (or series) one rule may produce; 0 = none. */
  limit: number;
  rules: RuleSpec[];
}

/** Where and why a rule file was refused. */
export interface RuleFileProblem {
  file: string;
  line: number;
  column: number;
  reason: string;
}

const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const GROUP_FIELDS = new Set(['name', 'interval', 'limit', 'rules']);
const RULE_FIELDS = new Set(['record', 'alert', 'expr', 'for', 'keep_firing_for', 'labels', 'annotations']);

class Refusal extends Error {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {
    super(reason);
  }
}

const offsetOf = (node: unknown): number => {
  const range = (node as Node | undefined)?.range;
  return range ? range[0] : 0;
};

function fail(node: unknown, reason: string): never {
  throw new Refusal(offsetOf(node), reason);
}

function scalarText(node: unknown, what: string): string {
  if (!isScalar(node)) fail(node, `${what} must be a string`);
  const v = node.value;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return fail(node, `${what} must be a string`);
}

function mapOf(node: unknown, what: string): YAMLMap {
  if (!isMap(node)) fail(node, `${what} must be a mapping`);
  return node;
}

function pairs(map: YAMLMap): Pair[] {
  return map.items as Pair[];
}

function keyOf(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : '';
}

function durationOf(node: unknown, field: string): number {
  const text = scalarText(node, field);
  try {
    return parseDuration(text);
  } catch {
    return fail(node, `${field}: not a valid duration string: "${text}"`);
  }
}

function stringMap(node: unknown, field: string, templates: boolean): Record<string, string> {
  if (node === undefined || node === null || (isScalar(node) && node.value === null)) return {};
  const map = mapOf(node, field);
  const out: Record<string, string> = {};
  for (const pair of pairs(map)) {
    const name = keyOf(pair);
    if (!LABEL_NAME_RE.test(name))
      fail(pair.key, `${field}: invalid ${field.replace(/s$/, '')} name: "${name}"`);
    const value = scalarText(pair.value, `${field}.${name}`);
    if (templates) {
      try {
        compileTemplate(value);
      } catch (error) {
        fail(pair.value, `${field}.${name}: template: ${(error as Error).message}`);
      }
    }
    out[name] = value;
  }
  return out;
}

function checkExpr(node: unknown, source: string, expr: string): void {
  try {
    // Like promtool, a range vector or string result is refused only when evaluated.
    parsePromQL(expr);
  } catch (error) {
    const message = (error as Error).message;
    const at = /at position (\d+)/.exec(message);
    let offset = offsetOf(node);
    if (at && isScalar(node)) {
      // Point into the expression: its value starts after the quote, or on the next line of a block scalar.
      const pos = Number(at[1]);
      const block = node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED';
      const head = block ? source.indexOf('\n', offset) + 1 : offset + (node.type === 'PLAIN' ? 0 : 1);
      const lines = expr.slice(0, pos).split('\n');
      let cursor = head;
      for (let i = 0; i < lines.length - 1; i++) cursor = source.indexOf('\n', cursor) + 1;
      const indent = block ? (/^[ \t]*/.exec(source.slice(cursor))?.[0].length ?? 0) : 0;
      offset = cursor + indent + lines[lines.length - 1]!.length;
    }
    throw new Refusal(offset, `expr: ${message}`);
  }
}

function parseRule(node: unknown, source: string, lineOf: (offset: number) => number): RuleSpec {
  const map = mapOf(node, 'rule');
  const fields = new Map<string, Pair>();
  for (const pair of pairs(map)) {
    const key = keyOf(pair);
    if (!RULE_FIELDS.has(key)) fail(pair.key, `field ${key} not found in type rulefmt.Rule`);
    fields.set(key, pair);
  }
  const value = (key: string): unknown => fields.get(key)?.value;
  const record = fields.get('record');
  const alert = fields.get('alert');
  if (record && alert) fail(map, 'only one of "record" and "alert" must be set');
  if (!record && !alert) fail(map, 'one of "record" or "alert" must be set');
  const exprNode = value('expr');
  if (exprNode === undefined) fail(map, 'field "expr" must be set in rule');
  const expr = scalarText(exprNode, 'expr');
  if (expr.trim() === '') fail(exprNode, 'field "expr" must be set in rule');
  checkExpr(exprNode, source, expr);
  const line = lineOf(offsetOf(map));
  if (record) {
    const name = scalarText(record.value, 'record');
    if (!METRIC_NAME_RE.test(name)) fail(record.value, `invalid recording rule name: ${name}`);
    for (const key of ['for', 'keep_firing_for', 'annotations'] as const) {
      if (fields.has(key)) fail(fields.get(key)!.key, `invalid field "${key}" in recording rule`);
    }
    return { kind: 'record', name, expr, labels: stringMap(value('labels'), 'labels', false), line };
  }
  const name = scalarText(alert!.value, 'alert');
  if (name.trim() === '') fail(alert!.value, 'field "alert" must be set in rule');
  const labels = stringMap(value('labels'), 'labels', true);
  const annotations = stringMap(value('annotations'), 'annotations', true);
  return {
    kind: 'alert',
    name,
    expr,
    forMs: fields.has('for') ? durationOf(value('for'), 'for') : 0,
    keepFiringForMs: fields.has('keep_firing_for')
      ? durationOf(value('keep_firing_for'), 'keep_firing_for')
      : 0,
    labels,
    annotations,
    line,
  };
}

/**
 * Parse and check one rule file's text.
 * @throws NexusError('CONFIG_INVALID') with details {@link RuleFileProblem} at the first problem
 */
export function parseRuleFile(text: string, file: string): RuleGroupSpec[] {
  const counter = new LineCounter();
  const position = (offset: number): { line: number; column: number } => {
    const p = counter.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const refuse = (offset: number, reason: string): never => {
    const { line, column } = position(offset);
    const problem: RuleFileProblem = { file, line, column, reason };
    throw new NexusError('CONFIG_INVALID', `rule file ${file}:${line}:${column}: ${reason}`, {
      details: { ...problem },
    });
  };
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true, prettyErrors: false });
  const syntax = doc.errors[0];
  if (syntax) refuse(syntax.pos[0], `yaml: ${syntax.message.split('\n')[0]}`);
  try {
    const root = doc.contents;
    if (root === null || (isScalar(root) && root.value === null)) return [];
    const top = mapOf(root, 'rule file');
    const groups: RuleGroupSpec[] = [];
    const names = new Set<string>();
    for (const pair of pairs(top)) {
      const key = keyOf(pair);
      if (key !== 'groups') fail(pair.key, `field ${key} not found in type rulefmt.RuleGroups`);
      if (pair.value === null || (isScalar(pair.value) && pair.value.value === null)) continue;
      if (!isSeq(pair.value)) fail(pair.value, 'groups must be a list');
      for (const item of pair.value.items) {
        const group = mapOf(item, 'group');
        const fields = new Map<string, Pair>();
        for (const gp of pairs(group)) {
          const gk = keyOf(gp);
          if (!GROUP_FIELDS.has(gk)) fail(gp.key, `field ${gk} not found in type rulefmt.RuleGroup`);
          fields.set(gk, gp);
        }
        const nameNode = fields.get('name')?.value;
        const name = nameNode === undefined ? '' : scalarText(nameNode, 'name');
        if (name === '') fail(group, 'Groupname must not be empty');
        if (names.has(name)) fail(nameNode, `groupname: "${name}" is repeated in the same file`);
        names.add(name);
        const intervalNode = fields.get('interval')?.value;
        const intervalMs = intervalNode === undefined ? undefined : durationOf(intervalNode, 'interval');
        const limitNode = fields.get('limit')?.value;
        const limit = limitNode === undefined ? 0 : Number(scalarText(limitNode, 'limit'));
        if (!Number.isInteger(limit) || limit < 0) fail(limitNode, 'limit must be a non-negative integer');
        const rulesNode = fields.get('rules')?.value;
        const rules: RuleSpec[] = [];
        if (rulesNode !== undefined && !(isScalar(rulesNode) && rulesNode.value === null)) {
          if (!isSeq(rulesNode)) fail(rulesNode, 'rules must be a list');
          for (const ruleNode of rulesNode.items)
            rules.push(parseRule(ruleNode, text, (o) => position(o).line));
        }
        groups.push({ name, file, intervalMs, limit, rules });
      }
    }
    return groups;
  } catch (error) {
    if (error instanceof Refusal) return refuse(error.offset, error.reason);
    throw error;
  }
}
