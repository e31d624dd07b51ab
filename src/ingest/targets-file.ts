/**
 * Prometheus `file_sd_configs` target files: a list of target groups,
 * `[{ "targets": ["host:9400", ...], "labels": { "name": "value", ... } }, ...]`, in JSON, or in YAML
 * when the file name ends in `.yml` or `.yaml` (as Prometheus decides; YAML scalars are read as
 * strings, so `rack: 1` is the label value "1", as in Prometheus).
 * A target without a scheme gets `http://` and one without a path gets `/metrics` (Prometheus'
 * defaults for `scheme` and `metrics_path`); a full http(s) URL is taken as it is.
 *
 * {@link watchTargetsFile} reads the file at start and again when it changes (fs.watch, plus a
 * periodic mtime/size check for editors and volumes that fs.watch misses, debounced). A file that
 * cannot be read or parsed keeps the previous target set; the error is reported through `onError`
 * and never thrown from the watcher.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Logger } from '../util/logger.js';
import type { ScrapeTargetBoard, TargetHealth, TargetState } from './scrape.js';

/** One target of a targets file. */
export interface FileTarget {
  /** The URL to scrape (normalized: `http://host:port/metrics` for a bare `host:port`). */
  url: string;
  /** The group's labels. */
  labels: Record<string, string>;
}

/** A targets file that cannot be used, with the reason. */
export class TargetsFileError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`targets file ${path}: ${reason}`);
    this.name = 'TargetsFileError';
  }
}

/** The scrape URL of a file_sd target: `host:port` -> `http://host:port/metrics`. */
export function targetUrl(target: string): string {
  const text = target.trim();
  if (text === '') throw new Error('empty target');
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text);
  let url: URL;
  try {
    url = new URL(hasScheme ? text : `http://${text}`);
  } catch {
    throw new Error(`"${target}" is not a host:port or URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`"${target}" is not an http or https URL`);
  if (!hasScheme && (url.pathname !== '/' || url.search !== '' || url.hash !== ''))
    throw new Error(`"${target}" has a path: give host:port, or a full http(s) URL`);
  if (url.hostname === '') throw new Error(`"${target}" has no host`);
  if (!hasScheme || url.pathname === '/') url.pathname = '/metrics';
  return url.href;
}

/** The syntax of a targets file. */
export type TargetsFileFormat = 'json' | 'yaml';

/** The syntax of the targets file at `path`, by its extension (as Prometheus decides it). */
export function targetsFileFormat(path: string): TargetsFileFormat {
  return /\.ya?ml$/i.test(path) ? 'yaml' : 'json';
}

/** Decode the text of a targets file; YAML scalars stay strings (the failsafe schema). */
function decode(text: string, format: TargetsFileFormat): unknown {
  if (format === 'json') {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new Error(`not valid JSON: ${(error as Error).message}`);
    }
  }
  try {
    // An empty YAML document is an empty list, as in Prometheus.
    return parseYaml(text, { schema: 'failsafe', uniqueKeys: true, maxAliasCount: 100 }) ?? [];
  } catch (error) {
    throw new Error(`not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
}

/**
 * Parse the text of a targets file (Prometheus file_sd format, JSON or YAML). Targets are
 * deduplicated by URL (the first group naming one gives its labels), in file order.
 * @throws Error with a readable reason naming the group and target at fault.
 */
export function parseTargetsFile(text: string, format: TargetsFileFormat = 'json'): FileTarget[] {
  const data = decode(text, format);
  if (!Array.isArray(data))
    throw new Error(`expected a ${format === 'json' ? 'JSON' : 'YAML'} list of target groups`);
  const seen = new Map<string, FileTarget>();
  data.forEach((group: unknown, index) => {
    const where = `group ${index}`;
    if (typeof group !== 'object' || group === null || Array.isArray(group))
      throw new Error(`${where}: expected an object with "targets"`);
    const { targets, labels } = group as { targets?: unknown; labels?: unknown };
    if (!Array.isArray(targets)) throw new Error(`${where}: "targets" must be an array of strings`);
    const groupLabels: Record<string, string> = {};
    if (labels !== undefined && labels !== null) {
      if (typeof labels !== 'object' || Array.isArray(labels))
        throw new Error(`${where}: "labels" must be an object of strings`);
      for (const [name, value] of Object.entries(labels)) {
        if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name))
          throw new Error(`${where}: "${name}" is not a valid label name`);
        if (typeof value !== 'string') throw new Error(`${where}: label "${name}" must be a string`);
        groupLabels[name] = value;
      }
    }
    for (const target of targets) {
      if (typeof target !== 'string') throw new Error(`${where}: "targets" must be an array of strings`);
      let url: string;
      try {
        url = targetUrl(target);
      } catch (error) {
        throw new Error(`${where}: ${(error as Error).message}`);
      }
      if (!seen.has(url)) seen.set(url, { url, labels: { ...groupLabels } });
    }
  });
  return [...seen.values()];
}

/** Read and parse a targets file. @throws TargetsFileError */
export async function readTargetsFile(path: string): Promise<FileTarget[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new TargetsFileError(path, code === 'ENOENT' ? 'no such file' : (error as Error).message);
  }
  try {
    return parseTargetsFile(text, targetsFileFormat(path));
  } catch (error) {
    throw new TargetsFileError(path, (error as Error).message);
  }
}

