/**
 * The part of Prometheus' alert templates (Go text/template) that rule labels and annotations use:
 * actions `{{ ... }}` (with `{{-` / `-}}` trimming) holding a pipeline of `$labels.name`,
 * `$externalLabels.name`, `$value`, `.Labels.name`, `.Value`, string and number literals, and the
 * functions humanize, humanize1024, humanizePercentage, humanizeDuration, printf, toUpper, toLower,
 * title (`{{ humanize $value }}`, `{{ $value | humanize }}`). Anything else (if, range, with, query)
 * is refused when the rule file loads.
 */

/** What a template sees. */
export interface TemplateData {
  labels: Record<string, string>;
  externalLabels?: Record<string, string>;
  value: number;
}

type Operand = (data: TemplateData) => unknown;
type Fn = (...args: unknown[]) => string;

const toNumber = (v: unknown): number => {
  if (typeof v === 'number') return v;
  const n = Number(v);
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(n)) return n;
  throw new Error(`can't convert ${JSON.stringify(v)} to float`);
};

/** Go's `%.{precision}g`: shortest of fixed and exponent notation, trailing zeros dropped. */
export function goG(v: number, precision = 4): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (v === 0) return '0';
  const exp = Math.floor(Math.log10(Math.abs(Number(v.toPrecision(precision)))));
  if (exp < -4 || exp >= precision) {
    const [mant, e] = v.toExponential(precision - 1).split('e');
    const m = mant!.includes('.') ? mant!.replace(/0+$/, '').replace(/\.$/, '') : mant!;
    const n = Number(e);
    return `${m}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  const fixed = v.toFixed(Math.max(0, precision - 1 - exp));
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

/** Go's `%v` of a float64 (strconv 'g', shortest): exponent notation below 1e-4 and from 1e6. */
export function goFloat(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  if (v === 0) return '0';
  const exp = Number(v.toExponential().split('e')[1]);
  if (exp < -4 || exp >= 6) {
    const [m, e] = v.toExponential().split('e');
    const n = Number(e);
    return `${m}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  return String(v);
}

function humanizeWith(v: number, base: number, big: string[], small: string[]): string {
  if (v === 0 || !Number.isFinite(v)) return goG(v);
  let prefix = '';
  if (Math.abs(v) >= 1) {
    for (const p of big) {
      if (Math.abs(v) < base) break;
      prefix = p;
      v /= base;
    }
  } else {
    for (const p of small) {
      if (Math.abs(v) >= 1) break;
      prefix = p;
      v *= base;
    }
  }
  return `${goG(v)}${prefix}`;
}

