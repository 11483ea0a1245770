import fanPage from '../../public/index.html';
import type { App } from '../types.ts';

/**
 * Paths the fan page routes on the client (web/fan.tsx): a concert's page and "My tickets". The
 * static assets answer only for files that exist, so these reach the Worker, which answers with the
 * same HTML as `/` (bundled as text by wrangler's default `*.html` rule): a shared or reloaded link
 * opens the right view, and every API path keeps its own 404.
 */
export const FAN_PAGE_PATHS = ['/c/:id', '/tickets'] as const;

/** Serves the fan page's HTML for its client-side routes. */
export function registerPageRoutes(app: App): void {
  for (const path of FAN_PAGE_PATHS) app.get(path, (c) => c.html(fanPage));
}
