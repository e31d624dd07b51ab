/** pino logger factory: one root logger, a child per component, credentials redacted. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Create the root logger at `level`, writing JSON to stderr (stdout stays free for command output). */
export function createLogger(level: string, name = 'nexus-telemetry'): Logger {
  return pino(
    {
      name,
      level,
      redact: {
        paths: [
          'password',
          '*.password',
          'DB_PASSWORD',
          '*.DB_PASSWORD',
          'connectionString',
          '*.connectionString',
        ],
        censor: '[redacted]',
      },
    },
    pino.destination(2),
  );
}
