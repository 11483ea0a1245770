/**
 * `node bench/entry-verify.ts` (issue 20): the proof of work's costs, measured where they are paid.
 *
 * 1. Verify CPU per join inside workerd: the Worker's own verifier (src/lib/entry-proof.ts, bundled
 *    with esbuild) runs in workerd through Miniflare; one request verifies the same solved proof
 *    `--verifies` times (default 2,000) in a loop, another does the loop's other work without the
 *    verification (parsing, a promise per turn). workerd freezes its clocks while code runs, so time
 *    is read from outside: (wall time of the verifying request − the baseline's) / verifies. One
 *    request at a time, nothing else running in that isolate: wall time is its CPU time.
 *    Challenge issuing (one PBKDF2 of 1,000 rounds + 2 HMACs, on GET /queue/challenge) the same way.
 * 2. The attacker's price: CPU-seconds per 1,000 places with the native solver (bench/lib/entry-pow.ts,
 *    node:crypto), at each `--costs` (default 20,100,500,2000), `--solves` challenges each (default 20).
 *
 * Prints tables; `--json FILE` writes them. Not a test.
 */
import path from 'node:path';
import * as esbuild from 'esbuild';
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions } from 'miniflare';
import { intFlag, intListFlag, writeJsonReport } from './lib/cli.ts';
import { solveEntryChallenge, type EntryChallenge } from './lib/entry-pow.ts';
import { createEntryChallenge } from '../src/lib/entry-proof.ts';
import { printTable } from './lib/table.ts';

const VERIFIES = intFlag('verifies', 2_000);
const COSTS = intListFlag('costs', [20, 100, 500, 2000]);
const SOLVES = intFlag('solves', 20);
const root = path.resolve(import.meta.dirname, '..');
const SECRET = 'bench-entry-pow-secret-0123456789abcdef';

const WORKER = `
import { createEntryChallenge, verifyEntryProof, encodeEntryProof } from './src/lib/entry-proof.ts';
export default {
  async fetch(request) {
    const url = new URL(request.url);
    const n = Number(url.searchParams.get('n'));
    const mode = url.searchParams.get('mode');
    const { altcha, userId, concertId } = await request.json();
    let ok = 0;
    for (let i = 0; i < n; i++) {
      if (mode === 'verify') ok += (await verifyEntryProof('${SECRET}', altcha, { userId, concertId })).cost > 0 ? 1 : 0;
      else if (mode === 'issue') ok += (await createEntryChallenge('${SECRET}', { userId, concertId, cost: 500 })).signature ? 1 : 0;
      else ok += (await Promise.resolve(JSON.parse(atob(altcha)))).challenge ? 1 : 0;
    }
    return Response.json({ ok });
  },
};
`;

async function main(): Promise<void> {
  const built = await esbuild.build({
    stdin: { contents: WORKER, resolveDir: root, loader: 'ts' },
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions: ['workerd', 'worker', 'import'],
    write: false,
    logLevel: 'warning',
  });
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      modules: true,
      script: built.outputFiles[0]!.text,
      compatibilityDate: '2026-06-11',
      compatibilityFlags: ['nodejs_compat'],
      cf: false,
      log: new Log(LogLevel.WARN),
    }),
  );
  try {
    const userId = 'bench-fan';
    const concertId = '6f1c2a52-8d0e-4c4e-9a55-0e2f4c7b9a10';
    const challenge = await createEntryChallenge(SECRET, { userId, concertId, cost: 20 });
    const solution = solveEntryChallenge(challenge as EntryChallenge);
    const altcha = Buffer.from(JSON.stringify({ challenge, solution: { counter: solution.counter, derivedKey: solution.derivedKey } })).toString('base64');
    const timed = async (mode: string, n: number): Promise<number> => {
      const t0 = performance.now();
      const response = await mf.dispatchFetch(`http://bench/?mode=${mode}&n=${n}`, { method: 'POST', body: JSON.stringify({ altcha, userId, concertId }) });
      const body = (await response.json()) as { ok: number };
      if (body.ok !== n) throw new Error(`${mode}: ${body.ok} of ${n} succeeded`);
      return performance.now() - t0;
    };
    await timed('verify', 200); // warm-up: JIT, key imports
    await timed('issue', 20);
    const rounds = 3;
    const perJoin: number[] = [];
    const perIssue: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const base = await timed('none', VERIFIES);
      perJoin.push((await timed('verify', VERIFIES) - base) / VERIFIES);
      const issues = Math.max(1, Math.floor(VERIFIES / 4));
      const baseIssue = await timed('none', issues);
      perIssue.push((await timed('issue', issues) - baseIssue) / issues);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    printTable(`Verify and issue in workerd (Miniflare; ${VERIFIES} verifies × ${rounds} rounds; median)`, ['Step', 'ms per call (median)', 'rounds'], [
      ['verify a join\'s proof (2 HMAC-SHA-256 + parse)', median(perJoin).toFixed(3), perJoin.map((x) => x.toFixed(3)).join(' / ')],
      ['issue a challenge (PBKDF2 1,000 rounds + 2 HMAC)', median(perIssue).toFixed(3), perIssue.map((x) => x.toFixed(3)).join(' / ')],
    ]);

    const attacker: { cost: number; solves: number; meanAttempts: number; cpuSecondsPer1000Places: number }[] = [];
    for (const cost of COSTS) {
      let cpuMs = 0;
      let attempts = 0;
      for (let i = 0; i < SOLVES; i++) {
        const c = (await createEntryChallenge(SECRET, { userId, concertId, cost })) as EntryChallenge;
        const before = process.cpuUsage();
        attempts += solveEntryChallenge(c).attempts;
        const used = process.cpuUsage(before);
        cpuMs += (used.user + used.system) / 1000;
      }
      attacker.push({ cost, solves: SOLVES, meanAttempts: attempts / SOLVES, cpuSecondsPer1000Places: cpuMs / SOLVES });
    }
    printTable(
      `The attacker's price with the native solver (node:crypto PBKDF2, one core; ${SOLVES} challenges per cost)`,
      ['cost', 'mean attempts', 'CPU-s per 1,000 places', 'CPU-ms per place'],
      attacker.map((a) => [String(a.cost), a.meanAttempts.toFixed(0), a.cpuSecondsPer1000Places.toFixed(1), a.cpuSecondsPer1000Places.toFixed(1)]),
    );
    await writeJsonReport({ verifyMsPerJoin: perJoin, issueMsPerChallenge: perIssue, attacker });
  } finally {
    await mf.dispose();
  }
}

await main();
