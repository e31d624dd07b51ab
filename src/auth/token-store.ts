/**
 * The API token store: the port ({@link TokenStore}) and its adapter on the sample store's SQL
 * database (table `api_tokens`, migration 4), so every API process on one database sees the same
 * tokens and a revocation at once. A token is shown once, when created; only its SHA-256 is kept.
 */
import { NexusError } from '../errors.js';
import type { SampleStore } from '../ports/sample-store.js';
import { sqlState, UNIQUE_VIOLATION, type SqlExecutor } from '../storage/sql-executor.js';
import { parseScopes, type Scope } from './scopes.js';
import { generateToken, hashToken, isTokenShaped } from './tokens.js';

/** A stored token, without its secret. */
export interface TokenRecord {
  /** Stable id (decimal text). */
  id: string;
  name: string;
  scopes: Scope[];
  /** RFC 3339. */
  createdAt: string;
  /** RFC 3339; absent while the token is valid. */
  revokedAt?: string;
}

/** Where API tokens live. */
export interface TokenStore {
  /** Create a token; the result holds its text, which is never stored or shown again. */
  create(name: string, scopes: readonly Scope[]): Promise<{ token: string; record: TokenRecord }>;
  /** Every token, newest first; revoked ones only when asked. */
  list(options?: { includeRevoked?: boolean }): Promise<TokenRecord[]>;
  /** Revoke the valid token with this id or name; resolves to the record, or undefined if none. */
  revoke(idOrName: string): Promise<TokenRecord | undefined>;
  /** The valid (unrevoked) token with this text, or undefined. */
  lookup(token: string): Promise<TokenRecord | undefined>;
}

/** Runs SQL on a database, mapping errors (see SqlSampleStore.withSql). */
export type SqlRunner = <T>(operation: string, fn: (db: SqlExecutor) => Promise<T>) => Promise<T>;

/** Token names: what an operator types on the command line. */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

interface TokenRow {
  id: string | number;
  name: string;
  scopes: string[];
  created_at: Date | string;
  revoked_at: Date | string | null;
}

const COLUMNS = 'id::text AS id, name, scopes, created_at, revoked_at';

function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

function recordOf(row: TokenRow): TokenRecord {
  const record: TokenRecord = {
    id: String(row.id),
    name: row.name,
    scopes: parseScopes(row.scopes),
    createdAt: iso(row.created_at),
  };
  if (row.revoked_at !== null) record.revokedAt = iso(row.revoked_at);
  return record;
}

/** Check a token name; throws BAD_REQUEST naming the rule. */
export function checkTokenName(name: string): void {
  if (!NAME_PATTERN.test(name))
    throw new NexusError(
      'BAD_REQUEST',
      'a token name is 1-64 characters: letters, digits, ".", "_" or "-", starting with a letter or digit',
      { details: { parameter: 'name' } },
    );
  // `revoke` reads digits as an id: a name of digits alone would revoke another token.
  if (/^[0-9]+$/.test(name))
    throw new NexusError('BAD_REQUEST', 'a token name must not be digits alone (those name token ids)', {
      details: { parameter: 'name' },
    });
}

/** A {@link TokenStore} on the `api_tokens` table of a migrated sample-store database. */
export function sqlTokenStore(run: SqlRunner): TokenStore {
  return {
    async create(name, scopes) {
      checkTokenName(name);
      const checked = parseScopes(scopes);
      const token = generateToken();
      try {
        const { rows } = await run('createToken', (db) =>
          db.query<TokenRow>(
            `INSERT INTO api_tokens (name, token_hash, scopes) VALUES ($1, $2, $3::text[]) RETURNING ${COLUMNS}`,
            [name, hashToken(token), `{${checked.join(',')}}`],
          ),
        );
        return { token, record: recordOf(rows[0]!) };
      } catch (error) {
        if (sqlState(error) === UNIQUE_VIOLATION || sqlState(errorCause(error)) === UNIQUE_VIOLATION)
          throw new NexusError('BAD_REQUEST', `a valid token named "${name}" exists: revoke it first`, {
            details: { parameter: 'name' },
          });
        throw error;
      }
    },
    async list(options = {}) {
      const where = options.includeRevoked ? '' : 'WHERE revoked_at IS NULL';
      const { rows } = await run('listTokens', (db) =>
        db.query<TokenRow>(`SELECT ${COLUMNS} FROM api_tokens ${where} ORDER BY id DESC`),
      );
      return rows.map(recordOf);
    },
    async revoke(idOrName) {
      const byId = /^[0-9]{1,18}$/.test(idOrName);
      const { rows } = await run('revokeToken', (db) =>
        db.query<TokenRow>(
          `UPDATE api_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND ${byId ? 'id = $1::bigint' : 'name = $1'} RETURNING ${COLUMNS}`,
          [idOrName],
        ),
      );
      return rows[0] === undefined ? undefined : recordOf(rows[0]);
    },
    async lookup(token) {
      if (!isTokenShaped(token)) return undefined;
      const { rows } = await run('lookupToken', (db) =>
        db.query<TokenRow>(`SELECT ${COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL`, [
          hashToken(token),
        ]),
      );
      return rows[0] === undefined ? undefined : recordOf(rows[0]);
    },
  };
}

function errorCause(error: unknown): unknown {
  return error instanceof Error ? error.cause : undefined;
}

/** A sample store that lets other modules use its SQL database (the SQL adapters do). */
interface SqlCapableStore {
  withSql: SqlRunner;
}

/** A sample store that keeps its own token store (the SQLite store). */
interface TokenKeepingStore {
  tokenStore(): TokenStore;
}

/** The token store in `store`'s database, or undefined when the store has no database for it. */
export function tokenStoreOf(store: SampleStore): TokenStore | undefined {
  const keeping = store as SampleStore & Partial<TokenKeepingStore>;
  if (typeof keeping.tokenStore === 'function') return keeping.tokenStore();
  const candidate = store as SampleStore & Partial<SqlCapableStore>;
  if (typeof candidate.withSql !== 'function') return undefined;
  const sql = candidate as SampleStore & SqlCapableStore;
  return sqlTokenStore((operation, fn) => sql.withSql(operation, fn));
}
