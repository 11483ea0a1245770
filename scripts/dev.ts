/**
 * `npm run dev`: local stack (DESIGN.md §7) → migrations + seed → fresh .dev.vars → the web front's
 * build, watching web/ → `wrangler dev`.
 *
 * Shutdown (Ctrl-C, SIGTERM, or wrangler exiting) stops wrangler's whole process group first, then the
 * stack. Wrangler runs in a process group of its own because killing the wrangler process alone leaves
 * workerd running (VERIFIED.md); the stack's own children are covered by scripts/stack/processes.ts even
 * if this process is killed hard.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { buildWeb } from './build-web.ts';
import { migrate } from './migrate.ts';
import { seed } from './seed.ts';
import { startStack } from './stack/index.ts';
import type { Stack } from './stack/index.ts';
import { stopProcessGroup, trackChild } from './stack/processes.ts';

const root = path.resolve(import.meta.dirname, '..');
const port = Number(process.env.PORT ?? 8787);
const log = (msg: string): void => console.log(`[dev] ${msg}`);

let stack: Stack | undefined;
let starting: Promise<Stack> | undefined;
let wrangler: ChildProcess | undefined;
let shuttingDown = false;

/** Stops wrangler's group, then the stack, then exits. A second signal skips the grace periods. */
async function shutdown(reason: string, code: number): Promise<void> {
  if (shuttingDown) {
    log(`${reason} again: exiting now`);
    if (wrangler?.pid !== undefined) {
      try {
        process.kill(-wrangler.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    process.exit(code); // the stack's exit hook and reaper clean up the rest
  }
  shuttingDown = true;
  log(`${reason}: shutting down`);
  try {
    if (wrangler) await stopProcessGroup(wrangler, 3000);
    // If startStack() is still running, wait for it so that what it started gets stopped too.
    const running = stack ?? (await starting?.catch(() => undefined));
    await running?.stop();
  } catch (error) {
    console.error(error);
    code ||= 1;
  }
  process.exit(code);
}

// Exit with the shell's 128 + signal number convention.
const SIGNAL_EXIT_CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
for (const [signal, code] of Object.entries(SIGNAL_EXIT_CODES)) {
  process.on(signal, () => void shutdown(signal, code));
}

/** .dev.vars in dotenv format; rewritten on every run so secrets never outlive a dev session. */
function writeDevVars(s: Stack): void {
  const secret = (): string => randomBytes(32).toString('base64url');
  const vars: Record<string, string> = {
    DATABASE_URL: s.databaseUrl,
    NEON_WS_PROXY: s.neonWsProxy,
    UPSTASH_REDIS_REST_URL: s.upstashUrl,
    UPSTASH_REDIS_REST_TOKEN: s.upstashToken,
    DEV_AUTH: 'true',
    ADMIN_TOKEN: process.env.ADMIN_TOKEN ?? 'dev-admin-token',
    AUTH_SECRET: secret(),
    QUEUE_TOKEN_SECRET: secret(),
    ENTRY_POW_SECRET: secret(),
  };
  const body = Object.entries(vars)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n');
  fs.writeFileSync(
    path.join(root, '.dev.vars'),
    `# Written by \`npm run dev\` (scripts/dev.ts) on every run; edits are overwritten.\n${body}\n`,
  );
  fs.chmodSync(path.join(root, '.dev.vars'), 0o600); // holds secrets; `mode` above only applies on creation
}

async function main(): Promise<void> {
  starting = startStack({ allowPglite: true, log });
  stack = await starting;
  if (shuttingDown) return;
  if (stack.postgresKind === 'pglite') {
    log('no PostgreSQL server binaries found: using embedded PGlite (install `postgresql` for the real thing)');
  }

  const applied = await migrate(stack.databaseUrl, (msg) => log(`migrate: ${msg}`));
  log(`migrations: ${applied.length} applied`);
  if (shuttingDown) return;
  log(`seed: ${await seed(stack.databaseUrl)} concerts inserted`);
  if (shuttingDown) return;
  writeDevVars(stack);
  await buildWeb({ watch: true });

  console.log(
    [
      '',
      `  Frontrow dev    http://127.0.0.1:${port}`,
      `  Fan page        http://127.0.0.1:${port}/`,
      `  Operator page   http://127.0.0.1:${port}/operator (admin token in .dev.vars)`,
      `  API docs        http://127.0.0.1:${port}/docs`,
      `  PostgreSQL      ${stack.databaseUrl} (${stack.postgresKind})`,
      `  Neon WS proxy   ${stack.neonWsProxy || '(real Neon)'}`,
      `  Upstash REST    ${stack.upstashUrl}`,
      '  .dev.vars       written; Ctrl-C stops everything',
      '',
    ].join('\n'),
  );

  // Run wrangler's JS entry with this very Node binary: the `#!/usr/bin/env node` shebang of
  // node_modules/.bin/wrangler could pick up an older system Node that wrangler rejects.
  const entry = fs.realpathSync(path.join(root, 'node_modules/.bin/wrangler'));
  wrangler = spawn(
    process.execPath,
    [entry, 'dev', '--ip', '127.0.0.1', '--port', String(port), ...process.argv.slice(2)],
    {
      cwd: root,
      // Own process group, so one signal reaches wrangler and its workerd processes. stdin is not
      // inherited: a background process group reading the terminal (wrangler's hotkeys) gets SIGTTIN
      // and freezes; stop it with Ctrl-C here instead of `x`.
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  trackChild(wrangler, 'SIGKILL', { group: true });
  wrangler.on('exit', (code, signal) => {
    if (!shuttingDown) void shutdown(`wrangler exited (${signal ?? code})`, code ?? 1);
  });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  void shutdown('startup failed', 1);
});