/** Options of {@link watchTargetsFile}. */
export interface WatchTargetsFileOptions {
  /** Called with the full new target set whenever the file parses to a different one. */
  onChange: (targets: FileTarget[]) => void;
  /** Called when the file cannot be read or parsed (the previous set stays). */
  onError?: (error: TargetsFileError) => void;
  /** Period of the mtime/size check, ms (default 5000). */
  pollIntervalMs?: number;
  /** Quiet time after a change before the file is read, ms (default 100). */
  debounceMs?: number;
}

/** A running targets-file watcher. */
export interface TargetsFileWatcher {
  /** The current target set (the last one that parsed). */
  readonly targets: readonly FileTarget[];
  /** The last error, or undefined when the last read was good. */
  readonly lastError: TargetsFileError | undefined;
  close(): void;
}

function sameTargets(a: readonly FileTarget[], b: readonly FileTarget[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Read `path` now (throwing TargetsFileError when the first read fails) and keep watching it.
 * `onChange` is not called for the first read: its result is `watcher.targets`.
 */
export async function watchTargetsFile(
  path: string,
  options: WatchTargetsFileOptions,
): Promise<TargetsFileWatcher> {
  let targets = await readTargetsFile(path);
  let lastError: TargetsFileError | undefined;
  let closed = false;
  let debounce: NodeJS.Timeout | undefined;
  let reading = false;
  let again = false;
  let seen = await stat(path).then(
    (s) => `${s.mtimeMs}:${s.size}:${s.ino}`,
    () => '',
  );

  const reload = async (): Promise<void> => {
    if (closed) return;
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      seen = await stat(path).then(
        (s) => `${s.mtimeMs}:${s.size}:${s.ino}`,
        () => '',
      );
      const next = await readTargetsFile(path);
      if (closed) return;
      lastError = undefined;
      if (!sameTargets(next, targets)) {
        targets = next;
        options.onChange(next);
      }
    } catch (error) {
      if (closed) return;
      lastError = error instanceof TargetsFileError ? error : new TargetsFileError(path, String(error));
      options.onError?.(lastError);
    } finally {
      reading = false;
      if (again && !closed) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = (): void => {
    if (closed) return;
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), options.debounceMs ?? 100);
  };

  // Watch the directory, not the file: editors and ConfigMap volumes replace the file (a rename),
  // which ends a watch on the file itself.
  let watcher: FSWatcher | undefined;
  const name = basename(path);
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || file === name || String(file) === name) schedule();
    });
    watcher.on('error', () => undefined);
  } catch {
    watcher = undefined; // The periodic check still notices changes.
  }
  const poll = setInterval(() => {
    void stat(path).then(
      (s) => {
        if (`${s.mtimeMs}:${s.size}:${s.ino}` !== seen) schedule();
      },
      () => {
        if (seen !== '') schedule();
      },
    );
  }, options.pollIntervalMs ?? 5000);
  poll.unref();

  return {
    get targets() {
      return targets;
    },
    get lastError() {
      return lastError;
    },
    close() {
      closed = true;
      clearTimeout(debounce);
      clearInterval(poll);
      watcher?.close();
    },
  };
}

/** A targets file followed for a scrape run: see {@link followTargetsFile}. */
export interface TargetsFollower {
  /** The static targets plus the file's, as first read. */
  readonly initial: readonly string[];
  /** Give `board` the current set now and on every reload (it drives a running scrape's loops). */
  attach(board: ScrapeTargetBoard): void;
  /** The file's last read error, or undefined when it was good. */
  readonly lastError: TargetsFileError | undefined;
  close(): void;
}

/**
 * Read the targets file at `path` and follow it: the scrape's target set is `staticTargets` (from
 * `--scrape` / SCRAPE_TARGETS) plus the file's targets, logged on every change; a file that cannot
 * be read or parsed keeps the previous set and logs the error.
 * @throws TargetsFileError when the first read fails.
 */
export async function followTargetsFile(
  path: string,
  staticTargets: readonly string[],
  logger: Logger,
  options: Pick<WatchTargetsFileOptions, 'pollIntervalMs' | 'debounceMs'> = {},
): Promise<TargetsFollower> {
  const union = (file: readonly FileTarget[]): string[] => [
    ...new Set([...staticTargets, ...file.map((t) => t.url)]),
  ];
  let board: ScrapeTargetBoard | undefined;
  let current: string[] = [];
  const watcher = await watchTargetsFile(path, {
    ...options,
    onChange(targets) {
      const next = union(targets);
      const added = next.filter((url) => !current.includes(url));
      const removed = current.filter((url) => !next.includes(url));
      current = next;
      logger.info({ path, targets: next.length, added, removed }, 'targets file reloaded');
      board?.setTargets(next);
    },
    onError(error) {
      logger.error(
        { path, reason: error.message, targets: current.length },
        'targets file not reloaded: keeping the previous targets',
      );
    },
  });
  current = union(watcher.targets);
  return {
    initial: current,
    attach(target) {
      board = target;
      target.setTargets(current);
    },
    get lastError() {
      return watcher.lastError;
    },
    close() {
      watcher.close();
    },
  };
}

/** Log a target going up or down (set as a board's `onHealthChange`). */
export function logHealthChanges(logger: Logger): (state: TargetState, previous: TargetHealth) => void {
  return (state, previous) => {
    if (state.health === 'up')
      logger.info({ target: state.url, previous, samples: state.samples }, 'scrape target up');
    else logger.warn({ target: state.url, previous, reason: state.lastError }, 'scrape target down');
  };
}