function humanizeDuration(v: number): string {
  if (!Number.isFinite(v)) return goG(v);
  if (v === 0) return '0s';
  if (Math.abs(v) >= 1) {
    const sign = v < 0 ? '-' : '';
    const abs = Math.abs(v);
    const d = Math.trunc(abs);
    const [s, m, h, days] = [
      d % 60,
      Math.floor(d / 60) % 60,
      Math.floor(d / 3600) % 24,
      Math.floor(d / 86400),
    ];
    if (days !== 0) return `${sign}${days}d ${h}h ${m}m ${s}s`;
    if (h !== 0) return `${sign}${h}h ${m}m ${s}s`;
    if (m !== 0) return `${sign}${m}m ${s}s`;
    return `${sign}${goG(abs)}s`;
  }
  let prefix = '';
  for (const p of ['m', 'u', 'n', 'p', 'f', 'a', 'z', 'y']) {
    if (Math.abs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return `${goG(v)}${prefix}s`;
}

function printf(format: unknown, ...args: unknown[]): string {
  let i = 0;
  return String(format).replace(
    /%([-+ 0#]*)(\d+)?(?:\.(\d+))?([sdfgvqxe%])/g,
    (_m, _flags, _w, prec, verb) => {
      if (verb === '%') return '%';
      const arg = args[i++];
      const p = prec === undefined ? undefined : Number(prec);
      switch (verb as string) {
        case 'd':
          return String(Math.trunc(toNumber(arg)));
        case 'f':
          return toNumber(arg).toFixed(p ?? 6);
        case 'e':
          return toNumber(arg).toExponential(p ?? 6);
        case 'g':
          return p === undefined ? goFloat(toNumber(arg)) : goG(toNumber(arg), p);
        case 'q':
          return JSON.stringify(String(arg));
        case 'x':
          return Math.trunc(toNumber(arg)).toString(16);
        default:
          return typeof arg === 'number' ? goFloat(arg) : String(arg);
      }
    },
  );
}

const FUNCTIONS: Record<string, Fn> = {
  humanize: (v) =>
    humanizeWith(
      toNumber(v),
      1000,
      ['k', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'],
      ['m', 'u', 'n', 'p', 'f', 'a', 'z', 'y'],
    ),
  humanize1024: (v) => {
    const n = toNumber(v);
    return Math.abs(n) <= 1
      ? goG(n)
      : humanizeWith(n, 1024, ['ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei', 'Zi', 'Yi'], []);
  },
  humanizePercentage: (v) => `${goG(toNumber(v) * 100)}%`,
  humanizeDuration: (v) => humanizeDuration(toNumber(v)),
  printf: (format, ...args) => printf(format, ...args),
  toUpper: (v) => String(v).toUpperCase(),
  toLower: (v) => String(v).toLowerCase(),
  title: (v) => String(v).replace(/\b\w/g, (c) => c.toUpperCase()),
};

const TOKEN_RE = /\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\||[^\s|]+)/y;

function operand(token: string): Operand {
  if (token.startsWith('"')) {
    const s = JSON.parse(token) as string;
    return () => s;
  }
  if (token.startsWith('`')) return () => token.slice(1, -1);
  if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(token)) {
    const n = Number(token);
    return () => n;
  }
  if (token === '$value' || token === '.Value') return (d) => d.value;
  const field =
    /^(?:\$labels|\.Labels|\$externalLabels|\.ExternalLabels)(?:\.([a-zA-Z_][a-zA-Z0-9_]*))?$/.exec(token);
  if (field) {
    const external = token.startsWith('$externalLabels') || token.startsWith('.ExternalLabels');
    const name = field[1];
    return (d) => {
      const set = (external ? d.externalLabels : d.labels) ?? {};
      if (name === undefined)
        return `map[${Object.keys(set)
          .sort()
          .map((k) => `${k}:${set[k]}`)
          .join(' ')}]`;
      return set[name] ?? '<no value>';
    };
  }
  throw new Error(`unsupported operand "${token}"`);
}

/** One action: a pipeline of commands, each a function with arguments or a single operand. */
function compileAction(body: string): (data: TemplateData) => string {
  const tokens: string[] = [];
  TOKEN_RE.lastIndex = 0;
  const text = body.trim();
  let m: RegExpExecArray | null;
  while (TOKEN_RE.lastIndex < text.length && (m = TOKEN_RE.exec(text)) !== null) tokens.push(m[1]!);
  if (tokens.length === 0) throw new Error('missing value for command');
  const commands: string[][] = [[]];
  for (const t of tokens) {
    if (t === '|') commands.push([]);
    else commands[commands.length - 1]!.push(t);
  }
  if (commands.some((c) => c.length === 0)) throw new Error('missing command in pipeline');
  const stages = commands.map((cmd, index) => {
    const head = cmd[0]!;
    const fn = FUNCTIONS[head];
    if (fn === undefined) {
      if (/^[a-zA-Z]/.test(head)) throw new Error(`function "${head}" not defined`);
      if (cmd.length > 1 || index > 0) throw new Error(`can't give argument to non-function ${head}`);
      const value = operand(head);
      return (_prev: unknown, d: TemplateData) => value(d);
    }
    const args = cmd.slice(1).map(operand);
    return (prev: unknown, d: TemplateData) => fn(...args.map((a) => a(d)), ...(index > 0 ? [prev] : []));
  });
  return (d) => {
    let value: unknown;
    for (const stage of stages) value = stage(value, d);
    return typeof value === 'number' ? goFloat(value) : String(value);
  };
}

/**
 * Compile a template.
 * @throws Error with the reason when it uses anything outside the supported subset
 */
export function compileTemplate(text: string): (data: TemplateData) => string {
  const parts: ((d: TemplateData) => string)[] = [];
  let rest = text;
  let trimNext = false;
  while (rest.length > 0) {
    const open = rest.indexOf('{{');
    let literal = open < 0 ? rest : rest.slice(0, open);
    if (trimNext) literal = literal.replace(/^\s+/, '');
    if (open < 0) {
      parts.push(() => literal);
      break;
    }
    const close = rest.indexOf('}}', open + 2);
    if (close < 0) throw new Error('unclosed action');
    let body = rest.slice(open + 2, close);
    if (body.startsWith('-') && /^-\s/.test(body)) {
      literal = literal.replace(/\s+$/, '');
      body = body.slice(1);
    }
    trimNext = /\s-$/.test(body);
    if (trimNext) body = body.slice(0, -1);
    const lit = literal;
    parts.push(() => lit);
    if (!/^\s*\/\*[\s\S]*\*\/\s*$/.test(body)) parts.push(compileAction(body));
    rest = rest.slice(close + 2);
  }
  return (d) => parts.map((p) => p(d)).join('');
}

/** Expand `text` with `data`; a template that fails at run time gives Prometheus' error text. */
export function expandTemplate(text: string, data: TemplateData): string {
  try {
    return compileTemplate(text)(data);
  } catch (error) {
    return `<error expanding template: ${(error as Error).message}>`;
  }
}
