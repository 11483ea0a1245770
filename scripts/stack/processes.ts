/**
 * Lifetime management for everything the stack spawns or creates on disk.
 *
 * A `stop()` that is never called (crash, Ctrl-C in a tool without signal handlers, SIGKILL) must
 * still not leave postgres/redis-server running or temp dirs behind. Two layers:
 *  1. A synchronous `process.on('exit')` hook signals every tracked child. It runs on normal exit and
 *     uncaught exceptions, but NOT when the process dies from a signal it does not handle or SIGKILL.
 *  2. A tiny detached "reaper" process that holds the read end of a pipe from us. Whatever way we
 *     die, the kernel closes the pipe; the reaper then signals the tracked pids, waits, SIGKILLs
 *     stragglers and deletes tracked directories. It exists only while something is tracked.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * pid (negative: process group) → signal sent when we die without a proper stop(): postgres wants
 * SIGQUIT (immediate shutdown that still releases its shared memory), redis-server is fine with SIGKILL.
 */
const trackedPids = new Map<number, NodeJS.Signals>();
const trackedDirs = new Set<string>();
let reaper: ChildProcess | undefined;
let exitHookInstalled = false;

// Plain JS run with `node -e`. Ignores the terminal's SIGINT/SIGHUP so a Ctrl-C that kills us does not
// kill it before it has cleaned up.
const REAPER_SOURCE = `
process.title = 'frontrow-stack-reaper';
const fs = require('node:fs');
const pids = new Map(); const dirs = new Set();
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => {});
const hasProc = fs.existsSync('/proc/self/stat');
// A negative pid is a process group. Zombies count as gone: orphans are reaped by init, which in some
// containers never happens promptly.
const alive = (pid) => {
  try { process.kill(pid, 0); } catch { return false; }
  if (!hasProc) return true;
  const pids = pid > 0 ? [String(pid)] : fs.readdirSync('/proc').filter((n) => /^\\d+$/.test(n));
  return pids.some((p) => {
    try {
      const st = fs.readFileSync('/proc/' + p + '/stat', 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      return f[0] !== 'Z' && (pid > 0 || Number(f[2]) === -pid);
    } catch { return false; }
  });
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d; let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    const sp = line.indexOf(' '); const cmd = line.slice(0, sp); const arg = line.slice(sp + 1);
    if (cmd === 'pid') { const [p, sig] = arg.split(' '); pids.set(Number(p), sig); }
    else if (cmd === 'unpid') pids.delete(Number(arg));
    else if (cmd === 'dir') dirs.add(arg);
    else if (cmd === 'undir') dirs.delete(arg);
  }
});
let done = false;
const cleanup = async () => {
  if (done) return; done = true;
  for (const [pid, sig] of pids) { try { process.kill(pid, sig); } catch {} }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && [...pids.keys()].some(alive)) await sleep(50);
  for (const pid of pids.keys()) { try { process.kill(pid, 'SIGKILL'); } catch {} }
  if (pids.size > 0) await sleep(100);
  for (const d of dirs) { try { fs.rmSync(d, { recursive: true, force: true, maxRetries: 5 }); } catch {} }
  process.exit(0);
};
process.stdin.on('end', cleanup); process.stdin.on('close', cleanup); process.stdin.on('error', cleanup);
`;

function tellReaper(line: string): void {
  if (!reaper) {
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // e.g. a loader injected by a test runner has no business in the reaper
    reaper = spawn(process.execPath, ['-e', REAPER_SOURCE], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true, // own process group: a signal to our group (Ctrl-C, kill -- -pgid) spares it
      env,
    });
    reaper.on('error', () => {}); // best effort: layer 1 still works without it
    reaper.stdin?.on('error', () => {});
    // Neither the process nor its pipe may keep our event loop alive.
    reaper.unref();
    const stdin = reaper.stdin as (NodeJS.WritableStream & { unref?: () => void }) | null;
    stdin?.unref?.();
  }
  reaper.stdin?.write(`${line}\n`);
}

function retireReaperIfIdle(): void {
  if (reaper && trackedPids.size === 0 && trackedDirs.size === 0) {
    reaper.stdin?.end(); // EOF with nothing tracked: it exits at once
    reaper = undefined;
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [pid, signal] of trackedPids) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
    // Directories are left to the reaper: postgres may still be writing while it shuts down.
  });
}

/**
 * Registers a spawned child so it is killed with `emergencySignal` if we exit without stopping it.
 * With `group: true` the signal goes to the child's whole process group (the child must have been
 * spawned with `detached: true`), e.g. wrangler and the workerd processes it starts.
 * Untracks itself automatically when the child exits.
 */
export function trackChild(child: ChildProcess, emergencySignal: NodeJS.Signals, opts: { group?: boolean } = {}): void {
  if (child.pid === undefined) return;
  const target = opts.group ? -child.pid : child.pid;
  installExitHook();
  trackedPids.set(target, emergencySignal);
  tellReaper(`pid ${target} ${emergencySignal}`);
  // A group may outlive its leader, so it stays tracked until stopProcessGroup() has seen it empty.
  if (opts.group) return;
  child.once('exit', () => untrack(target));
}

function untrack(target: number): void {
  if (trackedPids.delete(target) && reaper) tellReaper(`unpid ${target}`);
  retireReaperIfIdle();
}

/** Creates a fresh private temp dir that is deleted even if we die without cleaning up. */
export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  trackedDirs.add(dir);
  tellReaper(`dir ${dir}`);
  return dir;
}

/** Deletes a dir made by {@link makeTempDir} and stops tracking it. Safe to call twice. */
export function removeTempDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  if (trackedDirs.delete(dir) && reaper) tellReaper(`undir ${dir}`);
  retireReaperIfIdle();
}

/** Whether the child has already exited (or was never started). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null || child.pid === undefined;
}

/** Resolves when the child has exited, or with `false` after `timeoutMs`. */
export function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * Stops a child: `signal` first, SIGKILL if it has not exited after `graceMs`. Resolves once it is gone.
 */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (hasExited(child)) return;
  child.kill(signal);
  if (await waitForExit(child, graceMs)) return;
  child.kill('SIGKILL');
  await waitForExit(child, 5000);
}

/**
 * Whether any live (non-zombie) process is left in process group `pgid`. Zombies are skipped because
 * orphans are reaped by init, which in some containers never happens promptly.
 */
export function isGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return true; // no /proc (macOS): trust kill(0)
  }
  return entries.some((pid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the parenthesised command name: state ppid pgrp …
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(pgrp) === pgid && state !== 'Z';
    } catch {
      return false; // exited while we looked
    }
  });
}

/**
 * Stops a child spawned with `detached: true` together with everything in its process group:
 * SIGTERM to the group, SIGKILL after `graceMs` if anything is left. Resolves once the group is empty.
 */
export async function stopProcessGroup(child: ChildProcess, graceMs: number): Promise<void> {
  const pgid = child.pid;
  if (pgid === undefined) return;
  const waitEmpty = async (ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (isGroupAlive(pgid)) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return true;
  };
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pgid, sig);
    } catch {
      // group already empty
    }
  };
  signal('SIGTERM');
  if (!(await waitEmpty(graceMs))) {
    signal('SIGKILL');
    await waitEmpty(2000);
  }
  untrack(-pgid);
}
