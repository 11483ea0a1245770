/**
 * Starts the Worker under test in one of the two modes every HTTP benchmark reports (DESIGN.md §9):
 *
 * - `wrangler`: `wrangler dev`, what a developer sees: a proxy worker on the public port in front of
 *   the app's workerd, with wrangler's Node process parsing the logs.
 * - `workerd`: the same Worker bundled by `wrangler deploy --dry-run` and served by workerd through
 *   Miniflare's API (wrangler's own Miniflare, hence the same workerd build), in a child process of
 *   its own (./workerd-host.ts): no proxy worker, no local observability. The closest to production.
 *
 * Both listen on a free 127.0.0.1 port, keep Durable Object storage and the Cache API's store in a
 * fresh temp folder on disk (so no state leaks between runs and `.wrangler/state` is left alone), get
 * their bindings from the caller (the user's `.dev.vars` is neither read nor written), and are torn
 * down as a whole process group on `stop()`, on {@link onCleanup}, or by the stack's reaper.
 *
 * `--worker-root DIR` builds the Worker from another checkout (e.g. a worktree of an older commit)
 * while the benchmark, its stack and its adapters stay this tree's: before and after figures from one
 * harness. The stack is then migrated with that checkout's migrations (./frontrow.ts).
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { getFreePort } from '../../scripts/stack/free-port.ts';
import { makeTempDir, removeTempDir, stopProcessGroup, trackChild, waitForExit } from '../../scripts/stack/processes.ts';
import { writeBenchConfig } from './bench-config.ts';
import { flagValue } from './cli.ts';
import { onCleanup } from './cleanup.ts';
import { groupCpuMs } from './cpu.ts';
import type { HostMessage, WorkerdHostOptions } from './workerd-host.ts';

export type WorkerMode = 'wrangler' | 'workerd';

export const WORKER_MODES: readonly WorkerMode[] = ['wrangler', 'workerd'];

/** `--mode wrangler|workerd|both` → the modes to run, in that order. @default both */
export function parseModes(flag: string | undefined): WorkerMode[] {
  if (flag === undefined || flag === 'both') return [...WORKER_MODES];
  if (flag === 'wrangler' || flag === 'workerd') return [flag];
  throw new Error(`--mode must be wrangler, workerd or both, got "${flag}"`);
}

/** Lines a runtime printed (warnings and errors: both modes run at log level warn). */
export class LogTally {
  private counted = 0;
  private readonly samples: string[] = [];
  /** Error lines are kept apart, so a flood of warnings cannot crowd them out of the samples. */
  private readonly errorSamples: string[] = [];
  private readonly keep: number;

  /** @param keep how many lines to keep as samples. @default 8 */
  constructor(keep = 8) {
    this.keep = keep;
  }

  /** Counts the lines of `stream`; keeps the first few since the last {@link reset}. */
  follow(stream: Readable | null): void {
    if (!stream) return;
    let pending = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        this.add(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
    });
  }

  add(line: string): void {
    // eslint-disable-next-line no-control-regex -- strips terminal colour codes
    const clean = line.replace(/\u001b\[[0-9;]*m/g, '').trimEnd();
    if (clean.trim() === '') return;
    this.counted++;
    const kept = /error/i.test(clean) ? this.errorSamples : this.samples;
    if (kept.length < this.keep) kept.push(clean.length > 400 ? `${clean.slice(0, 400)}…` : clean);
  }

  /** Forgets what was seen so far: call once the Worker is up, so start-up chatter is not counted. */
  reset(): void {
    this.counted = 0;
    this.samples.length = 0;
    this.errorSamples.length = 0;
  }

  get count(): number {
    return this.counted;
  }

  /** The first lines seen since the last reset, plus everything still held (start-up output on failure). */
  get first(): readonly string[] {
    return [...this.errorSamples, ...this.samples];
  }
}

