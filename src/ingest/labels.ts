/**
 * Parser for DCGM's `labels_raw` column: the Prometheus label set of the exported series, written
 * as `key="value",key2="value2"` once the CSV field is unquoted. Values may contain commas, `=`
 * and backslash escapes (`\"`, `\\`, `\n`), as in the Prometheus text format.
 */

/**
 * Parse `labels_raw` into a plain object. Tolerant: an empty string gives `{}`, unquoted values are
 * read up to the next comma, and a trailing fragment without `=` is ignored.
 *
 * @example parseLabels('gpu="0",Hostname="h1"') // { gpu: '0', Hostname: 'h1' }
 */
export function parseLabels(raw: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const n = raw.length;
  let i = 0;
  while (i < n) {
    // Skip separators and spaces before a key.
    let c = raw.charCodeAt(i);
    while (c === 44 /* , */ || c === 32 || c === 9 || c === 123 /* { */) {
      i++;
      c = raw.charCodeAt(i);
    }
    if (i >= n) break;
    const eq = raw.indexOf('=', i);
    if (eq === -1) break;
    const key = raw.slice(i, eq).trim();
    let j = eq + 1;
    let value: string;
    if (raw.charCodeAt(j) === 34 /* " */) {
      const close = raw.indexOf('"', j + 1);
      const slash = raw.indexOf('\\', j + 1);
      if (slash === -1 || (close !== -1 && slash > close)) {
        // Common case: no escapes inside the value.
        const stop = close === -1 ? n : close;
        value = raw.slice(j + 1, stop);
        j = close === -1 ? n : close + 1;
      } else {
        let k = j + 1;
        let v = '';
        while (k < n) {
          const ch = raw.charCodeAt(k);
          if (ch === 34) break;
          if (ch === 92 /* \ */ && k + 1 < n) {
            const e = raw[k + 1];
            v += e === 'n' ? '\n' : (e ?? '');
            k += 2;
            continue;
          }
          v += raw[k];
          k++;
        }
        value = v;
        j = k + 1;
      }
    } else {
      const comma = raw.indexOf(',', j);
      const stop = comma === -1 ? n : comma;
      value = raw.slice(j, stop).trim();
      j = stop;
    }
    if (key.length > 0) labels[key] = value;
    i = j;
  }
  return labels;
}
