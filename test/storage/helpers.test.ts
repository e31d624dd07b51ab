/**
 * Unit tests of the storage helpers that need no database: series identity and id cache, the
 * binary COPY encoder, statement builders, the resolution rule, rollup folding, partition names and
 * retention planning, migration list invariants and PostgreSQL error mapping.
 */
import { describe, expect, it } from 'vitest';
import { isConnectionError, mapPostgresError, redact } from '../../src/adapters/postgres/errors.js';
import type { SeriesKey } from '../../src/domain/types.js';
import { encodeSamplesCopy } from '../../src/storage/binary-copy.js';
import { LATEST_SCHEMA_VERSION, MIGRATIONS } from '../../src/storage/migrations.js';
import { buildListDeadLetters, buildSampleQuery, compareGpus } from '../../src/storage/queries.js';
import { SeriesIdCache, pgLabelsJson, seriesIdentity, seriesKeyHash } from '../../src/storage/series.js';
import { chooseResolution } from '../../src/ports/sample-store.js';
import {
  DAY_MS,
  PartitionCache,
  dayLabel,
  distinctDays,
  expiredPartitions,
  partitionDay,
  partitionName,
} from '../../src/storage/partitions.js';
import { bucketStart } from '../../src/storage/rollups.js';
import { numericArrayLiteral } from '../../src/storage/sql-executor.js';

const key: SeriesKey = {
  clusterId: 'c',
  hostname: 'h',
  gpuId: '0',
  uuid: 'GPU-1',
  device: 'nvidia0',
  modelName: 'H100',
  metric: 'DCGM_FI_DEV_GPU_UTIL',
  container: '',
  pod: '',
  namespace: '',
  labels: { a: '1', b: '2' },
};