/** A running Worker under test. */
export interface WorkerUnderTest {
  mode: WorkerMode;
  /** e.g. http://127.0.0.1:38211 */
  url: string;
  /** How it was started, for the report: flag or setting → value. Never holds secrets. */
  settings: Record<string, string>;
  /** Warning and error lines its runtime printed since start-up. */
  logs: LogTally;
  startupMs: number;
  /**
   * CPU ms used so far by its whole process group: wrangler's Node process and both its workerd
   * processes, or the Miniflare host and its workerd. NaN where `/proc` is missing.
   */
  cpuMs(): number;
  /** Idempotent; stops every process it started and removes its temp folders. */
  stop(): Promise<void>;
}

export interface StartWorkerOptions {
  mode: WorkerMode;
  /** Bindings (vars and secrets) for the Worker, laid over the config's `[vars]`. */
  vars: Record<string, string>;
  /** @default the repository root (two levels above this file) */
  root?: string;
  /**
   * @default the bench config generated from wrangler.toml by ./bench-config.ts: the app plus the
   * `/__bench/*` probe routes and the bench-only probe Durable Object (./probe-entry.ts).
   */
  configPath?: string;
  /** @default 60000 */
  startTimeoutMs?: number;
  log?: (message: string) => void;
}

const DEFAULT_ROOT = path.resolve(import.meta.dirname, '../..');

/** `--worker-root DIR`, absolute, or undefined: the checkout the Worker under test is built from. */
export function workerRootFlag(argv: readonly string[] = process.argv.slice(2)): string | undefined {
  const raw = flagValue('worker-root', argv);
  if (raw === undefined) return undefined;
  const root = path.resolve(raw);
  if (!fs.existsSync(path.join(root, 'wrangler.toml'))) throw new Error(`--worker-root ${raw}: no wrangler.toml there`);
  if (!fs.existsSync(path.join(root, 'node_modules/.bin/wrangler'))) throw new Error(`--worker-root ${raw}: no node_modules/.bin/wrangler there (cp -al the main node_modules in)`);
  return root;
}

