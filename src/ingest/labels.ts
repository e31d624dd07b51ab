/**
 * Parser for DCGM's `labels_raw` column: the Prometheus label set of the exported series, written
 * as `key="value",key2="value2"` once the CSV field is unquoted. Values may contain commas, `=`
 * and backslash escapes (`\"`, `\\`, `\n`), as in the Prometheus text format.
 *
 * Strict: a malformed label set (a quote that is never closed, a key without `=` or without a value,
 * text after a closing quote, a duplicate key) is refused as a whole rather than parsed in part, so a
 * row whose labels were cut short never becomes a different series.
 */

/** Result of {@link parseLabels}: the labels, or why the text is not a label set. */
export type LabelsResult =
  { ok: true; labels: Record<string, string> } | { ok: false; detail: string; offset: number };

function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}

/** Characters that cannot appear in a label name: `=`, `,`, `"`, `{`, `}`, `\`, space, tab, CR, LF. */
function isKeyChar(c: number): boolean {
  return !(
    c === 61 ||
    c === 44 ||
    c === 34 ||
    c === 123 ||
    c === 125 ||
    c === 92 ||
    c === 32 ||
    c === 9 ||
    c === 10 ||
    c === 13
  );
}

/** Set `key` on a plain object, including `__proto__` as an own property. */
function setLabel(labels: Record<string, string>, key: string, value: string): void {
  if (key === '__proto__') {
    Object.defineProperty(labels, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    labels[key] = value;
  }
}

/**
 * Parse `labels_raw` strictly.
 *
 * Grammar: optional surrounding `{...}`; pairs `key=value` separated by commas (spaces and tabs
 * allowed around each part, one trailing comma allowed). A key is a non-empty run of characters
 * other than `= , " { } \` and white space. A value is either a double-quoted string with the escapes
 * `\"`, `\\`, `\n` (any other `\x` stands for `x`), or a non-empty unquoted run of characters up to
 * the next comma (no quotes, braces or backslashes). The empty string is the empty label set.
 *
 * @example parseLabels('gpu="0",Hostname="h1"') // { ok: true, labels: { gpu: '0', Hostname: 'h1' } }
 * @returns the labels, or `ok: false` with what is wrong and where (`offset` in `raw`).
 */
export function parseLabels(raw: string): LabelsResult {
  const labels: Record<string, string> = {};
  const fail = (detail: string, offset: number): LabelsResult => ({ ok: false, detail, offset });
  let n = raw.length;
  let i = 0;
  while (i < n && isSpace(raw.charCodeAt(i))) i++;
  while (n > i && isSpace(raw.charCodeAt(n - 1))) n--;
  if (i < n && raw.charCodeAt(i) === 123 /* { */) {
    if (raw.charCodeAt(n - 1) !== 125 /* } */) return fail('"{" is not closed by "}"', i);
    i++;
    n--;
  }
  for (;;) {
    while (i < n && isSpace(raw.charCodeAt(i))) i++;
    if (i >= n) break;
    // Key.
    const keyStart = i;
    while (i < n && isKeyChar(raw.charCodeAt(i))) i++;
    if (i === keyStart) {
      return fail(`expected a label name, found ${JSON.stringify(raw[i])}`, i);
    }
    const key = raw.slice(keyStart, i);
    while (i < n && isSpace(raw.charCodeAt(i))) i++;
    if (i >= n || raw.charCodeAt(i) !== 61 /* = */) {
      return fail(`label ${JSON.stringify(key.slice(0, 64))} has no "="`, i);
    }
    i++;
    while (i < n && isSpace(raw.charCodeAt(i))) i++;
    // Value.
    let value: string;
    if (i < n && raw.charCodeAt(i) === 34 /* " */) {
      const open = i;
      const close = raw.indexOf('"', i + 1);
      const slash = raw.indexOf('\\', i + 1);
      if (close !== -1 && close < n && (slash === -1 || slash > close)) {
        // Common case: no escapes inside the value.
        value = raw.slice(i + 1, close);
        i = close + 1;
      } else {
        let k = i + 1;
        let v = '';
        let closed = false;
        while (k < n) {
          const ch = raw.charCodeAt(k);
          if (ch === 34) {
            closed = true;
            break;
          }
          if (ch === 92 /* \ */) {
            if (k + 1 >= n) break;
            const e = raw[k + 1]!;
            v += e === 'n' ? '\n' : e;
            k += 2;
            continue;
          }
          v += raw[k];
          k++;
        }
        if (!closed)
          return fail(`the value of label ${JSON.stringify(key.slice(0, 64))} is not closed`, open);
        value = v;
        i = k + 1;
      }
    } else {
      const start = i;
      while (i < n) {
        const ch = raw.charCodeAt(i);
        if (ch === 44) break;
        if (ch === 34 || ch === 92 || ch === 123 || ch === 125) {
          return fail(
            `unexpected ${JSON.stringify(raw[i])} in the unquoted value of label ${JSON.stringify(key.slice(0, 64))}`,
            i,
          );
        }
        i++;
      }
      value = raw.slice(start, i).trim();
      if (value === '')
        return fail(`label ${JSON.stringify(key.slice(0, 64))} has no value after "="`, start);
    }
    if (Object.prototype.hasOwnProperty.call(labels, key)) {
      return fail(`label ${JSON.stringify(key.slice(0, 64))} appears twice`, keyStart);
    }
    setLabel(labels, key, value);
    while (i < n && isSpace(raw.charCodeAt(i))) i++;
    if (i >= n) break;
    if (raw.charCodeAt(i) !== 44 /* , */) {
      return fail(
        `unexpected ${JSON.stringify(raw[i])} after the value of label ${JSON.stringify(key.slice(0, 64))}`,
        i,
      );
    }
    i++;
  }
  return { ok: true, labels };
}
