/**
 * The read limiter's state on /metrics: reads running and waiting, and reads refused because the
 * queue was full. Read at scrape time, so the limiter itself stays free of prom-client.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ReadLimiter } from './read-limiter.js';

const NAMES = ['nexus_api_reads_active', 'nexus_api_reads_queued', 'nexus_api_reads_refused_total'];

/** Register the gauges of `limiter` on `registry` (replacing those of an earlier app on it). */
export function exportReadLimiterMetrics(registry: Registry, limiter: ReadLimiter): void {
  for (const name of NAMES) registry.removeSingleMetric(name);
  const registers = [registry];
  new Gauge({
    name: 'nexus_api_reads_active',
    help: 'Sample-store reads of the API running now (at most READ_CONCURRENCY)',
    registers,
    collect() {
      this.set(limiter.stats().active);
    },
  });
  new Gauge({
    name: 'nexus_api_reads_queued',
    help: 'Sample-store reads of the API waiting for a slot (at most READ_QUEUE)',
    registers,
    collect() {
      this.set(limiter.stats().queued);
    },
  });
  let reported = 0;
  new Counter({
    name: 'nexus_api_reads_refused_total',
    help: 'Sample-store reads refused with 503 OVERLOADED because the read queue was full',
    registers,
    collect() {
      const refused = limiter.stats().refused;
      this.inc(refused - reported);
      reported = refused;
    },
  });
}
