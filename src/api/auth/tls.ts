/**
 * HTTPS for the API (TLS_CERT_FILE / TLS_KEY_FILE): the PEM files are read at start, then watched
 * (polled, so renames by cert-manager or certbot are seen too); when either changes, both are read
 * again and installed with `setSecureContext`, so new connections get the new certificate without
 * a restart. A pair that does not load (half-written, mismatched) keeps the previous one and is
 * logged; the next change tries again.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import { NexusError } from '../../errors.js';
import type { Logger } from '../../util/logger.js';

/** Where the API's certificate and key are. */
export interface TlsSettings {
  certFile: string;
  keyFile: string;
  /** How often the files are polled for changes (default 2000 ms). */
  reloadIntervalMs?: number;
}

/** A certificate chain and its private key, PEM. */
export interface TlsPair {
  cert: Buffer;
  key: Buffer;
}

/** Read and check the pair; throws CONFIG_INVALID naming the file or the mismatch. */
export function readTlsPair(settings: TlsSettings): TlsPair {
  const read = (file: string, variable: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new NexusError(
        'CONFIG_INVALID',
        `${variable}: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        { details: { variable } },
      );
    }
  };
  const pair = {
    cert: read(settings.certFile, 'TLS_CERT_FILE'),
    key: read(settings.keyFile, 'TLS_KEY_FILE'),
  };
  try {
    createSecureContext(pair);
  } catch (error) {
    throw new NexusError(
      'CONFIG_INVALID',
      `TLS_CERT_FILE / TLS_KEY_FILE: not a matching PEM certificate and key (${(error as Error).message})`,
      { details: { variable: 'TLS_CERT_FILE' } },
    );
  }
  return pair;
}

/** Reload the pair into `server` whenever a file changes; returns a function that stops watching. */
export function watchTlsPair(server: HttpsServer, settings: TlsSettings, log: Logger): () => void {
  const interval = settings.reloadIntervalMs ?? 2000;
  const reload = (): void => {
    try {
      server.setSecureContext(readTlsPair(settings));
      log.info({ certFile: settings.certFile }, 'TLS certificate reloaded');
    } catch (error) {
      log.warn({ err: error }, 'TLS certificate not reloaded; keeping the previous one');
    }
  };
  const onChange = (current: { mtimeMs: number }, previous: { mtimeMs: number }): void => {
    if (current.mtimeMs !== previous.mtimeMs) reload();
  };
  for (const file of [settings.certFile, settings.keyFile])
    watchFile(file, { interval, persistent: false }, onChange);
  return () => {
    for (const file of [settings.certFile, settings.keyFile]) unwatchFile(file, onChange);
  };
}