/** "DIR at <commit> (<subject>)", or DIR alone when git cannot tell. */
function describeRoot(root: string): string {
  try {
    const head = execFileSync('git', ['-C', root, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return `${root} at ${head.length > 90 ? `${head.slice(0, 90)}…` : head}${dirty ? ' (with uncommitted changes)' : ''}`;
  } catch {
    return root;
  }
}

/** wrangler's JS entry, run with this very Node (the bin's shebang could pick an older system Node). */
function wranglerEntry(root: string): string {
  return fs.realpathSync(path.join(root, 'node_modules/.bin/wrangler'));
}

/** Environment for wrangler: no metrics, no download of the `Request.cf` object, no local tracing. */
const WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: 'false',
  CLOUDFLARE_CF_FETCH_ENABLED: 'false',
  X_LOCAL_OBSERVABILITY: 'false',
} as const;

/** A dotenv file, one KEY="value" per line (quoted, so a `#` is not a comment). */
function dotenv(vars: Record<string, string>): string {
  return `${Object.entries(vars)
    .map(([key, value]) => {
      if (/["\\\r\n]/.test(value)) throw new Error(`${key}: quotes, backslashes and newlines are not supported in an env file`);
      return `${key}="${value}"`;
    })
    .join('\n')}\n`;
}

/** Polls `url` until any HTTP response arrives; fails if `child` exits first or time runs out. */
async function waitForHttp(url: string, child: ChildProcess, timeoutMs: number, what: string, logs: LogTally): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.once('exit', () => (exited = true));
  for (;;) {
    if (exited) throw new Error(`${what} exited during start-up:\n${logs.first.join('\n')}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${what} did not answer within ${timeoutMs} ms:\n${logs.first.join('\n')}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

async function startWrangler(opts: Required<Omit<StartWorkerOptions, 'log'>>, log: (m: string) => void): Promise<WorkerUnderTest> {
  const t0 = performance.now();
  const persistDir = makeTempDir('frontrow-bench-wrangler-');
  const envFile = path.join(persistDir, 'bench.env');
  fs.writeFileSync(envFile, dotenv(opts.vars), { mode: 0o600 });
  const [port, inspectorPort] = await Promise.all([getFreePort(), getFreePort()]);
  const args = [
    'dev',
    '--config', opts.configPath,
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--inspector-port', String(inspectorPort),
    '--persist-to', path.join(persistDir, 'state'),
    // Given an env file, wrangler reads bindings from it and not from .dev.vars (left untouched).
    '--env-file', envFile,
    '--log-level', 'warn',
    '--show-interactive-dev-session=false',
  ];
  const child = spawn(process.execPath, [wranglerEntry(opts.root), ...args], {
    cwd: opts.root,
    // Own process group: killing wrangler alone leaves its workerd processes running (VERIFIED.md).
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...WRANGLER_ENV },
  });
  trackChild(child, 'SIGKILL', { group: true });
  const logs = new LogTally();
  logs.follow(child.stdout);
  logs.follow(child.stderr);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await stopProcessGroup(child, 5000);
      removeTempDir(persistDir);
    })());
  const unregister = onCleanup('wrangler dev', stop);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/__bench/ready`, child, opts.startTimeoutMs, 'wrangler dev', logs);
  } catch (error) {
    await unregister();
    throw error;
  }
  logs.reset();
  const startupMs = performance.now() - t0;
  log(`wrangler dev up on ${url} in ${(startupMs / 1000).toFixed(1)} s`);
  return {
    mode: 'wrangler',
    url,
    startupMs,
    logs,
    cpuMs: () => groupCpuMs(child.pid!),
    stop: unregister,
    settings: {
      command: `wrangler ${args.filter((arg) => arg !== envFile).join(' ').replace('--env-file', '--env-file <temp file>')}`,
      bindings: `${Object.keys(opts.vars).join(', ')} (from the temp env file; .dev.vars not read)`,
      environment: `${Object.entries(WRANGLER_ENV)
        .map(([key, value]) => `${key}=${value}`)
        .join(' ')} (X_LOCAL_EXPLORER left at wrangler's default)`,
      wrangler: packageVersion(path.join(opts.root, 'node_modules/wrangler/package.json')),
      storage: 'Durable Objects + Cache API in a temp folder on disk',
    },
  };
}

function packageVersion(file: string): string {
  try {
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    return '?';
  }
}

