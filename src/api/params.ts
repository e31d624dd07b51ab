/**
 * Parsing of query parameters the JSON schemas cannot fully check: RFC 3339 timestamps (strictly,
 * unlike Date.parse), inclusive time ranges, DCGM metric lists, and the characters of every string
 * parameter (no control characters such as NUL, no invalid UTF-8: PostgreSQL refuses them with
 * store-internal messages, so they are stopped at the edge). Failures are BAD_REQUEST errors naming
 * the parameter.
 */
import { RESOLUTION_REQUESTS, type ResolutionRequest } from '../ports/sample-store.js';
import { badParameter } from './errors.js';

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** A parsed instant: whole milliseconds, plus the nanoseconds below the millisecond (0-999999). */
export interface ParsedInstant {
  ms: number;
  subMsNanos: number;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeapYear = (y: number): boolean => y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
const daysInMonth = (year: number, month: number): number =>
  month === 2 && isLeapYear(year) ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0);

/** Parse an RFC 3339 date-time (offset required); undefined when the text is not one. */
export function parseRfc3339(text: string): ParsedInstant | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fraction = m[7] ?? '';
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  let offsetMinutes = 0;
  if (!m[8]) {
    const offHour = Number(m[10]);
    const offMinute = Number(m[11]);
    if (offHour > 23 || offMinute > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (offHour * 60 + offMinute);
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, Number(fraction.slice(0, 3).padEnd(3, '0')));
  return {
    ms: date.getTime() - offsetMinutes * 60_000,
    subMsNanos: Number(fraction.slice(3).padEnd(6, '0')),
  };
}

/** Inclusive bounds in ms since the epoch; either may be absent. */
export interface TimeRange {
  startMs?: number;
  endMs?: number;
}

/**
 * Parse `start_time` / `end_time` into inclusive millisecond bounds. Sub-millisecond digits round
 * inward (start up, end down) so the range never includes an instant outside what was asked.
 */
export function parseTimeRange(startText: string | undefined, endText: string | undefined): TimeRange {
  const start = startText === undefined ? undefined : parseRfc3339(startText);
  if (startText !== undefined && !start) throw invalidTime('start_time', startText);
  const end = endText === undefined ? undefined : parseRfc3339(endText);
  if (endText !== undefined && !end) throw invalidTime('end_time', endText);
  if (start && end && (start.ms > end.ms || (start.ms === end.ms && start.subMsNanos > end.subMsNanos))) {
    throw badParameter('start_time', `start_time (${startText}) is after end_time (${endText})`);
  }
  const range: TimeRange = {};
  if (start) range.startMs = start.subMsNanos > 0 ? start.ms + 1 : start.ms;
  if (end) range.endMs = end.ms;
  return range;
}

function invalidTime(parameter: string, text: string) {
  const shown = text.length > 64 ? `${text.slice(0, 64)}...` : text;
  return badParameter(
    parameter,
    `Invalid query parameter '${parameter}': '${shown}' is not an RFC 3339 timestamp such as 2025-07-18T20:42:34Z`,
  );
}

const METRIC_NAME = /^[A-Za-z0-9_:.-]{1,200}$/;

/**
 * Metric names from `metric` values, each possibly comma-separated; duplicates dropped.
 * Undefined when the parameter is absent (no filter).
 */
export function parseMetricList(values: string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const names = new Set<string>();
  for (const value of values) {
    for (const piece of value.split(',')) {
      const name = piece.trim();
      if (name === '') continue;
      if (!METRIC_NAME.test(name)) {
        throw badParameter(
          'metric',
          `Invalid query parameter 'metric': '${name.slice(0, 64)}' is not a metric name`,
        );
      }
      names.add(name);
    }
  }
  if (names.size === 0) {
    throw badParameter('metric', "Invalid query parameter 'metric': give at least one DCGM field name");
  }
  return [...names];
}

/**
 * The `resolution` parameter (`raw`, `1m`, `1h`, `auto`); absent means `raw`.
 * @throws BAD_REQUEST naming `resolution` for any other value
 */
export function parseResolution(value: string | undefined): ResolutionRequest {
  if (value === undefined) return 'raw';
  const found = RESOLUTION_REQUESTS.find((r) => r === value);
  if (found === undefined) {
    throw badParameter(
      'resolution',
      `Invalid query parameter 'resolution': '${value.slice(0, 64)}' is not one of raw, 1m, 1h, auto`,
    );
  }
  return found;
}

/** C0 and C1 control characters, DEL included (NUL among them). */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** A UTF-16 surrogate without its pair. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Why `text` cannot be a parameter value: it holds a control character (NUL, newline, ...) or a lone
 * UTF-16 surrogate (not encodable as UTF-8). Undefined when it is fine.
 */
export function badCharacters(text: string): string | undefined {
  if (CONTROL.test(text)) return 'contains a control character';
  if (LONE_SURROGATE.test(text)) return 'is not valid UTF-8';
  return undefined;
}

/** What a request's values are called in messages. */
export type ParameterNoun = 'query parameter' | 'path parameter' | 'argument' | 'variable';

/** Shorten a parameter name for a message (names come from clients). */
const shownName = (name: string): string => {
  // eslint-disable-next-line no-control-regex -- shown names lose their control characters
  const safe = name.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return safe.length > 64 ? `${safe.slice(0, 64)}...` : safe;
};

/**
 * Check every string of a parsed params or query record (array values too; names as well as values).
 * @throws BAD_REQUEST naming the first parameter with a control character or invalid UTF-8
 */
export function checkStringParameters(values: unknown, noun: ParameterNoun): void {
  if (typeof values !== 'object' || values === null) return;
  for (const [name, value] of Object.entries(values as Record<string, unknown>)) {
    const nameProblem = badCharacters(name);
    if (nameProblem) throw badParameter(shownName(name), `Invalid ${noun} name: it ${nameProblem}`);
    for (const item of Array.isArray(value) ? (value as unknown[]) : [value]) {
      if (typeof item !== 'string') continue;
      const problem = badCharacters(item);
      if (problem) throw badParameter(name, `Invalid ${noun} '${shownName(name)}': its value ${problem}`);
    }
  }
}

function decodeQueryComponent(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/**
 * Check the raw query string of `url` for percent-encoding that is not UTF-8 (`%FF`, a cut
 * sequence such as `%C3`): the query parser keeps such text undecoded instead of refusing it.
 * @throws BAD_REQUEST naming the parameter
 */
export function checkQueryEncoding(url: string): void {
  const q = url.indexOf('?');
  if (q < 0) return;
  for (const piece of url.slice(q + 1).split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const rawName = eq < 0 ? piece : piece.slice(0, eq);
    const name = decodeQueryComponent(rawName);
    if (name === undefined)
      throw badParameter(shownName(rawName), 'Invalid query parameter name: it is not valid UTF-8');
    if (eq >= 0 && decodeQueryComponent(piece.slice(eq + 1)) === undefined)
      throw badParameter(name, `Invalid query parameter '${shownName(name)}': its value is not valid UTF-8`);
  }
}
