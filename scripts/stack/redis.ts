/**
 * A throwaway redis-server: no persistence, bound to 127.0.0.1 on a free port, running in a temp dir
 * as our own foreground child.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { findBinary } from './find-binary.ts';
import { getFreePort } from './free-port.ts';
import { makeTempDir, removeTempDir, stopChild, trackChild } from './processes.ts';
import { RespConnection } from './resp.ts';

/** Where redis-server usually lives when it is not on PATH. */
export const REDIS_BIN_DIRS: readonly string[] = ['/usr/bin', '/usr/local/bin', '/opt/homebrew/bin', '/usr/sbin'];

/** A running local redis-server. */
export interface LocalRedis {
  host: string;
  port: number;
  stop(): Promise<void>;
  /** Fault tests only: freezes the process (SIGSTOP). Its clock runs on, so leases lapse meanwhile. */
  pause(): Promise<void>;
  /** Thaws a paused process (SIGCONT). */
  resume(): Promise<void>;
}

/** Full path of redis-server, or undefined if it is not installed. */
export function findRedisServer(): string | undefined {
  return findBinary('redis-server', REDIS_BIN_DIRS);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForPing(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('redis-server exited during startup');
    try {
      const connection = await RespConnection.connect('127.0.0.1', port);
      try {
        const reply = await connection.send(['PING']);
        if (reply === 'PONG') return;
        lastError = reply; // e.g. -LOADING
      } finally {
        connection.close();
      }
    } catch (error) {
      lastError = error;
    }
    await sleep(25);
  }
  throw new Error(`redis-server did not answer PING within ${timeoutMs} ms: ${String(lastError)}`);
}

/** Starts redis-server on 127.0.0.1:<free port>; `stop()` terminates it and removes its temp dir. */
export async function startRedisServer(binary: string, log: (msg: string) => void): Promise<LocalRedis> {
  const t0 = Date.now();
  const tmp = makeTempDir('frontrow-redis-');
  let child: ChildProcess | undefined;
  const signal = (name: NodeJS.Signals): void => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill(name);
  };
  const cleanup = async (): Promise<void> => {
    signal('SIGCONT'); // a paused server would only take SIGTERM once thawed
    if (child) await stopChild(child, 'SIGTERM', 5000);
    removeTempDir(tmp);
  };
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await getFreePort();
      // No config file: every setting is on the command line, so a system redis.conf never applies.
      child = spawn(
        binary,
        [
          '--port', String(port),
          '--bind', '127.0.0.1',
          '--save', '',
          '--appendonly', 'no',
          '--dir', tmp,
          '--daemonize', 'no',
          '--loglevel', 'warning',
        ],
        { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      trackChild(child, 'SIGKILL'); // nothing to flush: SIGKILL is a safe emergency stop
      let output = '';
      const collect = (chunk: Buffer): void => {
        output = (output + chunk.toString('utf8')).slice(-4000);
      };
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      try {
        await waitForPing(child, port, 10_000);
      } catch (error) {
        await stopChild(child, 'SIGKILL', 1000);
        if (attempt < 3 && /in use|could not create server tcp listening socket/i.test(output)) continue;
        throw new Error(`${(error as Error).message}\n${output.trim()}`);
      }
      log(`redis: ready on 127.0.0.1:${port} in ${Date.now() - t0} ms`);
      let stopping: Promise<void> | undefined;
      return {
        host: '127.0.0.1',
        port,
        stop: () => (stopping ??= cleanup()),
        pause: () => {
          if (!stopping) signal('SIGSTOP');
          return Promise.resolve();
        },
        resume: () => {
          signal('SIGCONT');
          return Promise.resolve();
        },
      };
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
}
