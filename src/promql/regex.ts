/**
 * Go RE2 regular expressions (label matchers, label_replace) as fully anchored JavaScript
 * RegExps. Translates what differs in spelling (`(?i)` flags, `(?P<name>`, `\z`, POSIX classes)
 * and refuses with bad_data what RE2 rejects but JavaScript would accept (look-around,
 * back-references) or what JavaScript cannot express.
 */
import { PromQLError } from './types.js';

const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

const cache = new Map<string, RegExp>();
const GO_SPACE = '\\t\\n\\f\\r ';

/** Translate an RE2 pattern body to JavaScript source and flags; throws on what cannot be translated. */
export function translateRE2(re: string): { source: string; flags: string } {
  let flags = '';
  let i = 0;
  const lead = /^\(\?([imsU]+)\)/.exec(re);
  if (lead) {
    for (const f of lead[1]!) {
      if (f === 'U') throw new Error('the (?U) flag is not supported');
      if (!flags.includes(f)) flags += f;
    }
    i = lead[0].length;
  }
  let out = '';
  let inClass = false;
  for (; i < re.length; i++) {
    const c = re[i]!;
    if (c === '\\') {
      const n = re[i + 1];
      if (n === undefined) throw new Error('trailing backslash at end of expression');
      if (/[1-9]/.test(n)) throw new Error(`invalid escape sequence: \\${n}`);
      if (n === 'z' && !inClass) out += '$(?![\\s\\S])';
      else if (n === 'A' && !inClass) out += '(?<![\\s\\S])';
      else if (n === 'p' || n === 'P' || n === 'Q' || n === 'C' || n === 'E') {
        throw new Error(`unsupported escape sequence: \\${n}`);
      } else if (/[a-zA-Z0-9]/.test(n) && !/[dDsSwWbBnrtfvx0]/.test(n)) {
        throw new Error(`invalid escape sequence: \\${n}`);
      } else if (n === 'x' && re[i + 2] === '{') {
        const end = re.indexOf('}', i);
        const code = end < 0 ? NaN : parseInt(re.slice(i + 3, end), 16);
        if (!(code <= 0xffff)) throw new Error('unsupported escape sequence: \\x{...}');
        out += `\\u${code.toString(16).padStart(4, '0')}`;
        i = end;
        continue;
      } else if (n === 's' || n === 'S') {
        // RE2's \s is ASCII white space without \v; JavaScript's also matches Unicode spaces.
        if (inClass && n === 'S') throw new Error('unsupported escape sequence: \\S in a class');
        out += inClass ? GO_SPACE : n === 's' ? `[${GO_SPACE}]` : `[^${GO_SPACE}]`;
      } else out += c + n;
      i++;
      continue;
    }
    if (inClass) {
      if (c === '[' && re[i + 1] === ':') {
        const end = re.indexOf(':]', i + 2);
        const name = end > 0 ? re.slice(i + 2, end) : '';
        const negated = name.startsWith('^');
        const cls = POSIX_CLASSES[negated ? name.slice(1) : name];
        if (!cls || negated) throw new Error(`invalid character class range: [:${name}:]`);
        out += cls;
        i = end + 1;
        continue;
      }
      if (c === '[') {
        out += '\\[';
        continue;
      }
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      if (re[i + 1] === '^') {
        out += '^';
        i++;
      }
      // A leading ']' is a literal in RE2.
      if (re[i + 1] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (c === '(' && re[i + 1] === '?') {
      if (re.startsWith('(?P<', i)) {
        out += '(?<';
        i += 3;
        continue;
      }
      if (re[i + 2] === ':') {
        out += '(?:';
        i += 2;
        continue;
      }
      throw new Error(`invalid or unsupported Perl syntax: \`${re.slice(i, i + 3)}\``);
    }
    if (c === '{') {
      const rep = /^\{(\d+)(,(\d*))?\}/.exec(re.slice(i));
      if (rep) {
        const min = Number(rep[1]);
        const max = rep[3] ? Number(rep[3]) : min;
        if (min > 1000 || max > 1000 || max < min) throw new Error(`invalid repeat count: \`${rep[0]}\``);
      }
    }
    if (c === '.') {
      // RE2's . excludes only \n (everything with (?s)); JavaScript's also excludes \r, \u2028, \u2029.
      out += flags.includes('s') ? '[\\s\\S]' : '[^\\n]';
      continue;
    }
    out += c;
  }
  if (inClass) throw new Error('missing closing ]');
  return { source: out, flags };
}

/** The fully anchored RegExp of a matcher value (`^(?:re)$`); throws PromQLError('bad_data'). */
export function compileMatcherRegex(re: string): RegExp {
  let r = cache.get(re);
  if (r) return r;
  try {
    r = compileAnchored(re);
  } catch (err) {
    throw new PromQLError(
      'bad_data',
      `parse error: invalid regular expression ${JSON.stringify(re)}: ${(err as Error).message}`,
    );
  }
  if (cache.size > 1000) cache.clear();
  cache.set(re, r);
  return r;
}

/** `^(?:re)$` as a JavaScript RegExp; throws a plain Error when the pattern is invalid or untranslatable. */
export function compileAnchored(re: string): RegExp {
  const { source, flags } = translateRE2(re);
  return new RegExp(`^(?:${source})$`, flags);
}
