/**
 * The API token store (port in src/auth/token-store.ts) on the SQLite sample store's database:
 * table `api_tokens` (schema.ts, version 3), the same rules as PostgreSQL's: only a token's SHA-256
 * is kept, one valid token per name, revocation by id or name.
 */
import { NexusError } from '../../errors.js';
import { parseScopes } from '../../auth/scopes.js';
import { checkTokenName, type TokenRecord, type TokenStore } from '../../auth/token-store.js';
import { generateToken, hashToken, isTokenShaped } from '../../auth/tokens.js';

/** Runs statements (`all`: its rows) as one operation of the sample store, synchronously. */
export type TokenSql = <T>(
  operation: string,
  fn: (all: <R>(sql: string, values?: unknown[]) => R[]) => T,
) => Promise<T>;

interface TokenRow {
  id: number;
  name: string;
  scopes: string;
  created_ms: number;
  revoked_ms: number | null;
}

const COLUMNS = 'id, name, scopes, created_ms, revoked_ms';

function recordOf(row: TokenRow): TokenRecord {
  const record: TokenRecord = {
    id: String(row.id),
    name: row.name,
    scopes: parseScopes(JSON.parse(row.scopes) as string[]),
    createdAt: new Date(row.created_ms).toISOString(),
  };
  if (row.revoked_ms !== null) record.revokedAt = new Date(row.revoked_ms).toISOString();
  return record;
}

/** A {@link TokenStore} on the SQLite store's `api_tokens` table. */
export function sqliteTokenStore(sql: TokenSql): TokenStore {
  return {
    async create(name, scopes) {
      checkTokenName(name);
      const checked = parseScopes(scopes);
      const token = generateToken();
      const hash = hashToken(token);
      // The check and the insert in one synchronous operation: nothing comes between them.
      const rows = await sql('createToken', (all) => {
        if (all('SELECT id FROM api_tokens WHERE name = ? AND revoked_ms IS NULL', [name]).length > 0)
          throw new NexusError('BAD_REQUEST', `a valid token named "${name}" exists: revoke it first`, {
            details: { parameter: 'name' },
          });
        return all<TokenRow>(
          `INSERT INTO api_tokens (name, token_hash, scopes, created_ms) VALUES (?, ?, ?, ?) RETURNING ${COLUMNS}`,
          [name, new Uint8Array(hash), JSON.stringify(checked), Date.now()],
        );
      });
      return { token, record: recordOf(rows[0]!) };
    },
    async list(options = {}) {
      const where = options.includeRevoked ? '' : 'WHERE revoked_ms IS NULL';
      const rows = await sql('listTokens', (all) =>
        all<TokenRow>(`SELECT ${COLUMNS} FROM api_tokens ${where} ORDER BY id DESC`),
      );
      return rows.map(recordOf);
    },
    async revoke(idOrName) {
      // As the PostgreSQL store reads ids (names are never digits alone).
      const byId = /^[0-9]{1,18}$/.test(idOrName);
      const rows = await sql('revokeToken', (all) =>
        all<TokenRow>(
          `UPDATE api_tokens SET revoked_ms = ? WHERE revoked_ms IS NULL AND ${byId ? 'id' : 'name'} = ? RETURNING ${COLUMNS}`,
          [Date.now(), byId ? BigInt(idOrName) : idOrName],
        ),
      );
      return rows[0] === undefined ? undefined : recordOf(rows[0]);
    },
    async lookup(token) {
      if (!isTokenShaped(token)) return undefined;
      const rows = await sql('lookupToken', (all) =>
        all<TokenRow>(`SELECT ${COLUMNS} FROM api_tokens WHERE token_hash = ? AND revoked_ms IS NULL`, [
          new Uint8Array(hashToken(token)),
        ]),
      );
      return rows[0] === undefined ? undefined : recordOf(rows[0]);
    },
  };
}
