/**
 * Input sources for the streamer: a CSV file, a directory of CSV files (name order), or stdin
 * (`-`), each exposed as a named stream of Buffer chunks. `follow` tails a growing file (and, for a
 * directory, moves on to files that appear later); `loop` replays the input until aborted.
 *
 * A file of a directory is marked {@link Source.fromDirectory}: when it cannot be read (vanished, a
 * sub-directory or dangling link named `*.csv`, no permission) its chunk stream throws, and the
 * reader turns that into one dead letter so the directory goes on with the next file. A chunk stream
 * that stops because `signal` aborted simply ends; the reader checks the signal to tell that from a
 * true end of input.
 */
import { lstat, open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { NexusError } from '../errors.js';

/** Options of {@link openSources}. */
export interface SourceOptions {
  /** Keep reading bytes appended to the (last) file, like `tail -F`, until `signal` aborts. */
  follow?: boolean;
  /** Replay the input from the start each time it ends, until `signal` aborts (files only). */
  loop?: boolean;
  /** How often a followed file is checked for growth, ms. Default 250. */
  pollMs?: number;
  /** Stops reading: the current chunk stream ends and no further source is opened. */
  signal?: AbortSignal;
  /** Bytes per chunk read from a file. Default 64 KiB. */
  chunkBytes?: number;
  /** Stream used for `-`. Default `process.stdin`. */
  stdin?: AsyncIterable<Buffer | string>;
}

/** One input: a name for dead letters and logs, and its bytes. */
export interface Source {
  /** File path as given (joined with the directory for directory entries), or `stdin`. */
  source: string;
  /** The bytes, in order. Ends at end of file (or, when following, when aborted). */
  chunks: AsyncIterable<Buffer>;
  /** Replay count with `loop` (0 for the first pass). */
  pass: number;
  /**
   * True for a file found in a directory: a failure to read it (or a header that is not DCGM) should
   * cost that file only, as a dead letter, not stop the directory. False for a single file and stdin.
   */
  fromDirectory: boolean;
}

/** Default for {@link SourceOptions.chunkBytes}. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;
/** Default for {@link SourceOptions.pollMs}. */
export const DEFAULT_POLL_MS = 250;

/** Wait `ms` or until `wake` is called or the signal aborts. */
function pause(
  ms: number,
  signal: AbortSignal | undefined,
  register?: (wake: () => void) => void,
): Promise<void> {
  return new Promise((done) => {
    if (signal?.aborted) return done();
    const finish = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      done();
    };
    const timer = setTimeout(finish, ms);
    signal?.addEventListener('abort', finish, { once: true });
    register?.(finish);
  });
}

function unreadable(path: string, error: unknown, why?: string): NexusError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason =
    why ??
    (code === 'ENOENT'
      ? 'no such file or directory'
      : code === 'EACCES'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'is a directory'
          : String(error));
  return new NexusError('INPUT_UNREADABLE', `cannot read input ${path}: ${reason}`, {
    cause: error,
    details: { path },
  });
}

/** `open` failed with ENOENT: name a dangling symbolic link as such. */
async function openFailure(path: string, error: unknown): Promise<NexusError> {
  if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
    const link = await lstat(path).catch(() => null);
    if (link?.isSymbolicLink() === true) return unreadable(path, error, 'dangling symbolic link');
  }
  return unreadable(path, error);
}

/** List the `*.csv` files of a directory in name order (code-point order, so deterministic). */
async function listCsv(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw unreadable(dir, error);
  }
  return names
    .filter((n) => n.toLowerCase().endsWith('.csv'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => join(dir, n));
}

interface FollowControl {
  /** Stop following once the file has been read to its current end (a newer file appeared). */
  shouldStop?: () => Promise<boolean>;
}

/**
 * Read a file in chunks. With `follow`, keep polling for appended bytes after the end; a file that
 * is truncated is read again from the start, and one replaced under the same name (rotation) is
 * reopened.
 */
async function* readFileChunks(
  path: string,
  options: SourceOptions,
  follow: boolean,
  control: FollowControl = {},
): AsyncGenerator<Buffer> {
  const size = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const signal = options.signal;
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw await openFailure(path, error);
  }
  let watcher: FSWatcher | null = null;
  let wake: (() => void) | null = null;
  try {
    let position = 0;
    const first = await handle.stat();
    let ino = first.ino;
    // A pipe or character device (e.g. /dev/stdin) cannot be read at an offset.
    const seekable = first.isFile();
    if (follow) {
      try {
        watcher = watch(path, { persistent: false }, () => wake?.());
        watcher.on('error', () => undefined);
      } catch {
        watcher = null; // polling alone still works
      }
    }
    for (;;) {
      if (signal?.aborted) return;
      const buffer = Buffer.allocUnsafe(size);
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(buffer, 0, size, seekable ? position : null));
      } catch (error) {
        throw unreadable(path, error);
      }
      if (bytesRead > 0) {
        position += bytesRead;
        yield bytesRead === size ? buffer : buffer.subarray(0, bytesRead);
        continue;
      }
      if (!follow || !seekable) return;
      if (control.shouldStop !== undefined && (await control.shouldStop())) return;
      await pause(pollMs, signal, (w) => (wake = w));
      wake = null;
      if (signal?.aborted) return;
      // Truncated or rotated?
      let current: { ino: number; size: number } | null = null;
      try {
        current = await stat(path);
      } catch {
        current = null; // gone for now; keep the old handle and wait
      }
      if (current !== null && current.ino !== ino) {
        // Replaced: finish the old file first (next loop reads nothing more from it), then reopen.
        const { bytesRead: tail } = await handle.read(Buffer.alloc(1), 0, 1, position);
        if (tail > 0) continue;
        await handle.close();
        try {
          handle = await open(path, 'r');
        } catch (error) {
          throw unreadable(path, error);
        }
        ino = (await handle.stat()).ino;
        position = 0;
      } else if (current !== null && current.size < position) {
        position = 0;
      }
    }
  } finally {
    watcher?.close();
    await handle.close().catch(() => undefined);
  }
}

