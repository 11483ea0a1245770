/**
 * The fan page's few routes, on the History API: the Worker serves the same HTML for each of them
 * (src/routes/pages.ts), so a link can be shared or reloaded. Links to these paths are followed in
 * the page; every other link (the operator page, /docs) loads as usual.
 */
import { useEffect, useState } from 'hono/jsx/dom';

export type Route = { name: 'home' } | { name: 'concert'; id: string } | { name: 'tickets' } | { name: 'unknown' };

/** The route of a path; `unknown` for one the page does not know (the Worker only serves known ones). */
export function parseRoute(pathname: string): Route {
  if (pathname === '/' || pathname === '/index.html') return { name: 'home' };
  if (pathname === '/tickets') return { name: 'tickets' };
  const concert = /^\/c\/([^/]+)$/.exec(pathname);
  if (concert?.[1]) return { name: 'concert', id: decodeURIComponent(concert[1]) };
  return { name: 'unknown' };
}

const listeners = new Set<() => void>();

/** Goes to `path` in the page, as a followed link would. */
export function navigate(path: string): void {
  if (path !== location.pathname) history.pushState(null, '', path);
  window.scrollTo(0, 0);
  for (const listener of listeners) listener();
}

/** Follows same-page links without a reload: plain left clicks on `<a href>` to a route above. */
function onClick(event: MouseEvent): void {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = (event.target as Element | null)?.closest('a');
  if (!link || link.target || link.origin !== location.origin) return;
  if (parseRoute(link.pathname).name === 'unknown') return;
  event.preventDefault();
  navigate(link.pathname);
}

/** The current route, updated on link clicks, `navigate` and the back button. */
export function useRoute(): Route {
  const [route, setRoute] = useState(parseRoute(location.pathname));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.pathname));
    listeners.add(update);
    window.addEventListener('popstate', update);
    document.addEventListener('click', onClick);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
      document.removeEventListener('click', onClick);
    };
  }, []);
  return route;
}
