/**
 * Child process that runs the bundled Worker on workerd through Miniflare's API, without wrangler's
 * proxy worker and local observability in front of it (DESIGN.md §9). Started by `startWorker` in
 * ./worker.ts; not meant to be run by hand.
 *
 * Why a process of its own: Miniflare parses every line workerd writes to stdout (the app logs one
 * JSON line per request) in the Node process that owns it. Done inside the benchmark, that work would
 * compete with the load generator for the same event loop. Here it is as separate as wrangler's own
 * Node process is in `wrangler dev`.
 *
 * Protocol (Node IPC): the parent sends `{type: 'start', options}`; this answers `{type: 'ready', url,
 * versions}` or `{type: 'error', message}`. `{type: 'stop'}`, SIGTERM, or the parent going away
 * disposes Miniflare (which stops workerd) and exits.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as MiniflareModule from 'miniflare';
import type { V4MiniflareOptions } from 'miniflare';
import type * as WranglerModule from 'wrangler';

/** What the parent sends. Bindings hold secrets, which is why they travel over IPC, not argv. */
export interface WorkerdHostOptions {
  /** Project root: where wrangler.toml and node_modules/wrangler are. */
  root: string;
  /** wrangler config, relative to root. */
  configPath: string;
  /** `wrangler deploy --dry-run --outdir` output folder, and its entry module's file name in it. */
  bundleDir: string;
  mainModule: string;
  /** String bindings laid over the config's `[vars]`. */
  vars: Record<string, string>;
  /** Durable Object storage and the Cache API's store go here. */
  persistDir: string;
}

export type HostMessage =
  | { type: 'ready'; url: string; versions: { miniflare: string; workerd: string }; durableObjects: string[] }
  | { type: 'error'; message: string }
  | { type: 'stopped'; logLines: Record<string, number> };

/** The parts of wrangler's parsed config used here (its published types lean on a package not installed). */
interface WranglerConfig {
  name?: string;
  compatibility_date?: string;
  compatibility_flags: string[];
  vars: Record<string, unknown>;
  durable_objects: { bindings: { name: string; class_name: string }[] };
  migrations: { new_sqlite_classes?: string[] }[];
}

type ParentMessage = { type: 'start'; options: WorkerdHostOptions } | { type: 'stop' };

/** Sends a message to the parent; resolves once it is handed to the channel (or there is none). */
function send(message: HostMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    process.send(message, undefined, undefined, () => resolve());
  });
}

function packageVersion(packageJsonPath: string): string {
  try {
    return (JSON.parse(fs.readFileSync(packageJsonPath, 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    return '?';
  }
}

let dispose: (() => Promise<void>) | undefined;
let stopping: Promise<void> | undefined;
const logLines: Record<string, number> = {};

function stop(): Promise<void> {
  return (stopping ??= (async () => {
    try {
      await dispose?.();
    } finally {
      await send({ type: 'stopped', logLines });
      process.exit(0);
    }
  })());
}

/** Module types by file extension, as wrangler's default module rules have them. */
const MODULE_TYPES: Record<string, 'ESModule' | 'Text' | 'Data' | 'CompiledWasm'> = {
  '.js': 'ESModule',
  '.mjs': 'ESModule',
  '.html': 'Text',
  '.txt': 'Text',
  '.sql': 'Text',
  '.bin': 'Data',
  '.wasm': 'CompiledWasm',
};

/** The bundle's modules (source maps and unknown files left out), the main module first. */
function bundleModules(bundleDir: string, mainModule: string): { type: 'ESModule' | 'Text' | 'Data' | 'CompiledWasm'; path: string }[] {
  const names = fs.readdirSync(bundleDir, { recursive: true, encoding: 'utf8' }).filter((name) => MODULE_TYPES[path.extname(name)] !== undefined);
  const ordered = [mainModule, ...names.filter((name) => name !== mainModule).sort()];
  return ordered.map((name) => ({ type: MODULE_TYPES[path.extname(name)]!, path: path.join(bundleDir, name) }));
}

async function start(options: WorkerdHostOptions): Promise<void> {
  // wrangler's own copy of Miniflare (and with it the same workerd that `wrangler dev` runs), not
  // whichever copy happens to be hoisted to the top of node_modules.
  const wranglerRequire = createRequire(path.join(options.root, 'node_modules/wrangler/package.json'));
  const miniflarePath = wranglerRequire.resolve('miniflare');
  const miniflareRequire = createRequire(miniflarePath);
  const miniflare = (await import(miniflarePath)) as typeof MiniflareModule;
  const wrangler = (await import(wranglerRequire.resolve('wrangler'))) as typeof WranglerModule;

  const config = wrangler.unstable_readConfig({ config: path.join(options.root, options.configPath) }) as WranglerConfig;
  const sqliteClasses = new Set(config.migrations.flatMap((migration) => migration.new_sqlite_classes ?? []));
  const durableObjects = Object.fromEntries(
    config.durable_objects.bindings.map((binding) => [
      binding.name,
      { className: binding.class_name, useSQLite: sqliteClasses.has(binding.class_name) },
    ]),
  );
  const configVars = Object.fromEntries(
    Object.entries(config.vars).map(([key, value]) => [key, typeof value === 'string' ? value : JSON.stringify(value)]),
  );

  const mfOptions: V4MiniflareOptions = {
    name: config.name ?? 'worker',
    host: '127.0.0.1',
    port: 0,
    // Every module of the bundle by name, main first: the bundle imports non-JS modules beside it (the
    // fan page's HTML becomes `<hash>-index.html`, a Text module under wrangler's default rules).
    // Listed explicitly because Miniflare's v5 options have no `modulesRules` to convert to.
    modules: bundleModules(options.bundleDir, options.mainModule),
    modulesRoot: options.bundleDir,
    compatibilityDate: config.compatibility_date,
    compatibilityFlags: config.compatibility_flags,
    durableObjects,
    bindings: { ...configVars, ...options.vars },
    resourcePersistencePath: options.persistDir,
    // The placeholder `Request.cf`, without trying to download the real one (offline here).
    cf: false,
    log: new miniflare.Log(miniflare.LogLevel.WARN),
    // Count every line the Worker logs; print only warnings and errors.
    handleStructuredLogs: ({ level, message }) => {
      logLines[level] = (logLines[level] ?? 0) + 1;
      if (level === 'warn' || level === 'error') process.stderr.write(`[workerd:${level}] ${message}\n`);
    },
  };
  const mf = new miniflare.Miniflare(miniflare.convertV4MiniflareOptions(mfOptions));
  dispose = () => mf.dispose();
  const url = await mf.ready;
  await send({
    type: 'ready',
    url: url.origin,
    versions: {
      miniflare: packageVersion(path.join(path.dirname(miniflarePath), '../../package.json')),
      workerd: packageVersion(miniflareRequire.resolve('workerd/package.json')),
    },
    durableObjects: Object.entries(durableObjects).map(
      ([name, object]) => `${name} → ${object.className}${object.useSQLite ? ' (SQLite)' : ''}`,
    ),
  });
}

process.on('message', (message: ParentMessage) => {
  if (message.type === 'start') {
    start(message.options).catch((error: unknown) => {
      void send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }).then(stop);
    });
  } else if (message.type === 'stop') {
    void stop();
  }
});
process.on('disconnect', () => void stop());
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => void stop());
