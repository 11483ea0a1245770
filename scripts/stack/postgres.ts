/**
 * A throwaway PostgreSQL cluster: initdb into a temp dir, run `postgres` in the foreground as our own
 * child (not daemonized through pg_ctl) so that stopping it, or killing it when we die, is a plain signal.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { findBinaryDir } from './find-binary.ts';
import { getFreePort } from './free-port.ts';
import { hasExited, makeTempDir, removeTempDir, stopChild, trackChild } from './processes.ts';

const execFileAsync = promisify(execFile);

/** Where PostgreSQL server binaries usually live when they are not on PATH (`*` = version, highest first). */
export const POSTGRES_BIN_DIRS: readonly string[] = [
  '/usr/lib/postgresql/*/bin', // Debian / Ubuntu
  '/opt/homebrew/opt/postgresql*/bin', // Homebrew, Apple silicon
  '/usr/local/opt/postgresql*/bin', // Homebrew, Intel
  '/usr/local/pgsql/bin', // source install
  '/usr/pgsql-*/bin', // RHEL / PGDG
];

/** The database every stack creates; the name production uses too. */
export const DATABASE_NAME = 'frontrow';

/** A running local PostgreSQL (cluster or PGlite). */
export interface LocalPostgres {
  /** postgres://postgres@127.0.0.1:PORT/frontrow */
  url: string;
  host: string;
  port: number;
  stop(): Promise<void>;
  /**
   * Fault tests only (cluster only): shuts the server down (fast shutdown: every connection is
   * closed) and keeps its data, so `resume()` brings the same database back on the same port.
   */
  halt?(): Promise<void>;
  /** Starts a halted server again and resolves once it accepts queries. */
  resume?(): Promise<void>;
}

/** Finds a directory holding both `initdb` and `postgres`, or undefined if PostgreSQL is not installed. */
export function findPostgresBinDir(): string | undefined {
  return findBinaryDir(['initdb', 'postgres'], POSTGRES_BIN_DIRS);
}

/** initdb and postgres refuse to run as root; as root we run them as the `postgres` system user. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(
      'Running as root, but there is no `postgres` user to run the PostgreSQL server as ' +
        '(PostgreSQL refuses to run as root). Create one (`useradd --system postgres`) or run as a normal user.',
    );
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Keeps the last lines a child wrote, for error messages. */
function captureTail(child: ChildProcess, maxLines = 40): () => string {
  const lines: string[] = [];
  const onData = (chunk: Buffer): void => {
    lines.push(...chunk.toString('utf8').split('\n').filter((line) => line.trim() !== ''));
    if (lines.length > maxLines) lines.splice(0, lines.length - maxLines);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return () => lines.join('\n');
}

/** Polls until the server accepts a query; fails fast if the child exits. */
async function waitUntilReady(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error('postgres exited during startup');
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('select 1');
      return;
    } catch (error) {
      lastError = error; // ECONNREFUSED or "the database system is starting up"
    } finally {
      await client.end().catch(() => {});
    }
    await sleep(50);
  }
  throw new Error(`postgres did not become ready within ${timeoutMs} ms: ${String(lastError)}`);
}

/**
 * initdb's a throwaway cluster in a temp dir, starts it on 127.0.0.1:<free port>, creates the
 * `frontrow` database. `stop()` does a fast shutdown and deletes the temp dir.
 */
export async function startPostgresCluster(binDir: string, log: (msg: string) => void, extraEnv: Record<string, string> = {}): Promise<LocalPostgres> {
  const user = serverUser();
  const tmp = makeTempDir('frontrow-pg-');
  let child: ChildProcess | undefined;
  const cleanup = async (): Promise<void> => {
    if (child) await stopChild(child, 'SIGINT', 10_000); // SIGINT = fast shutdown
    removeTempDir(tmp);
  };
  try {
    if (user) fs.chownSync(tmp, user.uid, user.gid);
    const dataDir = path.join(tmp, 'data');
    const env = { ...process.env, LC_ALL: 'C', LANG: 'C', ...extraEnv }; // C: avoid failing on a locale the box lacks
    const t0 = Date.now();
    await execFileAsync(
      path.join(binDir, 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'],
      { cwd: tmp, env, ...user },
    ).catch((error: { stderr?: string; message: string }) => {
      throw new Error(`initdb failed: ${error.stderr?.trim() || error.message}`);
    });
    log(`postgres: initdb in ${Date.now() - t0} ms (${binDir})`);

    /** Runs the server on `port` until it accepts queries. */
    const launch = async (port: number): Promise<void> => {
      const started = spawn(
        path.join(binDir, 'postgres'),
        [
          '-D', dataDir,
          '-c', 'listen_addresses=127.0.0.1',
          '-c', `port=${port}`,
          '-c', `unix_socket_directories=${tmp}`, // never the system's /var/run/postgresql
          '-c', 'max_connections=200',
          // Durability is pointless for a throwaway cluster and costs a lot of test time.
          '-c', 'fsync=off',
          '-c', 'synchronous_commit=off',
          '-c', 'full_page_writes=off',
          '-c', 'jit=off',
        ],
        { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'], ...user },
      );
      child = started;
      trackChild(started, 'SIGQUIT');
      const output = captureTail(started);
      try {
        await waitUntilReady(started, port, 30_000);
      } catch (error) {
        await stopChild(started, 'SIGQUIT', 5000);
        (error as Error & { output?: string }).output = output();
        throw error;
      }
    };

    // A free port can be taken between probing and binding; retry with a new one in that case.
    for (let attempt = 1; ; attempt++) {
      const port = await getFreePort();
      try {
        await launch(port);
      } catch (error) {
        const output = (error as Error & { output?: string }).output ?? '';
        if (attempt < 3 && /could not bind|already in use/i.test(output)) continue;
        throw new Error(`${(error as Error).message}\n${output}`);
      }

      const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
      await admin.connect();
      try {
        await admin.query(`create database ${DATABASE_NAME}`);
      } finally {
        await admin.end();
      }
      log(`postgres: ready on 127.0.0.1:${port} in ${Date.now() - t0} ms`);
      let stopping: Promise<void> | undefined;
      return {
        url: `postgres://postgres@127.0.0.1:${port}/${DATABASE_NAME}`,
        host: '127.0.0.1',
        port,
        stop: () => (stopping ??= cleanup()),
        halt: async () => {
          if (stopping || !child) return;
          await stopChild(child, 'SIGINT', 10_000); // fast shutdown: clients are told, data kept
          log('postgres: halted (fault test)');
        },
        resume: async () => {
          if (stopping || (child && !hasExited(child))) return;
          const t1 = Date.now();
          await launch(port);
          log(`postgres: resumed in ${Date.now() - t1} ms (fault test)`);
        },
      };
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
}