/** `wrangler deploy --dry-run --outdir`: the exact bundle a deploy would upload. */
async function bundle(opts: Required<Omit<StartWorkerOptions, 'log'>>, outDir: string): Promise<string> {
  const child = spawn(
    process.execPath,
    [wranglerEntry(opts.root), 'deploy', '--dry-run', '--config', opts.configPath, '--outdir', outDir],
    { cwd: opts.root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...WRANGLER_ENV, WRANGLER_LOG: 'warn' } },
  );
  const output: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const stopBundling = onCleanup('wrangler deploy --dry-run', () => {
    child.kill('SIGKILL');
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  await stopBundling();
  if (code !== 0) throw new Error(`wrangler deploy --dry-run failed (exit ${code}):\n${output.join('')}`);
  const modules = fs.readdirSync(outDir).filter((name) => /\.(m?js)$/.test(name));
  if (modules.length !== 1) throw new Error(`expected one module in ${outDir}, found ${modules.join(', ') || 'none'}`);
  return modules[0]!;
}

async function startWorkerd(opts: Required<Omit<StartWorkerOptions, 'log'>>, log: (m: string) => void): Promise<WorkerUnderTest> {
  const t0 = performance.now();
  const bundleDir = makeTempDir('frontrow-bench-bundle-');
  const persistDir = makeTempDir('frontrow-bench-workerd-');
  const removeDirs = (): void => {
    removeTempDir(persistDir);
    removeTempDir(bundleDir);
  };
  let child: ChildProcess | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (child) {
        if (child.connected) child.send({ type: 'stop' });
        await waitForExit(child, 5000);
        await stopProcessGroup(child, 2000); // the host if it hangs, and anything it left in its group
      }
      removeDirs();
    })());
  const unregister = onCleanup('workerd (Miniflare)', stop);
  const logs = new LogTally();
  try {
    const mainModule = await bundle(opts, bundleDir);
    const bundleMs = performance.now() - t0;
    child = spawn(process.execPath, [path.join(import.meta.dirname, 'workerd-host.ts')], {
      cwd: opts.root,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    trackChild(child, 'SIGKILL', { group: true });
    logs.follow(child.stdout);
    logs.follow(child.stderr);
    const host = child;
    const ready = await new Promise<Extract<HostMessage, { type: 'ready' }>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`workerd did not start within ${opts.startTimeoutMs} ms`)), opts.startTimeoutMs);
      host.on('message', (message: HostMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          resolve(message);
        } else if (message.type === 'error') {
          clearTimeout(timer);
          reject(new Error(`workerd failed to start: ${message.message}`));
        }
      });
      host.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`workerd host exited during start-up (${code}):\n${logs.first.join('\n')}`));
      });
      const options: WorkerdHostOptions = { root: opts.root, configPath: opts.configPath, bundleDir, mainModule, vars: opts.vars, persistDir };
      host.send({ type: 'start', options });
    });
    await waitForHttp(`${ready.url}/__bench/ready`, host, opts.startTimeoutMs, 'workerd', logs);
    logs.reset();
    const startupMs = performance.now() - t0;
    log(`workerd (Miniflare ${ready.versions.miniflare}) up on ${ready.url} in ${(startupMs / 1000).toFixed(1)} s (bundling ${(bundleMs / 1000).toFixed(1)} s)`);
    return {
      mode: 'workerd',
      url: ready.url,
      startupMs,
      logs,
      cpuMs: () => groupCpuMs(host.pid!),
      stop: unregister,
      settings: {
        command: `wrangler deploy --dry-run --config ${opts.configPath} --outdir <temp>; new Miniflare({ scriptPath: <temp>/${mainModule}, modules: true, … }) in bench/lib/workerd-host.ts`,
        bindings: `${Object.keys(opts.vars).join(', ')} (over the config's [vars])`,
        'durable objects': ready.durableObjects.join(', '),
        versions: `miniflare ${ready.versions.miniflare}, workerd ${ready.versions.workerd}`,
        logging: 'Worker log lines parsed by the host process; warn/error printed, the rest counted; no observability',
        storage: 'Durable Objects + Cache API in a temp folder on disk',
      },
    };
  } catch (error) {
    await unregister();
    throw error;
  }
}

/** Starts the Worker in `opts.mode`; see the file comment for what each mode is. */
export async function startWorker(opts: StartWorkerOptions): Promise<WorkerUnderTest> {
  const log = opts.log ?? ((): void => {});
  const root = opts.root ?? workerRootFlag() ?? DEFAULT_ROOT;
  const full = {
    mode: opts.mode,
    vars: opts.vars,
    root,
    configPath: opts.configPath ?? writeBenchConfig(root),
    startTimeoutMs: opts.startTimeoutMs ?? 60_000,
  };
  const worker = await (opts.mode === 'wrangler' ? startWrangler(full, log) : startWorkerd(full, log));
  worker.settings.source = describeRoot(root);
  if (opts.configPath === undefined) {
    worker.settings.config = `${full.configPath}: generated from wrangler.toml; main = bench/lib/probe-entry.ts (the app + POST /__bench/* probe routes), plus the bench-only BenchProbe Durable Object (SQLite)`;
  }
  return worker;
}
