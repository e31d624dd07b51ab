/**
 * The built-in alert rules (rules/gpu-health.rules.yml) and the health model (src/health/) judge a
 * GPU alike: the XIDs `GPUXidCritical` fires on are exactly the catalog's critical ones, and
 * `GPUOverheating` uses each model's slowdown temperature from the limits table (85 C otherwise).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseRuleFile, type AlertingRuleSpec } from '../../src/alerting/rules-file.js';
import { DEFAULT_SLOWDOWN_C, MODEL_SLOWDOWN_C } from '../../src/health/limits.js';
import { XID_CATALOG } from '../../src/health/xid.js';

const FILE = new URL('../../rules/gpu-health.rules.yml', import.meta.url);
const rules = parseRuleFile(readFileSync(FILE, 'utf8'), 'rules/gpu-health.rules.yml')
  .flatMap((g) => g.rules)
  .filter((r): r is AlertingRuleSpec => r.kind === 'alert');
const rule = (name: string): AlertingRuleSpec => {
  const found = rules.find((r) => r.name === name);
  if (!found) throw new Error(`no built-in rule ${name}`);
  return found;
};

describe('built-in rules agree with the health model', () => {
  it('GPUXidCritical fires on exactly the XIDs the catalog rates critical', () => {
    const inRule = [...rule('GPUXidCritical').expr.matchAll(/== (\d+)/g)].map((m) => Number(m[1]));
    const critical = XID_CATALOG.filter((x) => x.severity === 'critical').map((x) => x.code);
    expect(inRule.sort((a, b) => a - b)).toEqual([...critical].sort((a, b) => a - b));
  });

  it("GPUOverheating uses each model's slowdown temperature, and the default for the rest", () => {
    const expr = rule('GPUOverheating').expr;
    const threshold = new Map<string, number>();
    for (const m of expr.matchAll(/modelName(=~|=)"([^"]+)"\}\s*>=\s*(\d+)/g))
      for (const model of m[2]!.split('|')) threshold.set(model, Number(m[3]));
    const fallback = /modelName!~"[^"]+"\}\s*>=\s*(\d+)/.exec(expr);
    expect(Number(fallback?.[1])).toBe(DEFAULT_SLOWDOWN_C);
    for (const [model, limit] of Object.entries(MODEL_SLOWDOWN_C))
      expect(threshold.get(model) ?? DEFAULT_SLOWDOWN_C, model).toBe(limit);
    // Every model the rule names is in the table with that limit (no stale entry in the rule).
    for (const [model, limit] of threshold) expect(MODEL_SLOWDOWN_C[model], model).toBe(limit);
  });
});
