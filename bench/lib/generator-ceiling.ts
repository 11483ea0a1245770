/**
 * The load generator's own ceiling: the same closed loop (./load.ts) against a plain Node HTTP
 * server that answers 404 with an empty body, in a process of its own. Whatever a step measures
 * against the Worker, the generator could have sent this many requests a second at the same
 * clients on this machine at this moment; a figure near it was the generator's limit, not the
 * server's. (The seed's machine: a plain Node server does about 74,000 req/s under `wrk`; this
 * generator is one Node thread, so expect far less.)
 */
import { spawn } from 'node:child_process';
import { stopChild, trackChild } from '../../scripts/stack/processes.ts';
import { onCleanup } from './cleanup.ts';
import { groupCpuMs } from './cpu.ts';
import { runLoad } from './load.ts';
import type { LoadResult } from './load.ts';

// Listens on a free port, prints it, and answers everything with an empty 404.
const SERVER = `
const server = require('node:http').createServer((request, response) => {
  request.resume();
  response.statusCode = 404;
  response.end();
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

export const GENERATOR_CEILING_DESCRIPTION =
  'GET / on a plain Node HTTP server (node:http, empty 404, its own process) by the same closed-loop generator: the most this generator sends here';

/** Runs the generator against a throwaway plain server for `durationMs` at `concurrency` clients. */
export async function generatorCeiling(opts: { concurrency: number; durationMs: number; signal?: AbortSignal }): Promise<LoadResult> {
  const child = spawn(process.execPath, ['-e', SERVER], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
  trackChild(child, 'SIGKILL', { group: true });
  const stop = onCleanup('plain Node server (generator ceiling)', () => stopChild(child, 'SIGTERM', 2000));
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        if (out.includes('\n')) resolve(Number(out.trim()));
      });
      child.once('exit', (code) => reject(new Error(`the plain Node server exited during start-up (${code})`)));
    });
    return await runLoad({
      name: 'generator ceiling (plain Node 404)',
      baseUrl: `http://127.0.0.1:${port}`,
      concurrency: opts.concurrency,
      durationMs: opts.durationMs,
      signal: opts.signal,
      next: () => ({ path: '/' }),
      expect: (r) => r.status === 404,
      serverCpuMs: () => groupCpuMs(child.pid!),
    });
  } finally {
    await stop();
  }
}
