/**
 * Scrape source (an adapter of the source port, src/ports/source.ts): scrapes HTTP targets on an
 * interval (src/ingest/scrape.ts) and yields each scrape as one chunk named by its target URL, closed
 * with `end.presence` (the GPUs the scrape exposed; none when it failed). A live target has no
 * position: chunks carry no checkpoint, and a restarted read scrapes again at the next interval.
 * Failed scrapes are logged at warn, good ones at debug.
 */
import type { RowSource, SourceChunk, SourceReadOptions } from '../ports/source.js';
import type { Logger } from '../util/logger.js';
import { scrapeTargets, type ScrapeOutcome, type ScrapeTargetBoard } from './scrape.js';

/** What to scrape, and how. */
export interface ScrapeInput {
  targets: readonly string[];
  intervalMs: number;
  timeoutMs: number;
  bodyLimitBytes: number;
  /** Where each target's health is recorded. */
  board?: ScrapeTargetBoard;
  /** Scrape each target this many times, then end (default: until aborted). */
  rounds?: number;
}

/** A {@link RowSource} over scrape targets. */
export function scrapeSource(scrape: ScrapeInput, clusterId: string, logger?: Logger): RowSource {
  const count = scrape.board?.targets?.length ?? scrape.targets.length;
  return {
    description: `${count} scrape target${count === 1 ? '' : 's'}`,
    read: (read) => readScrapes(scrape, clusterId, read ?? {}, logger),
  };
}

async function* readScrapes(
  scrape: ScrapeInput,
  clusterId: string,
  read: SourceReadOptions,
  logger: Logger | undefined,
): AsyncGenerator<SourceChunk> {
  const onScrape = (outcome: ScrapeOutcome): void => {
    if (logger === undefined) return;
    const fields = {
      target: outcome.url,
      health: outcome.health,
      samples: outcome.samples,
      seconds: Number(outcome.durationSeconds.toFixed(3)),
    };
    if (outcome.health === 'down') logger.warn({ ...fields, reason: outcome.error }, 'scrape failed');
    else logger.debug(fields, 'scraped');
  };
  for await (const { source, rows, presence } of scrapeTargets({
    targets: scrape.targets,
    intervalMs: scrape.intervalMs,
    timeoutMs: scrape.timeoutMs,
    bodyLimitBytes: scrape.bodyLimitBytes,
    board: scrape.board,
    rounds: scrape.rounds,
    clusterId,
    signal: read.signal,
    onScrape,
  })) {
    yield { source, rows, end: { presence } };
  }
}
