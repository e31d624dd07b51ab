/**
 * Prometheus remote write 1.0: decode a request body (snappy block-compressed protobuf
 * `prometheus.WriteRequest`) and map its series onto the same rows the exposition path produces.
 *
 * - The schema is defined with protobufjs ({@link REMOTE_WRITE_SCHEMA}). For decoding, each
 *   `TimeSeries.samples` entry is taken as raw bytes and read by {@link decodeSample}, so the exact
 *   bits of the value are seen: Prometheus' staleness marker (a NaN with bits 0x7ff0000000000002,
 *   written when a series disappears) is dropped and counted, while any other NaN is a
 *   `non_finite_value` dead letter.
 * - Mapping: every sample of a DCGM series is rendered as one exposition line
 *   (`name{labels} value timestamp_ms`) and read by {@link ExpositionParser}, so labels map exactly
 *   as for dcgm-exporter text (`gpu`, `UUID`, `Hostname`, ...; every label, `instance` and `job`
 *   included, kept in `labels`) and bad samples get the exposition path's dead-letter reasons. A
 *   series without `Hostname`/`hostname` takes the host part of its `instance` label.
 * - Series whose `__name__` does not start with `DCGM_` (Prometheus' own `up`, `scrape_*`, other
 *   exporters) are dropped and counted, never dead-lettered.
 */
import protobuf from 'protobufjs';
import { ExpositionParser, type RowResult } from './exposition.js';
import { SnappyBlockError, uncompressSnappyBlock } from './snappy-block.js';

/** Source name of remote-write dead letters and batches. */
export const REMOTE_WRITE_SOURCE = 'remote-write';

/** Default largest decompressed body (32 MiB). */
export const DEFAULT_REMOTE_WRITE_MAX_BYTES = 32 * 1024 * 1024;

/** Bits of Prometheus' staleness marker NaN (`value.StaleNaN`). */
const STALE_NAN_HI = 0x7ff00000;
const STALE_NAN_LO = 0x00000002;

/** Longest rendered line handed to the exposition parser (identity limits apply inside it). */
const MAX_RENDERED_LINE_BYTES = 1024 * 1024;

/** The remote write 1.0 messages (prometheus/prompb types.proto + remote.proto, without metadata). */
export const REMOTE_WRITE_SCHEMA = {
  nested: {
    prometheus: {
      nested: {
        WriteRequest: { fields: { timeseries: { rule: 'repeated', type: 'TimeSeries', id: 1 } } },
        TimeSeries: {
          fields: {
            labels: { rule: 'repeated', type: 'Label', id: 1 },
            samples: { rule: 'repeated', type: 'Sample', id: 2 },
          },
        },
        Label: { fields: { name: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        Sample: { fields: { value: { type: 'double', id: 1 }, timestamp: { type: 'int64', id: 2 } } },
      },
    },
  },
} as const;

/** The same messages, but `TimeSeries.samples` as raw bytes (read by {@link decodeSample}). */
const DECODE_SCHEMA = {
  nested: {
    prometheus: {
      nested: {
        ...REMOTE_WRITE_SCHEMA.nested.prometheus.nested,
        TimeSeries: {
          fields: {
            labels: { rule: 'repeated', type: 'Label', id: 1 },
            samples: { rule: 'repeated', type: 'bytes', id: 2 },
          },
        },
      },
    },
  },
};

/** protobufjs root of {@link REMOTE_WRITE_SCHEMA} (tests encode requests with it). */
export const remoteWriteRoot = protobuf.Root.fromJSON(REMOTE_WRITE_SCHEMA);
/** `prometheus.WriteRequest` of {@link remoteWriteRoot}. */
export const WriteRequestType = remoteWriteRoot.lookupType('prometheus.WriteRequest');
const RawWriteRequest = protobuf.Root.fromJSON(DECODE_SCHEMA).lookupType('prometheus.WriteRequest');

/** One decoded label. */
export interface RemoteLabel {
  name: string;
  value: string;
}

/** One decoded sample. */
export interface RemoteSample {
  value: number;
  /** Milliseconds since the epoch. */
  timestampMs: number;
  /** The value is Prometheus' staleness marker. */
  stale: boolean;
}

/** One decoded series. */
export interface RemoteSeries {
  labels: RemoteLabel[];
  samples: RemoteSample[];
}

/** Why a body was refused: answered with 400 (Prometheus does not retry it). */
export class RemoteWriteDecodeError extends Error {
  override readonly name = 'RemoteWriteDecodeError';
  constructor(
    message: string,
    /** `not_snappy`, `too_large` or `not_write_request`. */
    readonly reason: 'not_snappy' | 'too_large' | 'not_write_request',
  ) {
    super(message);
  }
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v !== null && typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return Number(v);
}

/** Read one `Sample` message from its bytes (value bits kept: staleness markers are told apart). */
export function decodeSample(bytes: Uint8Array): RemoteSample {
  const reader = protobuf.Reader.create(bytes);
  let value = 0;
  let stale = false;
  let timestampMs = 0;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 1 && wire === 1) {
      if (reader.pos + 8 > reader.len) throw new Error('Sample.value is cut short');
      const view = new DataView(bytes.buffer, bytes.byteOffset + reader.pos, 8);
      stale = view.getUint32(4, true) === STALE_NAN_HI && view.getUint32(0, true) === STALE_NAN_LO;
      value = view.getFloat64(0, true);
      reader.skip(8); // past the double just read through the DataView
    } else if (field === 2 && wire === 0) {
      timestampMs = toNumber(reader.int64());
    } else {
      reader.skipType(wire);
    }
  }
  return { value, timestampMs, stale };
}

