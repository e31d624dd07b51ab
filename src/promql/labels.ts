/**
 * Label-set helpers of the PromQL engine: Prometheus' label order, identity keys, matching
 * signatures and metric-name dropping. Results are cached per label object, because a range query
 * meets the same series at every step.
 */
import type { LabelMatcher, Labels } from './types.js';
import { compileMatcherRegex } from './regex.js';

const SEP = '\xff';
const keyCache = new WeakMap<Labels, string>();
const dropCache = new WeakMap<Labels, Labels>();
const sigCache = new WeakMap<Labels, Map<string, string>>();

/** Label names of a set, sorted (byte order, as Prometheus keeps labels). */
export function sortedNames(l: Labels): string[] {
  return Object.keys(l).sort(cmp);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A string identifying a label set (equal sets, equal keys). */
export function labelsKey(l: Labels): string {
  let k = keyCache.get(l);
  if (k === undefined) {
    k = sortedNames(l)
      .map((n) => n + SEP + l[n]!)
      .join(SEP);
    keyCache.set(l, k);
  }
  return k;
}

/** Prometheus' labels.Compare: pairwise by name then value over the sorted labels, then by length. */
export function compareLabels(a: Labels, b: Labels): number {
  const an = sortedNames(a);
  const bn = sortedNames(b);
  const len = Math.min(an.length, bn.length);
  for (let i = 0; i < len; i++) {
    const x = an[i]!;
    const y = bn[i]!;
    if (x !== y) return cmp(x, y);
    const c = cmp(a[x]!, b[y]!);
    if (c !== 0) return c;
  }
  return an.length - bn.length;
}

/** The label set without `__name__` (the same object when there is none). */
export function dropName(l: Labels): Labels {
  if (!('__name__' in l)) return l;
  let d = dropCache.get(l);
  if (!d) {
    const { __name__: _, ...rest } = l;
    d = rest;
    dropCache.set(l, d);
  }
  return d;
}

/** The cache key of a matching or grouping spec: pass it to {@link signature} when calling it per sample. */
export function signatureSpec(on: boolean, names: readonly string[]): string {
  return (on ? '1' : '0') + names.join(SEP);
}

/**
 * The matching signature of a label set: only `names` (on) or all labels but `names` and
 * `__name__` (ignoring / without), as Prometheus' signatureFunc and grouping keys.
 */
export function signature(
  l: Labels,
  on: boolean,
  names: readonly string[],
  spec: string = signatureSpec(on, names),
): string {
  let m = sigCache.get(l);
  if (!m) {
    m = new Map();
    sigCache.set(l, m);
  }
  let s = m.get(spec);
  if (s === undefined) {
    const keep = on
      ? [...new Set(names)].filter((n) => l[n] !== undefined && l[n] !== '').sort(cmp)
      : sortedNames(l).filter((n) => n !== '__name__' && !names.includes(n));
    s = keep.map((n) => n + SEP + l[n]!).join(SEP);
    m.set(spec, s);
  }
  return s;
}

/** Whether a label set satisfies one matcher (a missing label reads as ""). */
export function matches(m: LabelMatcher, l: Labels): boolean {
  const v = l[m.name] ?? '';
  switch (m.type) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return compileMatcherRegex(m.value).test(v);
    case '!~':
      return !compileMatcherRegex(m.value).test(v);
  }
}

/** Prometheus' Labels.String(): `{a="1", b="2"}` (sorted, Go-quoted values). */
export function labelsString(l: Labels): string {
  return `{${sortedNames(l)
    .map((n) => `${n}=${JSON.stringify(l[n])}`)
    .join(', ')}}`;
}
