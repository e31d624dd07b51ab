// Hash routing: every view has a URL (#/..., deep links survive a reload with no server help). A
// path deep link (/hosts/..., served index.html by the server's fallback) is turned into its hash form.
import { useEffect, useState } from 'preact/hooks';

/** A parsed route: path segments (decoded) and query parameters. */
export interface Route {
  parts: string[];
  query: URLSearchParams;
}

/** The current route, from location.hash. */
export function currentRoute(): Route {
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path = '/', search = ''] = hash.split('?', 2);
  const parts = path
    .split('/')
    .filter((p) => p !== '')
    .map((p) => decodeURIComponent(p));
  return { parts, query: new URLSearchParams(search) };
}

/** The href of a route: `href('clusters', c, 'hosts', h)` -> `#/clusters/c/hosts/h`. */
export function href(...parts: string[]): string {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

/** Replace the query of the current route (no new history entry). */
export function setQuery(changes: Record<string, string>): void {
  const { parts, query } = currentRoute();
  for (const [k, v] of Object.entries(changes)) query.set(k, v);
  history.replaceState(null, '', `${href(...parts)}?${query}`);
  dispatchEvent(new HashChangeEvent('hashchange'));
}

/** Turn a path deep link into the hash form, once at start. */
export function adoptPathLink(): void {
  if (location.pathname !== '/' && location.pathname !== '/index.html' && !location.hash) {
    history.replaceState(null, '', `/#${location.pathname}${location.search}`);
  }
}

/** The current route, re-rendering on navigation. */
export function useRoute(): Route {
  const [route, setRoute] = useState(currentRoute);
  useEffect(() => {
    const update = () => setRoute(currentRoute());
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}
