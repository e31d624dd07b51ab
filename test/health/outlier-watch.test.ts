/**
 * Peer outliers become health reasons and events (issue 19): on `start` with generated data (3 hosts
 * x 8 H100, one scrape a minute) where one GPU runs 22 C hotter than its siblings for 25 minutes, the
 * outlier watch (run at injected times):
 * - marks that GPU and no other: REST health and GraphQL healthIssues show PEER_OUTLIER on it only;
 * - sends one GPU_OUTLIER event with the mark on /ws (a second round changes nothing, no event);
 * - clears the mark once the drift is over: a GPU_OUTLIER event with `outlier: null`, naming the
 *   GPU by UUID, and no PEER_OUTLIER anywhere.
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { writeDcgmCsv } from '../../src/generate/generator.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { JsonSocket, waitUntil } from '../ws/harness.js';

const M = 60_000;
const T0 = Date.parse('2026-03-02T00:00:00Z');
const HOT = { host: 'sim-dgx1-hgpu-002', gpu: '1', fromMin: 20, toMin: 45, degrees: 22 };
const dir = mkdtempSync(join(tmpdir(), 'nexus-outlier-watch-'));
let runtime: EmbeddedRuntime;
let socket: JsonSocket;

/** Add the drift to the hot GPU's temperature rows of a generated CSV. */
function withDrift(csv: string): string {
  const row = new RegExp(
    `^"([^"]+)","DCGM_FI_DEV_GPU_TEMP","${HOT.gpu}",("[^"]*",){3}"${HOT.host}","[^"]*","[^"]*","[^"]*","([0-9.]+)"`,
  );
  let changed = 0;
  const lines = csv.split('\n').map((line) => {
    const m = row.exec(line);
    if (!m) return line;
    const minute = (Date.parse(m[1]!) - T0) / M;
    if (minute < HOT.fromMin || minute >= HOT.toMin) return line;
    changed += 1;
    const value = Number(m[3]) + HOT.degrees;
    return line.replace(`,"${m[3]}","`, `,"${value}","`);
  });
  expect(changed).toBe(HOT.toMin - HOT.fromMin);
  return lines.join('\n');
}

beforeAll(async () => {
  const csv = join(dir, 'fleet.csv');
  await writeDcgmCsv(csv, { hosts: 3, gpusPerHost: 8, intervalMs: M, durationMs: 60 * M, start: T0 });
  writeFileSync(csv, withDrift(readFileSync(csv, 'utf8')));
  const config = loadConfig(
    {},
    { MEMORY: 'true', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', CLUSTER_ID: 'fleet' },
  );
  // The clock starts before the data: the watch's first round (at start-up) finds nothing.
  runtime = await startEmbedded({ config, logger: createLogger('silent'), alertClock: () => T0 - 60 * M });
  expect((await runtime.ingest({ spec: csv })).badRows).toBe(0);
  socket = new JsonSocket(`${runtime.address!.replace('http', 'ws')}/ws?eventTypes=GPU_OUTLIER`);
  await socket.opened;
  await socket.next((m) => m.type === 'subscribed', 'subscribed');
}, 120_000);

afterAll(async () => {
  socket?.close();
  await runtime?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface HealthEntry {
  hostname: string;
  gpu_id: string;
  health: { reasons: { code: string; message: string }[] };
}

async function outlierGpus(): Promise<string[]> {
  const r = await runtime.app.inject({ method: 'GET', url: '/api/v1/health/gpus?state=ok,warning,critical' });
  const all = r.json() as HealthEntry[];
  expect(all).toHaveLength(24);
  return all
    .filter((g) => g.health.reasons.some((x) => x.code === 'PEER_OUTLIER'))
    .map((g) => `${g.hostname}/${g.gpu_id}`);
}

const events = () => socket.ofType('event').map((m) => m.event as Record<string, unknown>);

describe('outlier watch', () => {
  it('marks the drifting GPU alone, as a health reason and one event', async () => {
    const round = await runtime.alerting.outliers.runAt(T0 + 40 * M);
    expect(round).toEqual({ marked: [`${HOT.host}/${HOT.gpu}`], written: 1, cleared: 0 });
    expect(await outlierGpus()).toEqual([`${HOT.host}/${HOT.gpu}`]);

    const one = (
      await runtime.app.inject({
        method: 'GET',
        url: `/api/v1/clusters/fleet/hosts/${HOT.host}/gpus/${HOT.gpu}/health`,
      })
    ).json() as HealthEntry & { health: { state: string } };
    const reason = one.health.reasons.find((r) => r.code === 'PEER_OUTLIER')!;
    expect(reason.message).toMatch(/^temperature departs from its 7 siblings .* \(mean \+\d+\.\d C\)$/);
    expect(one.health.state).not.toBe('ok');

    const gql = (
      await runtime.app.inject({
        method: 'POST',
        url: '/graphql',
        payload: {
          query: `{ cluster(id: "fleet") { hosts { hostname gpus { id deviceName status { healthIssues } } } } }`,
        },
      })
    ).json() as {
      data: { cluster: { hosts: { hostname: string; gpus: { status: { healthIssues: string[] } }[] }[] } };
      errors?: unknown;
    };
    expect(gql.errors).toBeUndefined();
    const flagged = gql.data.cluster.hosts.flatMap((h) =>
      h.gpus.filter((g) => g.status.healthIssues.includes('PEER_OUTLIER')).map(() => h.hostname),
    );
    expect(flagged).toEqual([HOT.host]);

    await waitUntil(() => events().length >= 1, 'the GPU_OUTLIER event');
    const [event] = events();
    expect(event).toMatchObject({
      eventType: 'GPU_OUTLIER',
      clusterId: 'fleet',
      hostId: HOT.host,
      gpuIndex: HOT.gpu,
      outlier: { signal: 'temperature', peers: 8 },
    });
    const outlier = event!.outlier as { since: string; maxScore: number; meanDeviation: number };
    expect(Date.parse(outlier.since)).toBeGreaterThanOrEqual(T0 + HOT.fromMin * M);
    expect(outlier.maxScore).toBeGreaterThan(5);
    expect(outlier.meanDeviation).toBeGreaterThan(15);
    expect(String(event!.gpuId)).toMatch(/^GPU-/);

    // Still out of line a minute later: the mark stays as it is, no event.
    expect(await runtime.alerting.outliers.runAt(T0 + 41 * M)).toEqual({
      marked: [`${HOT.host}/${HOT.gpu}`],
      written: 0,
      cleared: 0,
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(events()).toHaveLength(1);
  });

  it('clears the mark when the drift is over: an event with outlier null, and no reason left', async () => {
    const uuid = events()[0]!.gpuId;
    expect(await runtime.alerting.outliers.runAt(T0 + 60 * M)).toEqual({
      marked: [],
      written: 0,
      cleared: 1,
    });
    await waitUntil(() => events().length >= 2, 'the clearing GPU_OUTLIER event');
    expect(events()[1]).toMatchObject({
      eventType: 'GPU_OUTLIER',
      hostId: HOT.host,
      gpuIndex: HOT.gpu,
      gpuId: uuid,
      outlier: null,
    });
    expect(await outlierGpus()).toEqual([]);
  });
});
