// The API token (only needed when the server has AUTH on): kept in localStorage, never in the URL.
const KEY = 'nexus-telemetry.token';

/** The stored bearer token, or '' when none. */
export function getToken(): string {
  try {
    return localStorage.getItem(KEY) ?? '';
  } catch {
    return '';
  }
}

/** Store (or with '' forget) the bearer token. */
export function setToken(token: string): void {
  if (token) localStorage.setItem(KEY, token);
  else localStorage.removeItem(KEY);
}
