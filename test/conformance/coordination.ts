/**
 * Conformance suite of the Coordination port: one set of behavioural tests that every adapter
 * (embedded, etcd with one member, etcd with three) must pass. Each test works under its own
 * unique key prefix, so adapters may share a backend between tests; none depends on absolute
 * revision numbers. Lease expiry needs `release()` on the adapter's leases (see ReleasableLease).
 *
 * Entry point, called once per adapter from a runner file:
 *
 *     coordinationConformance(name: string, setup: () => Promise<CoordinationSetup>,
 *                             capabilities: CoordinationCapabilities): void
 *
 * `capabilities` names every capability of {@link COORDINATION_CAPABILITIES}, each `true` or a
 * string saying why the adapter lacks it (see ./capabilities.ts); cases needing a missing one are
 * reported as skipped with that reason, and an unknown or missing name throws at once.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasCode, isRetryable, type ErrorCode } from '../../src/errors.js';
import type {
  Compare,
  Coordination,
  KeyValue,
  Lease,
  RangeResult,
  TxnOp,
  TxnResult,
  WatchEvent,
  WatchOptions,
  Watcher,
} from '../../src/ports/coordination.js';
import { type Capabilities, declareCapabilities } from './capabilities.js';

/** Every capability a coordination runner declares. */
export const COORDINATION_CAPABILITIES = [
  /** Leases: keys bound to a lease, revoke, keep-alive, expiry when keep-alive stops. */
  'leases',
  /** `compact(revision)` trims watch history; a watch from before it fails with COMPACTED. */
  'compaction',
  /**
   * Several members (replicas) serving one keyspace; the setup returns one client per member in
   * `members`, and the suite checks they agree (linearizable reads, one order of events).
   */
  'multiMember',
] as const;

/** One capability of the coordination port. */
export type CoordinationCapability = (typeof COORDINATION_CAPABILITIES)[number];

/** What a coordination runner declares: every {@link CoordinationCapability}, `true` or why not. */
export type CoordinationCapabilities = Capabilities<CoordinationCapability>;

/** What a conformance run needs from an adapter. */
export interface CoordinationSetup {
  coordination: Coordination;
  /** Release everything the setup created; must tolerate an already closed coordination. */
  teardown: () => Promise<void>;
  /**
   * One client per member of a replicated backend, each talking to that member only (closed by
   * `teardown`). Required when the runner declares `multiMember`.
   */
  members?: Coordination[];
}

/** Collects a watcher's events and errors, and waits for them. */
export interface EventRecorder {
  events: WatchEvent[];
  errors: Error[];
  onEvent: (event: WatchEvent) => void;
  onError: (error: Error) => void;
  /** Resolve once `predicate` holds, or fail after `timeoutMs`. */
  until(predicate: () => boolean, what: string, timeoutMs?: number): Promise<void>;
}

/** A fresh {@link EventRecorder}. */
export function recorder(): EventRecorder {
  const r: EventRecorder = {
    events: [],
    errors: [],
    onEvent: (event) => r.events.push(event),
    onError: (error) => r.errors.push(error),
    until: (predicate, what, timeoutMs = 5_000) => waitUntil(predicate, what, timeoutMs),
  };
  return r;
}

