/**
 * GET /api/v1/targets: the health of every scrape target, shaped like Prometheus' /api/v1/targets
 * (`data.activeTargets[]` with scrapeUrl, health, lastError, lastScrape, lastScrapeDuration), plus
 * `samples` (samples of the last scrape). Also puts the same state on /metrics as Prometheus' own
 * per-target series: `up`, `scrape_duration_seconds`, `scrape_samples_scraped`, labelled `target`
 * (read from the board at scrape time). Registered only when the process scrapes (SCRAPE_TARGETS).
 */
import type { FastifyPluginAsync } from 'fastify';
import { Gauge, type Registry } from 'prom-client';
import type { ScrapeTargetBoard, TargetState } from '../../ingest/scrape.js';
import type { ApiContext } from '../context.js';

/** Options of {@link targetRoutes}. */
export interface TargetRoutesOptions {
  ctx: ApiContext;
  board: ScrapeTargetBoard;
}

/** What Prometheus reports as the last scrape of a target never scraped. */
const NEVER = '0001-01-01T00:00:00Z';

const targetSchema = {
  type: 'object',
  required: [
    'scrapeUrl',
    'globalUrl',
    'labels',
    'health',
    'lastError',
    'lastScrape',
    'lastScrapeDuration',
    'samples',
    'deadLetters',
    'scrapeInterval',
    'scrapeTimeout',
  ],
  additionalProperties: false,
  properties: {
    scrapeUrl: { type: 'string', description: 'the URL scraped' },
    globalUrl: { type: 'string' },
    labels: {
      type: 'object',
      required: ['instance', 'job'],
      additionalProperties: false,
      properties: {
        instance: { type: 'string', description: 'host:port of the target' },
        job: { type: 'string' },
      },
    },
    health: { type: 'string', enum: ['up', 'down', 'unknown'] },
    lastError: {
      type: 'string',
      description: 'why the last scrape failed, or which lines it refused; empty when clean',
    },
    lastScrape: {
      type: 'string',
      description: `start of the last scrape (RFC 3339); ${NEVER} before the first one`,
    },
    lastScrapeDuration: { type: 'number', description: 'seconds the last scrape took' },
    samples: { type: 'integer', description: 'samples the last scrape yielded' },
    deadLetters: { type: 'integer', description: 'lines the last scrape refused' },
    scrapeInterval: { type: 'string' },
    scrapeTimeout: { type: 'string' },
  },
} as const;

const responseSchema = {
  type: 'object',
  required: ['status', 'data'],
  additionalProperties: false,
  properties: {
    status: { type: 'string', enum: ['success'] },
    data: {
      type: 'object',
      required: ['activeTargets', 'droppedTargets'],
      additionalProperties: false,
      properties: {
        activeTargets: { type: 'array', items: targetSchema },
        droppedTargets: { type: 'array', items: { type: 'object' } },
      },
    },
  },
} as const;

/** A duration in Prometheus' notation: `10s`, `1m30s`, `500ms`. */
function promDuration(ms: number): string {
  if (ms % 1000 !== 0) return `${ms}ms`;
  let s = ms / 1000;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const text = `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`;
  return text === '' ? '0s' : text;
}

function targetView(state: TargetState, board: ScrapeTargetBoard) {
  return {
    scrapeUrl: state.url,
    globalUrl: state.url,
    labels: { instance: new URL(state.url).host, job: 'nexus-telemetry' },
    health: state.health,
    lastError: state.lastError,
    lastScrape: state.lastScrape ?? NEVER,
    lastScrapeDuration: state.lastScrapeDurationSeconds,
    samples: state.samples,
    deadLetters: state.deadLetters,
    scrapeInterval: promDuration(board.intervalMs),
    scrapeTimeout: promDuration(board.timeoutMs),
  };
}

const METRIC_NAMES = ['up', 'scrape_duration_seconds', 'scrape_samples_scraped'];

/** Register the per-target gauges of `board` on `registry` (replacing those of an earlier app on it). */
export function exportTargetMetrics(registry: Registry, board: ScrapeTargetBoard): void {
  for (const name of METRIC_NAMES) registry.removeSingleMetric(name);
  const registers = [registry];
  const scraped = (): TargetState[] => board.list().filter((t) => t.health !== 'unknown');
  new Gauge({
    name: 'up',
    help: '1 if the last scrape of the target succeeded, 0 if it failed',
    labelNames: ['target'] as const,
    registers,
    collect() {
      this.reset();
      for (const t of scraped()) this.set({ target: t.url }, t.health === 'up' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'scrape_duration_seconds',
    help: 'Duration of the last scrape of the target',
    labelNames: ['target'] as const,
    registers,
    collect() {
      this.reset();
      for (const t of scraped()) this.set({ target: t.url }, t.lastScrapeDurationSeconds);
    },
  });
  new Gauge({
    name: 'scrape_samples_scraped',
    help: 'Samples the last scrape of the target yielded',
    labelNames: ['target'] as const,
    registers,
    collect() {
      this.reset();
      for (const t of scraped()) this.set({ target: t.url }, t.samples);
    },
  });
}

/** GET /api/v1/targets, and the per-target gauges on /metrics. */
export const targetRoutes: FastifyPluginAsync<TargetRoutesOptions> = async (app, { ctx, board }) => {
  exportTargetMetrics(ctx.deps.metrics.registry, board);
  app.get(
    '/api/v1/targets',
    {
      schema: {
        tags: ['targets'],
        summary: 'Scrape targets and their health as of their last scrape (like Prometheus /api/v1/targets)',
        response: { 200: responseSchema },
      },
    },
    async () => ({
      status: 'success' as const,
      data: { activeTargets: board.list().map((t) => targetView(t, board)), droppedTargets: [] },
    }),
  );
};