/**
 * Decompress and decode a remote write 1.0 body.
 * @throws RemoteWriteDecodeError when the body is not snappy, too large once decompressed, or not a
 *   WriteRequest
 */
export function decodeWriteRequest(
  body: Uint8Array,
  maxBytes = DEFAULT_REMOTE_WRITE_MAX_BYTES,
): RemoteSeries[] {
  let raw: Uint8Array;
  try {
    raw = uncompressSnappyBlock(body, maxBytes);
  } catch (error) {
    if (error instanceof SnappyBlockError && error.reason === 'too_large')
      throw new RemoteWriteDecodeError(
        `decompressed body is larger than the limit of ${maxBytes} bytes`,
        'too_large',
      );
    const message = error instanceof Error ? error.message : String(error);
    throw new RemoteWriteDecodeError(`body is not snappy block-compressed: ${message}`, 'not_snappy');
  }
  try {
    const message = RawWriteRequest.decode(raw) as unknown as {
      timeseries?: { labels?: { name?: string; value?: string }[]; samples?: Uint8Array[] }[];
    };
    return (message.timeseries ?? []).map((ts) => ({
      labels: (ts.labels ?? []).map((l) => ({ name: l.name ?? '', value: l.value ?? '' })),
      samples: (ts.samples ?? []).map(decodeSample),
    }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new RemoteWriteDecodeError(
      `body is not a prometheus.WriteRequest: ${message}`,
      'not_write_request',
    );
  }
}

/** Options of {@link mapRemoteWrite}. */
export interface RemoteWriteMapOptions {
  clusterId: string;
  /** Dead-letter source (default {@link REMOTE_WRITE_SOURCE}). */
  source?: string;
  /** Clock, for tests. */
  now?: () => number;
  /** How far ahead of now a timestamp may be (default: the exposition parser's, one day). */
  futureToleranceMs?: number;
}

/** Rows of one request, and what was dropped on purpose. */
export interface RemoteWriteMapped {
  rows: RowResult[];
  /** Samples stored (rows that are samples). */
  samples: number;
  deadLetters: number;
  /** Series dropped because their metric is not a DCGM field. */
  droppedSeries: number;
  /** Staleness markers dropped (not samples). */
  staleMarkers: number;
}

function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'));
}

function valueText(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Host part of an `instance` label (`host:port`, `[v6]:port`, or a bare host). */
export function instanceHost(instance: string): string {
  if (instance.startsWith('[')) {
    const close = instance.indexOf(']');
    return close > 0 ? instance.slice(1, close) : instance;
  }
  const colon = instance.lastIndexOf(':');
  return colon > 0 && instance.indexOf(':') === colon ? instance.slice(0, colon) : instance;
}

/**
 * Map decoded series onto rows, the way {@link ExpositionParser} maps dcgm-exporter labels.
 * A dead letter's `line` is the 1-based index of its series in the request.
 */
export function mapRemoteWrite(
  series: readonly RemoteSeries[],
  options: RemoteWriteMapOptions,
): RemoteWriteMapped {
  const source = options.source ?? REMOTE_WRITE_SOURCE;
  const parsers = new Map<string, ExpositionParser>();
  const parserFor = (host: string): ExpositionParser => {
    let p = parsers.get(host);
    if (p === undefined) {
      p = new ExpositionParser({
        source,
        clusterId: options.clusterId,
        scrapeStartMs: 0,
        defaultHostname: host,
        maxLineBytes: MAX_RENDERED_LINE_BYTES,
        now: options.now,
        futureToleranceMs: options.futureToleranceMs,
      });
      parsers.set(host, p);
    }
    return p;
  };
  const out: RemoteWriteMapped = { rows: [], samples: 0, deadLetters: 0, droppedSeries: 0, staleMarkers: 0 };
  series.forEach((ts, index) => {
    let metric = '';
    let instance = '';
    const parts: string[] = [];
    for (const l of ts.labels) {
      if (l.name === '__name__') metric = l.value;
      else {
        if (l.name === 'instance') instance = l.value;
        parts.push(`${l.name}="${escapeLabelValue(l.value)}"`);
      }
    }
    if (!metric.startsWith('DCGM_')) {
      out.droppedSeries++;
      return;
    }
    const head = `${metric}{${parts.join(',')}} `;
    const parser = parserFor(instance === '' ? '' : instanceHost(instance));
    for (const s of ts.samples) {
      if (s.stale) {
        out.staleMarkers++;
        continue;
      }
      const ts64 = Number.isSafeInteger(s.timestampMs) ? String(s.timestampMs) : s.timestampMs.toFixed(0);
      for (const row of parser.push(`${head}${valueText(s.value)} ${ts64}\n`)) {
        if (row.ok) out.samples++;
        else {
          row.deadLetter.line = index + 1;
          out.deadLetters++;
        }
        out.rows.push(row);
      }
    }
  });
  return out;
}