/** Poll `predicate` every 10 ms until it holds; reject naming `what` after `timeoutMs`. */
export async function waitUntil(predicate: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Resolve after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Assert that `promise` rejects with a NexusError of `code`; returns the error. */
export async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<Error> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected rejection with ${code}`).toBeInstanceOf(Error);
  expect(hasCode(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
  return caught as Error;
}

/** Stop a lease's keep-alive without revoking it (adapters expose `release()` for this). */
export function releaseLease(lease: Lease): void {
  const release = (lease as Lease & { release?: unknown }).release;
  if (typeof release !== 'function') {
    throw new Error('adapter lease has no release(): cannot test lease expiry');
  }
  (release as () => void).call(lease);
}

/**
 * A client view of a shared store that can be "paused" like a SIGSTOPped process: its leases stop
 * being kept alive and its watch events and lease-loss callbacks are held back until `resume()`.
 * Calls made while paused still reach the store (that is what the stalled process does right after
 * it wakes up, before it has processed what it missed).
 */
export class PausableClient implements Coordination {
  private paused = false;
  private held: (() => void)[] = [];
  /** Every lease granted through this client. */
  readonly leases: Lease[] = [];

  constructor(private readonly inner: Coordination) {}

  pause(): void {
    this.paused = true;
    for (const lease of this.leases) releaseLease(lease);
  }

  resume(): void {
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const fn of held) fn();
  }

  private deliver(fn: () => void): void {
    if (this.paused) this.held.push(fn);
    else fn();
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.inner.get(key);
  }
  range(prefix: string, options?: { limit?: number; keysOnly?: boolean }): Promise<RangeResult> {
    return this.inner.range(prefix, options);
  }
  put(key: string, value: string, options?: { lease?: string }): Promise<number> {
    return this.inner.put(key, value, options);
  }
  delete(key: string): Promise<number> {
    return this.inner.delete(key);
  }
  deletePrefix(prefix: string): Promise<number> {
    return this.inner.deletePrefix(prefix);
  }
  txn(compares: Compare[], success: TxnOp[], failure?: TxnOp[]): Promise<TxnResult> {
    return this.inner.txn(compares, success, failure);
  }
  watch(prefix: string, options: WatchOptions): Promise<Watcher> {
    return this.inner.watch(prefix, {
      fromRevision: options.fromRevision,
      onEvent: (event) => this.deliver(() => options.onEvent(event)),
      onError: (error) => this.deliver(() => options.onError?.(error)),
    });
  }
  async grantLease(ttlSeconds: number): Promise<Lease & { release(): void }> {
    const lease = await this.inner.grantLease(ttlSeconds);
    this.leases.push(lease);
    return {
      id: lease.id,
      ttlSeconds: lease.ttlSeconds,
      revoke: () => lease.revoke(),
      release: () => releaseLease(lease),
      onLost: (callback) => lease.onLost(() => this.deliver(callback)),
    };
  }
  revision(): Promise<number> {
    return this.inner.revision();
  }
  compact(revision: number): Promise<void> {
    return this.inner.compact(revision);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const describeEvent = (e: WatchEvent): string =>
  e.type === 'put' ? `put ${e.kv.key}=${e.kv.value}@${e.revision}` : `delete ${e.key}@${e.revision}`;

const keyOf = (e: WatchEvent): string => (e.type === 'put' ? e.kv.key : e.key);

/**
 * Define the Coordination conformance suite for one adapter. `setup` is called once for the
 * suite and once more for each close() test, which needs a store of its own.
 * @param capabilities what the adapter can do (every {@link CoordinationCapability}, `true` or why not)
 * @throws Error at once when `capabilities` names an unknown capability or leaves one out
 */
export function coordinationConformance(
  name: string,
  setup: () => Promise<CoordinationSetup>,
  capabilities: CoordinationCapabilities,
): void {
  const cap = declareCapabilities('coordination', name, COORDINATION_CAPABILITIES, capabilities);
  describe(`Coordination conformance: ${name}`, () => {
    let c: Coordination;
    let members: Coordination[] | undefined;
    let teardown: (() => Promise<void>) | undefined;
    let prefix = '';
    let counter = 0;
    const run = randomUUID().slice(0, 8);
    /** A key prefix no other test (or run) uses. */
    const fresh = (): string => (prefix = `/conformance/${run}/${++counter}/`);

    beforeAll(async () => {
      const s = await setup();
      c = s.coordination;
      members = s.members;
      teardown = s.teardown;
    });
    afterAll(async () => {
      await teardown?.();
    });

    describe('keys and revisions', () => {
      it('put creates a key with createRevision = modRevision = the put revision and version 1', async () => {
        fresh();
        const before = await c.revision();
        expect(before).toBeGreaterThanOrEqual(1);
        const rev = await c.put(`${prefix}k`, 'v1');
        expect(rev).toBeGreaterThan(before);
        expect(await c.get(`${prefix}k`)).toEqual({
          key: `${prefix}k`,
          value: 'v1',
          createRevision: rev,
          modRevision: rev,
          version: 1,
        });
        expect(await c.revision()).toBeGreaterThanOrEqual(rev);
      });

      it('an update keeps createRevision and raises modRevision and version', async () => {
        fresh();
        const r1 = await c.put(`${prefix}k`, 'a');
        const r2 = await c.put(`${prefix}k`, 'b');
        const r3 = await c.put(`${prefix}k`, 'b');
        expect(r2).toBeGreaterThan(r1);
        expect(r3).toBeGreaterThan(r2);
        expect(await c.get(`${prefix}k`)).toMatchObject({
          value: 'b',
          createRevision: r1,
          modRevision: r3,
          version: 3,
        });
      });

      it('revisions never go back and each write raises the revision', async () => {
        fresh();
        const seen: number[] = [];
        for (let i = 0; i < 5; i++) {
          seen.push(await c.put(`${prefix}k${i % 2}`, String(i)));
          seen.push(await c.revision());
        }
        for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
        const puts = seen.filter((_, i) => i % 2 === 0);
        for (let i = 1; i < puts.length; i++) expect(puts[i]!).toBeGreaterThan(puts[i - 1]!);
      });

      it('get of a missing key is undefined; delete resolves to the number of keys removed', async () => {
        fresh();
        expect(await c.get(`${prefix}missing`)).toBeUndefined();
        expect(await c.delete(`${prefix}missing`)).toBe(0);
        await c.put(`${prefix}k`, 'v');
        expect(await c.delete(`${prefix}k`)).toBe(1);
        expect(await c.get(`${prefix}k`)).toBeUndefined();
        expect(await c.delete(`${prefix}k`)).toBe(0);
      });

      it('a key re-created after delete is a new incarnation (new createRevision, version 1)', async () => {
        fresh();
        const r1 = await c.put(`${prefix}k`, 'a');
        await c.put(`${prefix}k`, 'b');
        await c.delete(`${prefix}k`);
        const r2 = await c.put(`${prefix}k`, 'c');
        expect(r2).toBeGreaterThan(r1);
        expect(await c.get(`${prefix}k`)).toMatchObject({
          value: 'c',
          createRevision: r2,
          modRevision: r2,
          version: 1,
        });
      });

      it('deletePrefix removes only keys under the prefix, all in one revision', async () => {
        fresh();
        for (const k of ['d/1', 'd/2', 'd/3/x', 'd2', 'e']) await c.put(`${prefix}${k}`, k);
        const rec = recorder();
        const w = await c.watch(prefix, rec);
        expect(await c.deletePrefix(`${prefix}d/`)).toBe(3);
        expect(await c.deletePrefix(`${prefix}d/`)).toBe(0);
        const left = await c.range(prefix);
        expect(left.kvs.map((kv) => kv.key)).toEqual([`${prefix}d2`, `${prefix}e`]);
        await rec.until(() => rec.events.length >= 3, '3 delete events');
        expect(rec.events.map((e) => e.type)).toEqual(['delete', 'delete', 'delete']);
        expect(new Set(rec.events.map((e) => e.revision)).size).toBe(1);
        expect(rec.events.map(keyOf).sort()).toEqual([`${prefix}d/1`, `${prefix}d/2`, `${prefix}d/3/x`]);
        await w.cancel();
      });
    });

    describe('range', () => {
      it('returns exactly the keys under the prefix, in byte order, with the read revision', async () => {
        fresh();
        // UTF-8 byte order differs from JS string order for astral characters vs U+E000..U+FFFF.
        const names = ['b', 'a', 'B', 'a/', 'ab', 'a0', 'é', '\u{1F600}', '\uFFFD', 'z'];
        for (const n of names) await c.put(`${prefix}a/b/${n}`, n);
        await c.put(`${prefix}a/b2`, 'sibling');
        await c.put(`${prefix}a/b`, 'parent');
        const last = await c.put(`${prefix}a/c/x`, 'other');
        const res = await c.range(`${prefix}a/b/`);
        const expected = names
          .map((n) => `${prefix}a/b/${n}`)
          .sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
        expect(res.kvs.map((kv) => kv.key)).toEqual(expected);
        expect(res.kvs.map((kv) => kv.value)).toEqual(expected.map((k) => k.slice(`${prefix}a/b/`.length)));
        expect(res.revision).toBeGreaterThanOrEqual(last);
        const all = await c.range(`${prefix}a/`);
        expect(all.kvs).toHaveLength(names.length + 3);
        expect((await c.range(`${prefix}nothing/`)).kvs).toEqual([]);
      });

      it('honours limit (first keys in order) and keysOnly (empty values, same metadata)', async () => {
        fresh();
        const revs: number[] = [];
        for (const k of ['c', 'a', 'b', 'd']) revs.push(await c.put(`${prefix}${k}`, `value-${k}`));
        const limited = await c.range(prefix, { limit: 2 });
        expect(limited.kvs.map((kv) => kv.key)).toEqual([`${prefix}a`, `${prefix}b`]);
        const keys = await c.range(prefix, { keysOnly: true });
        expect(keys.kvs.map((kv) => kv.key)).toEqual(['a', 'b', 'c', 'd'].map((k) => `${prefix}${k}`));
        expect(keys.kvs.every((kv) => kv.value === '')).toBe(true);
        expect(keys.kvs[0]).toMatchObject({ createRevision: revs[1], modRevision: revs[1], version: 1 });
      });
    });

    describe('txn', () => {
      it('runs the success branch when every compare holds; its writes share one revision', async () => {
        fresh();
        const r0 = await c.put(`${prefix}guard`, 'x');
        await c.put(`${prefix}old`, 'o');
        const res = await c.txn(
          [
            { key: `${prefix}guard`, target: 'value', op: '=', value: 'x' },
            { key: `${prefix}guard`, target: 'modRevision', op: '=', value: r0 },
          ],
          [
            { type: 'put', key: `${prefix}a`, value: '1' },
            { type: 'put', key: `${prefix}b`, value: '2' },
            { type: 'delete', key: `${prefix}old` },
            { type: 'get', key: `${prefix}a` },
            { type: 'get', key: `${prefix}missing` },
          ],
          [{ type: 'put', key: `${prefix}failed`, value: '!' }],
        );
        expect(res.succeeded).toBe(true);
        expect(res.revision).toBeGreaterThan(r0);
        expect(res.gets).toHaveLength(2);
        expect(res.gets[0]).toMatchObject({ key: `${prefix}a`, value: '1', modRevision: res.revision });
        expect(res.gets[1]).toBeUndefined();
        expect((await c.get(`${prefix}a`))?.modRevision).toBe(res.revision);
        expect((await c.get(`${prefix}b`))?.createRevision).toBe(res.revision);
        expect(await c.get(`${prefix}old`)).toBeUndefined();
        expect(await c.get(`${prefix}failed`)).toBeUndefined();
      });

      it('runs the failure branch when a compare fails and returns its gets', async () => {
        fresh();
        await c.put(`${prefix}guard`, 'x');
        const res = await c.txn(
          [{ key: `${prefix}guard`, target: 'value', op: '=', value: 'y' }],
          [{ type: 'put', key: `${prefix}won`, value: '1' }],
          [
            { type: 'put', key: `${prefix}lost`, value: '1' },
            { type: 'get', key: `${prefix}guard` },
          ],
        );
        expect(res.succeeded).toBe(false);
        expect(res.gets).toEqual([expect.objectContaining({ key: `${prefix}guard`, value: 'x' })]);
        expect(await c.get(`${prefix}won`)).toBeUndefined();
        expect((await c.get(`${prefix}lost`))?.modRevision).toBe(res.revision);
      });

      it('createRevision 0 guards create-if-absent: of concurrent creators exactly one wins', async () => {
        fresh();
        const key = `${prefix}lock`;
        const attempts = await Promise.all(
          ['a', 'b', 'c', 'd'].map((who) =>
            c.txn(
              [{ key, target: 'createRevision', op: '=', value: 0 }],
              [{ type: 'put', key, value: who }],
              [{ type: 'get', key }],
            ),
          ),
        );
        const winners = attempts.filter((a) => a.succeeded);
        expect(winners).toHaveLength(1);
        const stored = await c.get(key);
        expect(stored).toMatchObject({ createRevision: winners[0]!.revision, version: 1 });
        for (const loser of attempts.filter((a) => !a.succeeded)) {
          expect(loser.gets[0]).toMatchObject({
            key,
            value: stored!.value,
            createRevision: stored!.createRevision,
          });
        }
      });

      it('compares createRevision, modRevision, version and value with =, !=, < and >', async () => {
        fresh();
        const k = `${prefix}k`;
        const r1 = await c.put(k, 'm');
        const r2 = await c.put(k, 'm');
        const check = async (
          target: 'createRevision' | 'modRevision' | 'version' | 'value',
          op: '=' | '!=' | '<' | '>',
          value: number | string,
        ): Promise<boolean> => (await c.txn([{ key: k, target, op, value }], [])).succeeded;
        expect(await check('createRevision', '=', r1)).toBe(true);
        expect(await check('createRevision', '!=', r1)).toBe(false);
        expect(await check('createRevision', '!=', 0)).toBe(true);
        expect(await check('modRevision', '=', r2)).toBe(true);
        expect(await check('modRevision', '<', r2 + 1)).toBe(true);
        expect(await check('modRevision', '>', r2)).toBe(false);
        expect(await check('version', '=', 2)).toBe(true);
        expect(await check('version', '>', 1)).toBe(true);
        expect(await check('version', '<', 2)).toBe(false);
        expect(await check('value', '=', 'm')).toBe(true);
        expect(await check('value', '<', 'n')).toBe(true);
        expect(await check('value', '>', 'l')).toBe(true);
        expect(await check('value', '!=', 'm')).toBe(false);
        // An absent key has createRevision, modRevision and version 0; a value compare on it fails.
        const absent = async (
          target: 'createRevision' | 'version' | 'value',
          op: '=' | '!=',
          value: number | string,
        ) => (await c.txn([{ key: `${prefix}absent`, target, op, value }], [])).succeeded;
        expect(await absent('createRevision', '=', 0)).toBe(true);
        expect(await absent('version', '=', 0)).toBe(true);
        expect(await absent('value', '=', '')).toBe(false);
        expect(await absent('value', '!=', 'x')).toBe(false);
      });

      it('all compares must hold (a single failing one selects the failure branch)', async () => {
        fresh();
        await c.put(`${prefix}a`, '1');
        await c.put(`${prefix}b`, '2');
        const res = await c.txn(
          [
            { key: `${prefix}a`, target: 'value', op: '=', value: '1' },
            { key: `${prefix}b`, target: 'value', op: '=', value: '3' },
          ],
          [{ type: 'put', key: `${prefix}s`, value: '' }],
          [{ type: 'deletePrefix', prefix: `${prefix}` }],
        );
        expect(res.succeeded).toBe(false);
        expect((await c.range(prefix)).kvs).toEqual([]);
      });

      it('a txn without writes does not raise the revision', async () => {
        fresh();
        const r = await c.put(`${prefix}k`, 'v');
        const res = await c.txn([], [{ type: 'get', key: `${prefix}k` }]);
        expect(res.succeeded).toBe(true);
        expect(res.gets[0]).toMatchObject({ value: 'v', modRevision: r });
        expect(res.revision).toBe(r);
        expect(await c.revision()).toBe(r);
      });

      it('rejects a branch that writes the same key twice with BAD_REQUEST', async () => {
        fresh();
        await expectCode(
          c.txn(
            [],
            [
              { type: 'put', key: `${prefix}k`, value: '1' },
              { type: 'put', key: `${prefix}k`, value: '2' },
            ],
          ),
          'BAD_REQUEST',
        );
        expect(await c.get(`${prefix}k`)).toBeUndefined();
      });
    });

    describe('limits (etcd defaults: --max-txn-ops 128, --max-request-bytes 1.5 MiB)', () => {
      it('rejects a txn branch of more than 128 ops with BAD_REQUEST, accepts 128', async () => {
        fresh();
        const puts = (n: number): TxnOp[] =>
          Array.from({ length: n }, (_, i) => ({ type: 'put', key: `${prefix}${i}`, value: 'v' }));
        await expectCode(c.txn([], puts(129)), 'BAD_REQUEST');
        expect((await c.range(prefix)).kvs).toEqual([]);
        expect((await c.txn([], puts(128))).succeeded).toBe(true);
        expect((await c.range(prefix, { keysOnly: true })).kvs).toHaveLength(128);
      });

      it('rejects requests over 1.5 MiB with BAD_REQUEST (not a retryable error), accepts 1 MiB', async () => {
        fresh();
        const mib = 1024 * 1024;
        for (const size of [1.6 * mib, 3 * mib]) {
          const err = await expectCode(c.put(`${prefix}big`, 'x'.repeat(size)), 'BAD_REQUEST');
          expect(isRetryable(err)).toBe(false);
        }
        await expectCode(
          c.txn([], [{ type: 'put', key: `${prefix}big`, value: 'x'.repeat(1.6 * mib) }]),
          'BAD_REQUEST',
        );
        expect(await c.get(`${prefix}big`)).toBeUndefined();
        await c.put(`${prefix}ok`, 'y'.repeat(mib));
        expect((await c.get(`${prefix}ok`))?.value).toHaveLength(mib);
      });
    });

    describe('watch', () => {
      it('delivers live puts and deletes under the prefix only, in revision order', async () => {
        fresh();
        const rec = recorder();
        await c.put(`${prefix}a/b/before`, 'not delivered');
        const w = await c.watch(`${prefix}a/b/`, rec);
        const r1 = await c.put(`${prefix}a/b/1`, 'one');
        await c.put(`${prefix}a/b2`, 'sibling, not delivered');
        await c.put(`${prefix}a/c`, 'not delivered');
        const r2 = await c.put(`${prefix}a/b/1`, 'uno');
        const r3 = await c.delete(`${prefix}a/b/1`).then(() => c.revision());
        const r4 = await c.put(`${prefix}a/b/x/y`, 'deep');
        await rec.until(() => rec.events.length >= 4, '4 events');
        await sleep(50);
        expect(rec.events.map(describeEvent)).toEqual([
          `put ${prefix}a/b/1=one@${r1}`,
          `put ${prefix}a/b/1=uno@${r2}`,
          `delete ${prefix}a/b/1@${r3}`,
          `put ${prefix}a/b/x/y=deep@${r4}`,
        ]);
        const second = rec.events[1]!;
        expect(second.type === 'put' && second.kv).toMatchObject({
          createRevision: r1,
          modRevision: r2,
          version: 2,
        });
        expect(rec.errors).toEqual([]);
        await w.cancel();
      });

      it('replays history from an old revision, then live events, without gaps or duplicates', async () => {
        fresh();
        const from = await c.put(`${prefix}k0`, '0');
        const expected: string[] = [`put ${prefix}k0=0@${from}`];
        for (let i = 1; i < 20; i++) {
          const r = await c.put(`${prefix}k${i % 3}`, String(i));
          expected.push(`put ${prefix}k${i % 3}=${i}@${r}`);
        }
        await c.put(`/conformance-other/${run}/${counter}`, 'outside the prefix');
        const rd = await c.delete(`${prefix}k1`).then(() => c.revision());
        expected.push(`delete ${prefix}k1@${rd}`);
        const rec = recorder();
        const w = await c.watch(prefix, { ...rec, fromRevision: from });
        for (let i = 20; i < 30; i++) {
          const r = await c.put(`${prefix}k${i % 3}`, String(i));
          expected.push(`put ${prefix}k${i % 3}=${i}@${r}`);
        }
        await rec.until(() => rec.events.length >= expected.length, `${expected.length} events`);
        await sleep(50);
        expect(rec.events.map(describeEvent)).toEqual(expected);
        await w.cancel();

        // A second watcher from a revision in the middle sees exactly the suffix.
        const mid = rec.events[10]!.revision;
        const rec2 = recorder();
        const w2 = await c.watch(prefix, { ...rec2, fromRevision: mid });
        const suffix = expected.slice(10);
        await rec2.until(() => rec2.events.length >= suffix.length, `${suffix.length} replayed events`);
        expect(rec2.events.map(describeEvent)).toEqual(suffix);
        await w2.cancel();
      });

      it('delivers the events of one txn with one shared revision, after earlier ones', async () => {
        fresh();
        await c.put(`${prefix}gone`, 'x');
        const rec = recorder();
        const w = await c.watch(prefix, rec);
        const r1 = await c.put(`${prefix}first`, '1');
        const t = await c.txn(
          [],
          [
            { type: 'put', key: `${prefix}t1`, value: 'a' },
            { type: 'put', key: `${prefix}t2`, value: 'b' },
            { type: 'delete', key: `${prefix}gone` },
          ],
        );
        await rec.until(() => rec.events.length >= 4, '4 events');
        expect(rec.events[0]!.revision).toBe(r1);
        expect(rec.events.slice(1).map((e) => e.revision)).toEqual([t.revision, t.revision, t.revision]);
        expect(rec.events.slice(1).map(describeEvent).sort()).toEqual(
          [
            `delete ${prefix}gone@${t.revision}`,
            `put ${prefix}t1=a@${t.revision}`,
            `put ${prefix}t2=b@${t.revision}`,
          ].sort(),
        );
        await w.cancel();
      });

      it('stops delivering after cancel; cancel is idempotent', async () => {
        fresh();
        const rec = recorder();
        const w = await c.watch(prefix, rec);
        await c.put(`${prefix}1`, '1');
        await rec.until(() => rec.events.length === 1, 'first event');
        await w.cancel();
        await w.cancel();
        await c.put(`${prefix}2`, '2');
        await sleep(200);
        expect(rec.events).toHaveLength(1);
        expect(rec.errors).toEqual([]);
      });

      cap.it(
        'compaction',
        'fails with COMPACTED carrying compactRevision when the start revision was compacted',
        async () => {
          fresh();
          const old = await c.put(`${prefix}k`, '1');
          await c.put(`${prefix}k`, '2');
          const at = await c.put(`${prefix}k`, '3');
          await c.put(`${prefix}k`, '4');
          await c.compact(at);
          await c.compact(at); // compacting again is harmless
          const rec = recorder();
          await c.watch(prefix, { ...rec, fromRevision: old });
          await rec.until(() => rec.errors.length === 1, 'the COMPACTED error');
          const err = rec.errors[0]!;
          expect(hasCode(err, 'COMPACTED')).toBe(true);
          expect(hasCode(err, 'COMPACTED') && err.details.compactRevision).toBeGreaterThanOrEqual(at);
          expect(rec.events).toEqual([]);
          // The current value survives compaction, and watching from the compact revision works.
          expect(await c.get(`${prefix}k`)).toMatchObject({ value: '4', version: 4 });
          const rec2 = recorder();
          const w2 = await c.watch(prefix, { ...rec2, fromRevision: at + 1 });
          await rec2.until(() => rec2.events.length === 1, 'the event after the compact revision');
          expect(rec2.events.map(describeEvent)).toEqual([`put ${prefix}k=4@${at + 1}`]);
          expect(rec2.errors).toEqual([]);
          await w2.cancel();
        },
      );
    });

    cap.describe('leases', 'leases', () => {
      it('binds keys to a lease; revoke deletes them at once with delete events; revoke is idempotent', async () => {
        fresh();
        const lease = await c.grantLease(5);
        expect(lease.id).toEqual(expect.any(String));
        expect(lease.ttlSeconds).toBeGreaterThanOrEqual(5);
        await c.put(`${prefix}a`, '1', { lease: lease.id });
        await c.txn([], [{ type: 'put', key: `${prefix}b`, value: '2', lease: lease.id }]);
        await c.put(`${prefix}free`, '3');
        expect((await c.get(`${prefix}a`))?.lease).toBe(lease.id);
        expect((await c.get(`${prefix}free`))?.lease).toBeUndefined();
        let lost = 0;
        lease.onLost(() => lost++);
        const rec = recorder();
        const w = await c.watch(prefix, rec);
        await lease.revoke();
        expect(await c.get(`${prefix}a`)).toBeUndefined();
        expect(await c.get(`${prefix}b`)).toBeUndefined();
        expect((await c.get(`${prefix}free`))?.value).toBe('3');
        await rec.until(() => rec.events.length >= 2, '2 delete events');
        expect(rec.events.map((e) => `${e.type} ${keyOf(e)}`).sort()).toEqual([
          `delete ${prefix}a`,
          `delete ${prefix}b`,
        ]);
        expect(rec.events[0]!.revision).toBe(rec.events[1]!.revision);
        await lease.revoke();
        expect(lost).toBe(0); // a local revoke is not a loss
        await w.cancel();
      });

      it('a put bound to a revoked lease rejects with LEASE_LOST and writes nothing', async () => {
        fresh();
        const lease = await c.grantLease(5);
        await lease.revoke();
        await expectCode(c.put(`${prefix}k`, 'v', { lease: lease.id }), 'LEASE_LOST');
        await expectCode(
          c.txn([], [{ type: 'put', key: `${prefix}t`, value: 'v', lease: lease.id }]),
          'LEASE_LOST',
        );
        expect((await c.range(prefix)).kvs).toEqual([]);
      });

      it('a put without a lease detaches the key from its lease', async () => {
        fresh();
        const lease = await c.grantLease(5);
        await c.put(`${prefix}k`, 'leased', { lease: lease.id });
        await c.put(`${prefix}k`, 'free');
        await lease.revoke();
        expect(await c.get(`${prefix}k`)).toMatchObject({ value: 'free', version: 2 });
        expect((await c.get(`${prefix}k`))?.lease).toBeUndefined();
      });

      it('keeps leases alive past their TTL; a lease whose keep-alive stops expires, deleting its keys', async () => {
        fresh();
        // 2 s (etcd's own minimum): a 1 s in-process lease dies of one long event-loop stall.
        const kept = await c.grantLease(2);
        const stopped = await c.grantLease(2);
        expect(stopped.ttlSeconds).toBeGreaterThanOrEqual(1);
        const ttlMs = Math.max(kept.ttlSeconds, stopped.ttlSeconds) * 1000;
        await c.put(`${prefix}kept`, 'k', { lease: kept.id });
        await c.put(`${prefix}stopped/1`, 's', { lease: stopped.id });
        await c.put(`${prefix}stopped/2`, 's', { lease: stopped.id });
        let keptLost = 0;
        let stoppedLost = 0;
        kept.onLost(() => keptLost++);
        stopped.onLost(() => stoppedLost++);
        const rec = recorder();
        const w = await c.watch(prefix, rec);
        const t0 = Date.now();
        releaseLease(stopped);
        await rec.until(() => rec.events.length >= 2, 'delete events of the expired lease', ttlMs + 5_000);
        expect(Date.now() - t0).toBeGreaterThanOrEqual(stopped.ttlSeconds * 1000 - 1_100);
        expect(rec.events.map((e) => `${e.type} ${keyOf(e)}`).sort()).toEqual([
          `delete ${prefix}stopped/1`,
          `delete ${prefix}stopped/2`,
        ]);
        await waitUntil(() => stoppedLost === 1, 'onLost of the expired lease', 3_000);
        // The kept lease has by now outlived its TTL at least once; give it one more TTL.
        await sleep(ttlMs);
        expect((await c.get(`${prefix}kept`))?.value).toBe('k');
        expect(keptLost).toBe(0);
        expect(stoppedLost).toBe(1);
        await expectCode(c.put(`${prefix}late`, 'x', { lease: stopped.id }), 'LEASE_LOST');
        await kept.revoke();
        await w.cancel();
      });
    });

    describe('close', () => {
      it('makes every method reject with COORDINATION_CLOSED and ends watchers with onError', async () => {
        const s = await setup();
        try {
          const cc = s.coordination;
          const p = fresh();
          await cc.put(`${p}k`, 'v');
          const rec = recorder();
          await cc.watch(p, rec);
          await cc.close();
          await cc.close(); // idempotent
          await expectCode(cc.get(`${p}k`), 'COORDINATION_CLOSED');
          await expectCode(cc.range(p), 'COORDINATION_CLOSED');
          await expectCode(cc.put(`${p}k`, 'v'), 'COORDINATION_CLOSED');
          await expectCode(cc.delete(`${p}k`), 'COORDINATION_CLOSED');
          await expectCode(cc.deletePrefix(p), 'COORDINATION_CLOSED');
          await expectCode(cc.txn([], []), 'COORDINATION_CLOSED');
          await expectCode(cc.watch(p, recorder()), 'COORDINATION_CLOSED');
          await expectCode(cc.grantLease(5), 'COORDINATION_CLOSED');
          await expectCode(cc.revision(), 'COORDINATION_CLOSED');
          await expectCode(cc.compact(1), 'COORDINATION_CLOSED');
          await rec.until(() => rec.errors.length === 1, 'onError after close');
          expect(hasCode(rec.errors[0], 'COORDINATION_CLOSED')).toBe(true);
          // The data outlives this client where the backend is shared.
          expect(rec.events).toEqual([]);
        } finally {
          await s.teardown();
        }
      });

      cap.it('leases', 'a lease granted before close() rejects revoke with COORDINATION_CLOSED', async () => {
        const s = await setup();
        try {
          const lease = await s.coordination.grantLease(5);
          await s.coordination.close();
          await expectCode(lease.revoke(), 'COORDINATION_CLOSED');
        } finally {
          await s.teardown();
        }
      });
    });

    cap.describe('multiMember', 'members', () => {
      const all = (): Coordination[] => {
        expect(members, 'the runner declares multiMember: its setup must return `members`').toBeDefined();
        expect(members!.length, 'multiMember needs at least two members').toBeGreaterThanOrEqual(2);
        return members!;
      };

      it('a write through any member is read at once through every other (linearizable reads)', async () => {
        fresh();
        const ms = all();
        for (const [i, writer] of ms.entries()) {
          const key = `${prefix}k${i}`;
          const rev = await writer.put(key, `v${i}`);
          for (const reader of ms) {
            expect(await reader.get(key)).toMatchObject({ value: `v${i}`, modRevision: rev });
            expect(await reader.revision()).toBeGreaterThanOrEqual(rev);
          }
          await ms[(i + 1) % ms.length]!.delete(key);
          for (const reader of ms) expect(await reader.get(key)).toBeUndefined();
        }
      });

      it('create-if-absent through different members: exactly one wins', async () => {
        fresh();
        const ms = all();
        const key = `${prefix}lock`;
        const attempts = await Promise.all(
          ms.flatMap((m, i) =>
            [0, 1].map((j) =>
              m.txn(
                [{ key, target: 'createRevision', op: '=', value: 0 }],
                [{ type: 'put', key, value: `m${i}-${j}` }],
              ),
            ),
          ),
        );
        expect(attempts.filter((a) => a.succeeded)).toHaveLength(1);
        const stored = await ms[ms.length - 1]!.get(key);
        expect(stored?.version).toBe(1);
      });

      it('watchers on every member see the same events in the same order', async () => {
        fresh();
        const ms = all();
        const recs = ms.map(() => recorder());
        const watchers = await Promise.all(ms.map((m, i) => m.watch(prefix, recs[i]!)));
        for (let i = 0; i < 12; i++) {
          const m = ms[i % ms.length]!;
          if (i % 4 === 3) await m.delete(`${prefix}k${i % 3}`);
          else await m.put(`${prefix}k${i % 3}`, String(i));
        }
        // 9 puts and 3 deletes, each delete of a stored key: 12 events.
        for (const rec of recs) await rec.until(() => rec.events.length >= 12, '12 events');
        await sleep(50);
        const first = recs[0]!.events.map(describeEvent);
        for (const rec of recs) {
          expect(rec.events.map(describeEvent)).toEqual(first);
          expect(rec.errors).toEqual([]);
        }
        await Promise.all(watchers.map((w) => w.cancel()));
      });
    });

    it('every coordination capability gates at least one case', () => {
      cap.assertAllUsed();
    });
  });
}
