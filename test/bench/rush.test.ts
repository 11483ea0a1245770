// A small on-sale through the whole bench:rush harness (its own stack and Worker on workerd), as a
// smoke test of the harness and of the service under a rush: outcomes and invariants, never timings.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FANS = 300;
const SEATS = 30;

interface RushReport {
  fans: number;
  seats: number;
  joined: number;
  outcomes: Record<string, number>;
  seatsBoughtByFans: number;
  stats: { seats: { available: number; held: number; sold: number }; admitted: number };
  endpoints: { endpoint: string; requests: number; failed5xx: number; noAnswer: number }[];
  fifo?: {
    admitted: number;
    exact: boolean;
    admittedOutOfPrefix: number;
    admissionTimeInversions: number;
    clientViolations: number;
    seqMismatches: number;
    draw: { order: string; prequeueSize: number | null; commitmentHolds: boolean };
  };
  violations: unknown[];
  nonTerminal: { sessions: number; holds: number; reservations: number };
  fiveXx: number;
  noAnswer: number;
  failures: string[];
}

function runRush(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bench/rush.ts'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('bench:rush', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'frontrow-rush-smoke-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('sells seats once each, admits in the order drawn at opening and leaves nothing unsettled when 300 fans rush 30 seats', async () => {
    const json = path.join(dir, 'rush.json');
    // Short windows, sessions and holds so that admission runs several windows, abandoned holds
    // expire and every session ends within the test; half the holders walk away, so expiry runs.
    const { code, output } = await runRush([
      '--fans', String(FANS), '--seats', String(SEATS), '--clients', '50', '--mode', 'workerd',
      '--admit-per-window', '20', '--window-seconds', '1', '--session-seconds', '5', '--hold-seconds', '3',
      '--abandon-share', '0.5', '--ceiling-seconds', '1', '--warmup', '0', '--json', json,
    ]);
    expect(code, output).toBe(0);
    const report = JSON.parse(readFileSync(json, 'utf8')) as RushReport;

    expect(report.failures).toEqual([]);
    expect(report.violations).toEqual([]);
    expect(report.fiveXx).toBe(0);
    expect(report.noAnswer).toBe(0);
    expect(report.joined).toBe(FANS);
    // FIFO from the room's own line: admitted places are the first k by rank (the drawn pre-queue, then arrival), in that order.
    expect(report.fifo).toMatchObject({ exact: true, admittedOutOfPrefix: 0, admissionTimeInversions: 0, clientViolations: 0, seqMismatches: 0 });
    expect(report.fifo!.admitted).toBeGreaterThan(20); // more than one window went in
    // Fans join before opening (the harness leaves time for it): they were drawn, from the seed committed to beforehand.
    expect(report.fifo!.draw).toMatchObject({ order: 'shuffle', commitmentHolds: true });
    expect(report.fifo!.draw.prequeueSize).toBeGreaterThan(0);
    // Every seat accounted for: sold, each to a fan who was told 201, or free again (a hold walked away
    // from may expire after the last fan has left); none still held.
    expect(report.stats.seats.held).toBe(0);
    expect(report.stats.seats.sold + report.stats.seats.available).toBe(SEATS);
    expect(report.stats.seats.sold).toBeGreaterThan(0);
    expect(report.seatsBoughtByFans).toBe(report.stats.seats.sold);
    expect(report.outcomes['abandoned its hold']).toBeGreaterThan(0);
    expect(report.outcomes['failed (5xx or no answer)'] ?? 0).toBe(0);
    expect(report.nonTerminal).toEqual({ sessions: 0, holds: 0, reservations: 0 });
    for (const endpoint of ['POST /auth/dev-token', 'POST /balance/charge', 'POST /queue/token', 'GET /concerts/:id/seats', 'POST /reservations', 'POST /payment']) {
      expect(report.endpoints.find((row) => row.endpoint === endpoint)?.requests, endpoint).toBeGreaterThan(0);
    }
  });
});
