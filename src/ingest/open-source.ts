/**
 * Picks the source adapter for a streamer input: scrape targets when `input.scrape` is set, else
 * files or stdin (`input.spec`).
 */
import type { RowSource } from '../ports/source.js';
import type { Logger } from '../util/logger.js';
import { fileSource } from './file-source.js';
import { scrapeSource, type ScrapeInput } from './scrape-source.js';

/** What the streamer reads: a file spec, or scrape targets. */
export interface SourceInput {
  /** File, directory of *.csv files, or `-` for stdin. */
  spec: string;
  follow?: boolean;
  loop?: boolean;
  /** Scrape these HTTP targets instead of reading `spec`. */
  scrape?: ScrapeInput;
}

/** The {@link RowSource} of `input`. */
export function openRowSource(
  input: SourceInput,
  clusterId: string,
  timestamps: 'original' | 'now',
  logger?: Logger,
): RowSource {
  if (input.scrape !== undefined)
    return scrapeSource(input.scrape, clusterId, logger?.child({ component: 'scrape' }));
  return fileSource({ spec: input.spec, clusterId, timestamps, follow: input.follow, loop: input.loop });
}
