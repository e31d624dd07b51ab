/**
 * The source conformance suite (test/conformance/source.ts) against every source adapter: CSV and
 * exposition files (followed for the endless case), CSV on stdin, and a scrape target (the
 * dcgm-exporter stand-in).
 */
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { fileSource } from '../../src/ingest/file-source.js';
import { scrapeSource } from '../../src/ingest/scrape-source.js';
import { records, sourceConformance, valueOf, type RecordSpec } from '../conformance/source.js';
import { startStandin } from '../support/dcgm-exporter-standin.js';

const CSV_HEADER =
  'timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw\n';
const BASE_MS = Date.parse('2025-07-18T20:42:34Z');

function csvRecord(spec: RecordSpec, i: number): string {
  const ts = new Date(BASE_MS + i * 1000).toISOString();
  const value = 'bad' in spec ? 'abc' : String(spec.value);
  return `${ts},DCGM_FI_DEV_GPU_UTIL,${i % 8},nvidia${i % 8},GPU-conf-${i % 8},NVIDIA H100,conf-host,,,,${value},\n`;
}

const EXPOSITION_HEAD =
  '# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n';

function expositionRecord(spec: RecordSpec, i: number, withTime: boolean): string {
  const labels = `gpu="${i}",UUID="GPU-conf-${i}",device="nvidia${i}",modelName="NVIDIA H100",Hostname="conf-host"`;
  if ('bad' in spec) return `DCGM_FI_DEV_GPU_UTIL{${labels} oops\n`;
  return `DCGM_FI_DEV_GPU_UTIL{${labels}} ${spec.value}${withTime ? ` ${BASE_MS + i * 1000}` : ''}\n`;
}

async function tempDir(): Promise<{ dir: string; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'nexus-source-conf-'));
  return { dir, close: () => rm(dir, { recursive: true, force: true }) };
}

const good = (from: number, count: number): RecordSpec[] =>
  Array.from({ length: count }, (_, k) => ({ value: valueOf(from + k) }));

sourceConformance(
  'CSV file',
  {
    async finite(specs) {
      const { dir, close } = await tempDir();
      const path = join(dir, 'in.csv');
      await writeFile(path, CSV_HEADER + specs.map(csvRecord).join(''));
      return {
        source: fileSource({ spec: path, clusterId: 'c', timestamps: 'original' }),
        name: path,
        lineOf: (i) => i + 2,
        badReason: 'non_numeric_value',
        close,
      };
    },
    async endless() {
      const { dir, close } = await tempDir();
      const path = join(dir, 'in.csv');
      await writeFile(path, CSV_HEADER + good(0, 10).map(csvRecord).join(''));
      return {
        source: fileSource({ spec: path, clusterId: 'c', timestamps: 'original', follow: true }),
        async cutRecord() {
          const more = good(10, 5)
            .map((s, k) => csvRecord(s, 10 + k))
            .join('');
          await appendFile(path, more + csvRecord({ value: 99 }, 15).slice(0, 40));
        },
        close,
      };
    },
  },
  { resume: true },
);

sourceConformance(
  'exposition file',
  {
    async finite(specs) {
      const { dir, close } = await tempDir();
      const path = join(dir, 'in.prom');
      await writeFile(path, EXPOSITION_HEAD + specs.map((s, i) => expositionRecord(s, i, true)).join(''));
      return {
        source: fileSource({ spec: path, clusterId: 'c', timestamps: 'original' }),
        name: path,
        lineOf: (i) => i + 3,
        badReason: 'bad_exposition_line',
        close,
      };
    },
    async endless() {
      const { dir, close } = await tempDir();
      const path = join(dir, 'in.prom');
      await writeFile(
        path,
        EXPOSITION_HEAD +
          good(0, 10)
            .map((s, i) => expositionRecord(s, i, true))
            .join(''),
      );
      return {
        source: fileSource({ spec: path, clusterId: 'c', timestamps: 'original', follow: true }),
        async cutRecord() {
          const more = good(10, 5)
            .map((s, k) => expositionRecord(s, 10 + k, true))
            .join('');
          await appendFile(path, more + expositionRecord({ value: 99 }, 15, true).slice(0, 30));
        },
        close,
      };
    },
  },
  { resume: true },
);

sourceConformance(
  'CSV on stdin',
  {
    finite(specs) {
      const text = CSV_HEADER + specs.map(csvRecord).join('');
      // A fresh stream per read: stdin can be read once, so each read gets the same bytes again.
      const source = {
        description: 'stdin',
        read: (options?: Parameters<ReturnType<typeof fileSource>['read']>[0]) => {
          // In 16 KiB pieces, as a pipe delivers them.
          const stdin = Readable.from(
            Array.from({ length: Math.ceil(text.length / 16384) }, (_, k) =>
              Buffer.from(text.slice(k * 16384, (k + 1) * 16384)),
            ),
          );
          return fileSource({ spec: '-', clusterId: 'c', timestamps: 'original', stdin }).read(options);
        },
      };
      return Promise.resolve({
        source,
        name: 'stdin',
        lineOf: (i: number) => i + 2,
        badReason: 'non_numeric_value',
        close: () => Promise.resolve(),
      });
    },
    endless() {
      const stdin = new PassThrough();
      stdin.write(CSV_HEADER + good(0, 10).map(csvRecord).join(''));
      return Promise.resolve({
        source: fileSource({ spec: '-', clusterId: 'c', timestamps: 'original', stdin }),
        cutRecord() {
          const more = good(10, 5)
            .map((s, k) => csvRecord(s, 10 + k))
            .join('');
          stdin.write(more + csvRecord({ value: 99 }, 15).slice(0, 40));
          return Promise.resolve();
        },
        close: () => {
          stdin.destroy();
          return Promise.resolve();
        },
      });
    },
  },
  { resume: true },
);

sourceConformance(
  'scrape target',
  {
    async finite(specs) {
      const body = EXPOSITION_HEAD + specs.map((s, i) => expositionRecord(s, i, false)).join('');
      const standin = await startStandin({ body });
      return {
        source: scrapeSource(
          { targets: [standin.url], intervalMs: 1000, timeoutMs: 5000, bodyLimitBytes: 1 << 25, rounds: 1 },
          'c',
        ),
        name: standin.url,
        lineOf: (i) => i + 3,
        badReason: 'bad_exposition_line',
        close: () => standin.close(),
      };
    },
    async endless() {
      const body =
        EXPOSITION_HEAD +
        records(10)
          .map((s, i) => expositionRecord(s, i, false))
          .join('');
      const standin = await startStandin({ body });
      return {
        source: scrapeSource(
          { targets: [standin.url], intervalMs: 100, timeoutMs: 5000, bodyLimitBytes: 1 << 25 },
          'c',
        ),
        // A scrape is read whole or not at all: there is no record to cut.
        cutRecord: () => Promise.resolve(),
        close: () => standin.close(),
      };
    },
  },
  {
    resume:
      'a live target has no position: chunks carry no checkpoint, and a restarted read scrapes the target again at its next interval',
  },
);
