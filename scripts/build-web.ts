/**
 * Builds the web front into the Worker's static assets (`[assets]` in wrangler.toml, folder public/):
 * the pages' scripts from web/ into public/app/, and Swagger UI's files from the `swagger-ui-dist`
 * package into public/vendor/ so `/docs` works without internet access. The HTML and CSS in public/
 * are committed as they are; what this writes is git-ignored and rebuilt by `npm run dev` (watching
 * web/), the browser tests' setup and `npm run build`.
 *
 * Usage: `node scripts/build-web.ts [--watch]`.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as esbuild from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');

/** Page entry points in web/, each bundled to public/app/<name>.js. */
const ENTRIES = ['fan', 'operator'] as const;

/** The only Swagger UI files the `/docs` page loads (src/app.ts points @hono/swagger-ui at them). */
const SWAGGER_FILES = ['swagger-ui.css', 'swagger-ui-bundle.js'] as const;

function copySwaggerUi(): void {
  const dist = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
  const target = path.join(root, 'public/vendor/swagger-ui-dist');
  fs.mkdirSync(target, { recursive: true });
  for (const file of SWAGGER_FILES) fs.copyFileSync(path.join(dist, file), path.join(target, file));
}

function options(): esbuild.BuildOptions {
  return {
    entryPoints: ENTRIES.map((name) => ({ in: path.join(root, `web/${name}.tsx`), out: name })),
    outdir: path.join(root, 'public/app'),
    bundle: true,
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: 'linked',
    jsx: 'automatic',
    jsxImportSource: 'hono/jsx/dom',
    logLevel: 'warning',
  };
}

/**
 * Builds once, or keeps rebuilding on every change under web/ when `watch` is set.
 * @returns a function that stops watching (a no-op after a one-off build).
 */
export async function buildWeb({ watch = false }: { watch?: boolean } = {}): Promise<() => Promise<void>> {
  copySwaggerUi();
  if (!watch) {
    await esbuild.build(options());
    return async () => {};
  }
  const context = await esbuild.context(options());
  await context.rebuild();
  await context.watch();
  return () => context.dispose();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const watch = process.argv.includes('--watch');
  await buildWeb({ watch });
  console.log(watch ? 'web: built; watching web/ for changes' : 'web: built into public/app and public/vendor');
}
