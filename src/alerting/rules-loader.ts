/**
 * The rule set in force: the built-in GPU health rules (rules/gpu-health.rules.yml, unless turned
 * off) and the files of ALERT_RULES_FILES (paths or globs with `*`, `?` and `[...]` in the file
 * name). A user alerting rule with the name of a built-in one replaces it. Files are watched
 * (fs.watch on their directories) and checked every few seconds; a changed set is parsed whole and
 * installed only when every file is valid: a refused reload is reported with file, line and reason,
 * and the rules in force stay.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NexusError } from '../errors.js';
import type { Logger } from '../util/logger.js';
import { parseRuleFile, type RuleFileProblem, type RuleGroupSpec } from './rules-file.js';

/** The built-in rule file shipped with the package. */
export const BUILTIN_RULES_FILE = fileURLToPath(new URL('../../rules/gpu-health.rules.yml', import.meta.url));

/** Split ALERT_RULES_FILES (comma-separated). */
export function parseRulePatterns(text: string): string[] {
  return text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The files a pattern names, sorted (a plain path is returned even when missing, so reading it fails). */
export async function expandPattern(pattern: string): Promise<string[]> {
  const path = resolve(pattern);
  const name = basename(path);
  if (!/[*?[]/.test(name)) return [path];
  const dir = dirname(path);
  if (/[*?[]/.test(dir))
    throw new NexusError(
      'CONFIG_INVALID',
      `ALERT_RULES_FILES: "${pattern}": wildcards only in the file name`,
    );
  const re = globToRegExp(name);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return [];
  }
  return entries
    .filter((e) => re.test(e))
    .sort()
    .map((e) => join(dir, e));
}

/** One loaded rule set. */
export interface LoadedRules {
  groups: RuleGroupSpec[];
  files: string[];
  /** Hash of the files' names and contents (a reload with the same hash changes nothing). */
  digest: string;
}

/** Merge built-in groups with user groups: user alerting rules replace built-in ones of the same name. */
export function mergeRules(
  builtin: readonly RuleGroupSpec[],
  user: readonly RuleGroupSpec[],
): RuleGroupSpec[] {
  const names = new Set(user.flatMap((g) => g.rules.filter((r) => r.kind === 'alert').map((r) => r.name)));
  const kept = builtin
    .map((g) => ({ ...g, rules: g.rules.filter((r) => r.kind !== 'alert' || !names.has(r.name)) }))
    .filter((g) => g.rules.length > 0);
  return [...kept, ...user];
}

/**
 * Read and check every file.
 * @throws NexusError('CONFIG_INVALID') for the first file that is unreadable or invalid
 */
export async function loadRules(patterns: readonly string[], builtin: boolean): Promise<LoadedRules> {
  const files: string[] = [];
  for (const p of patterns) for (const f of await expandPattern(p)) if (!files.includes(f)) files.push(f);
  const hash = createHash('sha256');
  const read = async (file: string): Promise<RuleGroupSpec[]> => {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      const reason = `cannot read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
      throw new NexusError('CONFIG_INVALID', `rule file ${file}: ${reason}`, {
        details: { file, line: 0, column: 0, reason },
      });
    }
    hash.update(`${file}\u0000${text}\u0000`);
    return parseRuleFile(text, file);
  };
  const builtinGroups = builtin ? await read(BUILTIN_RULES_FILE) : [];
  const user: RuleGroupSpec[] = [];
  for (const file of files) user.push(...(await read(file)));
  return { groups: mergeRules(builtinGroups, user), files, digest: hash.digest('hex') };
}

/** Options of {@link watchRules}. */
export interface RuleWatchOptions {
  patterns: readonly string[];
  builtin: boolean;
  logger: Logger;
  /** A new valid rule set. */
  onRules: (rules: LoadedRules) => void;
  /** A refused reload (the rules in force stay). */
  onError: (problem: RuleFileProblem | { reason: string }) => void;
  /** Periodic check (default 5 s). */
  checkIntervalMs?: number;
}

/** A running watch of the rule files. */
export interface RuleWatch {
  /** Check now (resolves when done). */
  check(): Promise<void>;
  close(): void;
}

/**
 * Load the rules (throws like {@link loadRules} when the first load fails), then follow the files.
 */
export async function watchRules(
  options: RuleWatchOptions,
): Promise<{ initial: LoadedRules; watch: RuleWatch }> {
  const initial = await loadRules(options.patterns, options.builtin);
  let digest = initial.digest;
  let refused = '';
  let watchers: FSWatcher[] = [];
  let closed = false;
  let running: Promise<void> | undefined;
  let debounce: NodeJS.Timeout | undefined;
  const log = options.logger.child({ component: 'alert-rules' });

  const watchDirs = (files: readonly string[]): void => {
    for (const w of watchers) w.close();
    const dirs = new Set([...files.map(dirname), ...options.patterns.map((p) => dirname(resolve(p)))]);
    watchers = [];
    for (const dir of dirs) {
      try {
        const w = watch(dir, () => {
          clearTimeout(debounce);
          debounce = setTimeout(() => void check(), 100);
          debounce.unref();
        });
        w.on('error', () => undefined);
        w.unref();
        watchers.push(w);
      } catch {
        // A missing directory is caught by the periodic check.
      }
    }
  };

  const check = (): Promise<void> => {
    running ??= (async () => {
      try {
        if (closed) return;
        const next = await loadRules(options.patterns, options.builtin);
        // The same files as in force: nothing to do, unless a refused change was just undone.
        if (next.digest === digest && refused === '') return;
        digest = next.digest;
        refused = '';
        log.info({ files: next.files, groups: next.groups.length }, 'alert rules reloaded');
        watchDirs(next.files);
        options.onRules(next);
      } catch (error) {
        const details = (error as NexusError).details as Partial<RuleFileProblem> | undefined;
        const message = (error as Error).message;
        if (message !== refused) {
          refused = message;
          log.error(
            { ...details, err: message },
            'alert rule reload refused; the previous rules stay in force',
          );
        }
        options.onError(
          details?.reason !== undefined
            ? {
                file: details.file ?? '',
                line: details.line ?? 0,
                column: details.column ?? 0,
                reason: details.reason,
              }
            : { reason: message },
        );
      } finally {
        running = undefined;
      }
    })();
    return running;
  };

  watchDirs(initial.files);
  const timer = setInterval(() => void check(), options.checkIntervalMs ?? 5000);
  timer.unref();
  return {
    initial,
    watch: {
      check,
      close() {
        closed = true;
        clearInterval(timer);
        clearTimeout(debounce);
        for (const w of watchers) w.close();
      },
    },
  };
}
