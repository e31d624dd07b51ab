/**
 * GPU-hour prices per model (ANALYTICS_PRICES): `H100=2.5,A100=1.2,default=1`. A model takes the
 * price of the longest key that its `modelName` contains (case-insensitive), else `default`
 * (0 when no default is set).
 */
import { NexusError } from '../errors.js';

/** Price per GPU-hour by model key, plus the fallback. */
export interface PriceTable {
  /** Keys as written, with their prices. */
  byModel: ReadonlyArray<readonly [string, number]>;
  fallback: number;
}

/**
 * Parse `KEY=price,...`.
 * @throws NexusError('CONFIG_INVALID') on a malformed item or a negative or non-numeric price
 */
export function parsePrices(text: string): PriceTable {
  const byModel: [string, number][] = [];
  let fallback = 0;
  for (const item of text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const eq = item.lastIndexOf('=');
    const key = eq > 0 ? item.slice(0, eq).trim() : '';
    const price = Number(eq > 0 ? item.slice(eq + 1).trim() : NaN);
    if (key === '' || !Number.isFinite(price) || price < 0)
      throw new NexusError(
        'CONFIG_INVALID',
        `ANALYTICS_PRICES: "${item}" is not <model>=<price per GPU-hour>`,
      );
    if (key.toLowerCase() === 'default') fallback = price;
    else byModel.push([key, price]);
  }
  byModel.sort((a, b) => b[0].length - a[0].length);
  return { byModel, fallback };
}

/** The price per GPU-hour of `modelName`. */
export function priceOf(table: PriceTable, modelName: string): number {
  const name = modelName.toLowerCase();
  for (const [key, price] of table.byModel) if (name.includes(key.toLowerCase())) return price;
  return table.fallback;
}