/** Chunks from stdin (or a test stream), as Buffers, ending on abort. */
async function* readStream(
  stream: AsyncIterable<Buffer | string>,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  if (signal?.aborted) return;
  const iterator = stream[Symbol.asyncIterator]();
  const aborted = new Promise<'aborted'>((done) =>
    signal?.addEventListener('abort', () => done('aborted'), { once: true }),
  );
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), aborted]);
      if (next === 'aborted' || next.done) return;
      const value = next.value;
      yield typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    }
  } finally {
    await iterator.return?.();
  }
}

/**
 * Open the input named by `spec`: a file path, a directory (all `*.csv` files in name order) or
 * `-` for stdin. Yields one {@link Source} per file (per pass with `loop`); consume each source's
 * chunks before pulling the next source.
 *
 * - `follow`: after the last file's end, keep reading what is appended (polling every `pollMs`, woken
 *   early by fs.watch). For a directory, files that appear later (with a name sorting after the
 *   current one) are picked up in turn.
 * - `loop`: when the input is exhausted, start again from the first file, until `signal` aborts.
 * - A file of a directory is opened only when its chunks are read; if that fails, its chunk stream
 *   throws INPUT_UNREADABLE and the next source still follows (see {@link Source.fromDirectory}).
 *
 * @throws NexusError('INPUT_UNREADABLE') naming the path when it does not exist or cannot be read,
 *   or a directory has no `*.csv` file; NexusError('BAD_REQUEST') for `loop` with stdin or with `follow`
 */
export async function* openSources(spec: string, options: SourceOptions = {}): AsyncGenerator<Source> {
  const { follow = false, loop = false, signal } = options;
  if (follow && loop) throw new NexusError('BAD_REQUEST', 'follow and loop cannot be combined');
  if (spec === '-') {
    if (loop) throw new NexusError('BAD_REQUEST', 'stdin cannot be replayed with loop');
    yield {
      source: 'stdin',
      chunks: readStream(options.stdin ?? process.stdin, signal),
      pass: 0,
      fromDirectory: false,
    };
    return;
  }
  let info;
  try {
    info = await stat(spec);
  } catch (error) {
    throw unreadable(spec, error);
  }
  const isDir = info.isDirectory();
  for (let pass = 0; ; pass++) {
    if (signal?.aborted) return;
    const counter = { bytes: 0 };
    if (!isDir) {
      yield {
        source: spec,
        chunks: counted(readFileChunks(spec, options, follow), counter),
        pass,
        fromDirectory: false,
      };
    } else {
      const files = await listCsv(spec);
      if (files.length === 0 && !follow) {
        throw new NexusError(
          'INPUT_UNREADABLE',
          `cannot read input ${spec}: no *.csv file in the directory`,
          {
            details: { path: spec },
          },
        );
      }
      const seen = new Set<string>();
      let queue = files;
      while (!signal?.aborted) {
        const file = queue.shift();
        if (file === undefined) {
          if (!follow) break;
          // Wait for a new file to appear.
          await pause(options.pollMs ?? DEFAULT_POLL_MS, signal);
          queue = (await listCsv(spec)).filter((f) => !seen.has(f) && f > (lastOf(seen) ?? ''));
          continue;
        }
        seen.add(file);
        const newer = async (): Promise<boolean> =>
          (await listCsv(spec).catch(() => [])).some((f) => !seen.has(f) && f > file);
        // Only the newest file is followed; older ones are read to their end.
        const tail = follow && queue.length === 0;
        yield {
          source: file,
          chunks: counted(readFileChunks(file, options, tail, { shouldStop: newer }), counter),
          pass,
          fromDirectory: true,
        };
        if (follow && queue.length === 0) {
          queue = (await listCsv(spec)).filter((f) => !seen.has(f) && f > file);
        }
      }
    }
    if (!loop) return;
    // An empty input would spin: wait a poll interval before replaying nothing again.
    await pause(counter.bytes === 0 ? (options.pollMs ?? DEFAULT_POLL_MS) : 0, signal);
  }
}

function lastOf(set: Set<string>): string | undefined {
  let last: string | undefined;
  for (const v of set) if (last === undefined || v > last) last = v;
  return last;
}

/** Pass chunks through, adding their sizes to `counter.bytes`. */
async function* counted(chunks: AsyncIterable<Buffer>, counter: { bytes: number }): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    counter.bytes += chunk.length;
    yield chunk;
  }
}
