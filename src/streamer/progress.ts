/**
 * Progress of a long ingest: a single redrawn status line on a terminal (rows, rows/s, bad rows,
 * batches), plain periodic log lines otherwise, and a final summary either way.
 */
import type { Logger } from '../util/logger.js';

export interface ProgressCounts {
  rows: number;
  badRows: number;
  batches: number;
}

export class ProgressReporter {
  private readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private lastLogRows = 0;

  constructor(
    private readonly counts: () => ProgressCounts,
    private readonly logger: Logger,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly intervalMs = stream.isTTY ? 250 : 5000,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  /** Stop reporting and write the final summary. */
  stop(): ProgressCounts & { seconds: number; rowsPerSecond: number } {
    if (this.timer) clearInterval(this.timer);
    const counts = this.counts();
    const seconds = (Date.now() - this.startedAt) / 1000;
    const rowsPerSecond = seconds > 0 ? Math.round(counts.rows / seconds) : counts.rows;
    if (this.stream.isTTY) this.stream.write(`\r${this.line(counts)}\n`);
    return { ...counts, seconds, rowsPerSecond };
  }

  private line(counts: ProgressCounts): string {
    const seconds = Math.max((Date.now() - this.startedAt) / 1000, 0.001);
    const rate = Math.round(counts.rows / seconds);
    return `ingest: ${counts.rows.toLocaleString('en-US')} rows  ${rate.toLocaleString('en-US')} rows/s  ${counts.badRows} bad  ${counts.batches} batches`;
  }

  private tick(): void {
    const counts = this.counts();
    if (this.stream.isTTY) {
      this.stream.write(`\r${this.line(counts)}\x1b[K`);
    } else if (counts.rows !== this.lastLogRows) {
      this.lastLogRows = counts.rows;
      this.logger.info({ ...counts }, this.line(counts));
    }
  }
}