describe('series identity', () => {
  it('ignores label order but not label values or fields', () => {
    const same = seriesIdentity({ ...key, labels: { b: '2', a: '1' } });
    expect(same).toBe(seriesIdentity(key));
    expect(seriesIdentity({ ...key, labels: { a: '1', b: '3' } })).not.toBe(same);
    expect(seriesIdentity({ ...key, pod: 'p' })).not.toBe(same);
    // No separator games: moving text between fields changes the identity.
    expect(seriesIdentity({ ...key, hostname: 'h","0', gpuId: '' })).not.toBe(
      seriesIdentity({ ...key, hostname: 'h', gpuId: '","0' }),
    );
    expect(seriesKeyHash(same)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('makes labels with NUL storable as jsonb', () => {
    expect(JSON.parse(pgLabelsJson({ k: 'a\0b' }))).toEqual({ k: 'a\uFFFDb' });
    expect(pgLabelsJson({ k: 'v' })).toBe('{"k":"v"}');
  });
});

describe('SeriesIdCache', () => {
  it('finds a series whatever the label order, and only that series', () => {
    const cache = new SeriesIdCache();
    cache.addAll([{ key, id: 7 }]);
    expect(cache.get({ ...key, labels: { b: '2', a: '1' } })).toBe(7);
    expect(cache.get({ ...key, labels: { a: '1' } })).toBeUndefined();
    expect(cache.get({ ...key, labels: { a: '1', b: '2', c: '3' } })).toBeUndefined();
    expect(cache.get({ ...key, namespace: 'ns' })).toBeUndefined();
    expect(cache.get({ ...key, hostname: 'other' })).toBeUndefined();
  });

  it('keeps its own copy of the labels', () => {
    const cache = new SeriesIdCache();
    const labels = { a: '1' };
    cache.addAll([{ key: { ...key, labels }, id: 1 }]);
    labels.a = 'changed';
    expect(cache.get({ ...key, labels: { a: '1' } })).toBe(1);
  });

  it('stays within its bound', () => {
    const cache = new SeriesIdCache(3);
    cache.addAll([1, 2, 3, 4, 5].map((i) => ({ key: { ...key, metric: `M${i}` }, id: i })));
    expect(cache.size).toBeLessThanOrEqual(3);
    expect(cache.get({ ...key, metric: 'M5' })).toBe(5);
  });
});

describe('encodeSamplesCopy', () => {
  it('writes the binary COPY header, 34 bytes per row and the trailer', () => {
    const buf = encodeSamplesCopy(
      Int32Array.of(1, 2),
      Float64Array.of(946_684_800_000, 946_684_800_000 - 1),
      Float64Array.of(1.5, -2),
    );
    expect(buf.subarray(0, 11).toString('latin1')).toBe('PGCOPY\n\xff\r\n\0');
    expect(buf.length).toBe(19 + 2 * 34 + 2);
    const row = 19;
    expect(buf.readInt16BE(row)).toBe(3);
    expect(buf.readInt32BE(row + 6)).toBe(1);
    expect(buf.readBigInt64BE(row + 14)).toBe(0n); // 2000-01-01 is PostgreSQL's epoch
    expect(buf.readDoubleBE(row + 26)).toBe(1.5);
    expect(buf.readBigInt64BE(row + 34 + 14)).toBe(-1000n);
    expect(buf.readInt16BE(buf.length - 2)).toBe(-1);
  });

  it('encodes a slice of the arrays', () => {
    const buf = encodeSamplesCopy(Int32Array.of(1, 2, 3), new Float64Array(3), new Float64Array(3), 1, 3);
    expect(buf.length).toBe(19 + 2 * 34 + 2);
    expect(buf.readInt32BE(19 + 6)).toBe(2);
  });
});

describe('statement builders', () => {
  it('numbers parameters in order and applies the default limit', () => {
    const s = buildSampleQuery({
      gpu: { clusterId: 'c', hostname: 'h', gpuId: '0' },
      metrics: ['M'],
      startMs: 1,
      endMs: 2,
      order: 'asc',
    });
    expect(s.params).toEqual(['c', 'h', '0', ['M'], 1, 2, 1000]);
    expect(s.text).toContain('LIMIT $7');
    expect(s.text).toContain('ORDER BY sa.ts ASC');
    expect(buildSampleQuery({ gpu: { uuid: 'u' }, limit: 5.7 }).params).toEqual(['u', 5]);
    expect(buildListDeadLetters({ source: 's', limit: 3 }).params).toEqual(['s', 3]);
  });

  it('orders GPU indexes numerically', () => {
    const gpu = (gpuId: string) => ({
      clusterId: 'c',
      hostname: 'h',
      gpuId,
      uuid: gpuId,
      device: '',
      modelName: '',
    });
    expect(
      ['10', '2', 'x', '0']
        .map(gpu)
        .sort(compareGpus)
        .map((g) => g.gpuId),
    ).toEqual(['0', '2', '10', 'x']);
  });
});

describe('migrations', () => {
  it('have unique ascending versions', () => {
    const versions = MIGRATIONS.map((m) => m.version);
    expect(versions).toEqual([...new Set(versions)].sort((a, b) => a - b));
    expect(LATEST_SCHEMA_VERSION).toBe(versions.at(-1));
  });
});

describe('PostgreSQL error mapping', () => {
  it('treats refused or dropped connections and server shutdown as retryable', () => {
    expect(
      isConnectionError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    ).toBe(true);
    expect(isConnectionError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionError(Object.assign(new Error('terminating'), { code: '57P01' }))).toBe(true);
    expect(isConnectionError(Object.assign(new Error('x'), { code: '08006' }))).toBe(true);
    expect(isConnectionError(Object.assign(new Error('dup'), { code: '23505' }))).toBe(false);
    const e = mapPostgresError(Object.assign(new Error('boom'), { code: 'ECONNRESET' }), 'ping', 'h:1/db', [
      'pw',
    ]);
    expect(e).toMatchObject({ code: 'BACKEND_UNAVAILABLE', retryable: true, status: 503 });
  });

  it('never puts the password in a message', () => {
    expect(redact('password s3cr/t and s3cr%2Ft', ['s3cr/t'])).toBe('password *** and ***');
    const e = mapPostgresError(new Error('auth for s3cret failed'), 'ping', 'h:1/db', ['s3cret']);
    expect(e.message).not.toContain('s3cret');
    const auth = mapPostgresError(
      Object.assign(new Error('password authentication failed'), { code: '28P01' }),
      'x',
      't',
      ['wrong-pw'],
    );
    expect(auth.code).toBe('CONFIG_INVALID');
  });
});

describe('resolution rule', () => {
  const h = 3_600_000;
  it('serves raw unless asked, and picks by span for auto', () => {
    expect(chooseResolution({})).toBe('raw');
    expect(chooseResolution({ resolution: '1h', startMs: 0, endMs: 1 })).toBe('1h');
    expect(chooseResolution({ resolution: 'auto' })).toBe('raw');
    expect(chooseResolution({ resolution: 'auto', startMs: 0, endMs: 6 * h })).toBe('raw');
    expect(chooseResolution({ resolution: 'auto', startMs: 0, endMs: 6 * h + 1 })).toBe('1m');
    expect(chooseResolution({ resolution: 'auto', startMs: 0, endMs: 7 * 24 * h })).toBe('1m');
    expect(chooseResolution({ resolution: 'auto', startMs: 0, endMs: 7 * 24 * h + 1 })).toBe('1h');
    expect(chooseResolution({ resolution: 'auto', startMs: 1000 }, 1000 + 8 * 24 * h)).toBe('1h');
  });

  it('builds rollup statements on the rollup table only, start rounded down to its bucket', () => {
    const s = buildSampleQuery({ gpu: { uuid: 'u' }, startMs: 90_000, endMs: 200_000, resolution: '1m' });
    expect(s.resolution).toBe('1m');
    expect(s.text).toContain('FROM samples_1m WHERE');
    expect(s.text).toContain('FROM rollup_chunks_1m c');
    expect(s.text).not.toMatch(/JOIN samples\b/);
    expect(s.params).toEqual(['u', 60_000, 200_000, 1000]);
  });
});

describe('rollup helpers', () => {
  it('aligns buckets on whole UTC minutes, also before 1970', () => {
    expect(bucketStart(61_000, 60_000)).toBe(60_000);
    expect(bucketStart(-1, 60_000)).toBe(-60_000);
  });

  it('writes numeric arrays as PostgreSQL array text', () => {
    expect(numericArrayLiteral([1, -2.5, 1e300, Infinity])).toBe('{1,-2.5,1e+300,Infinity}');
    expect(numericArrayLiteral(Int32Array.of(3, 4))).toBe('{3,4}');
    expect(numericArrayLiteral([])).toBe('{}');
  });
});

describe('day partitions', () => {
  const day = Date.parse('2025-07-18T00:00:00.000Z');
  it('names partitions by UTC day and parses the names back', () => {
    expect(partitionName('samples_1m', day + 5)).toBe('samples_1m_p20250718');
    expect(dayLabel(Date.parse('0001-01-01T00:00:00.000Z'))).toBe('00010101');
    expect(partitionDay('samples', 'samples_p20250718')).toBe(day);
    expect(partitionDay('samples', 'samples_1m_p20250718')).toBeUndefined();
    expect(partitionDay('samples_1m', 'samples_1m_p20250718')).toBe(day);
    expect(partitionDay('samples', 'samples_default')).toBeUndefined();
    expect(distinctDays([day + 1, day + DAY_MS - 1, day - 1, day + DAY_MS])).toEqual([
      day + DAY_MS,
      day,
      day - DAY_MS,
    ]);
  });

  it('expires only partitions whose whole day is older than the cutoff', () => {
    const parts = [0, 1, 2].map((d) => ({
      parent: 'samples' as const,
      name: `p${d}`,
      dayMs: day + d * DAY_MS,
    }));
    expect(expiredPartitions(parts, day + DAY_MS).map((p) => p.name)).toEqual(['p0']);
    expect(expiredPartitions(parts, day + DAY_MS - 1)).toEqual([]);
  });

  it('caches known days for a while', () => {
    const cache = new PartitionCache(1000);
    cache.add([day], 0);
    expect(cache.missing([day, day + DAY_MS], 500)).toEqual([day + DAY_MS]);
    expect(cache.missing([day], 1000)).toEqual([day]);
    cache.add([day], 0);
    cache.forget([day]);
    expect(cache.missing([day], 1)).toEqual([day]);
  });
});
