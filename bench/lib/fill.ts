/**
 * Puts many people in one concert's line fast, for the scale steps: `POST /__bench/fill-line` (see
 * ./probe-entry.ts) has the Worker call the room's own `join(userId)` RPC in a loop, which skips
 * HTTP, user-token checks and queue-token signing per person (about 2.3× the rate of `POST
 * /queue/token` at 50 clients here). Several chunks run at once; progress goes to stderr.
 */
import { callJson } from './frontrow.ts';

export interface FillOptions {
  baseUrl: string;
  concertId: string;
  /** User ids are `${prefix}${i}` for i in [0, count). */
  prefix: string;
  count: number;
  /** Joins per request. @default count ÷ 40, within [10, 2000] */
  chunk?: number;
  /** Requests in flight. @default 4 */
  requests?: number;
  /** RPCs in flight inside each request. @default 16 */
  parallel?: number;
  log: (message: string) => void;
  signal?: AbortSignal;
}

export interface FillResult {
  joined: number;
  rejoined: number;
  failed: number;
  firstError?: string;
  seconds: number;
  perSecond: number;
  /** Join rate of the first and of the last tenth of the fill, for how it slowed down as the line grew. */
  firstTenthPerSecond: number;
  lastTenthPerSecond: number;
}

interface ChunkAnswer {
  joined: number;
  rejoined: number;
  failed: number;
  firstError?: string;
  ms: number;
}

export async function fillLine(opts: FillOptions): Promise<FillResult> {
  // At least ~40 chunks, so progress and the first/last-tenth rates have points to go by.
  const chunk = opts.chunk ?? Math.max(10, Math.min(2000, Math.ceil(opts.count / 40)));
  const requests = opts.requests ?? 4;
  const t0 = performance.now();
  let next = 0;
  let done = 0;
  let lastReport = t0;
  const total: FillResult = { joined: 0, rejoined: 0, failed: 0, seconds: 0, perSecond: 0, firstTenthPerSecond: Number.NaN, lastTenthPerSecond: Number.NaN };
  /** [time ms since t0, people done] after each chunk. */
  const marks: [number, number][] = [[0, 0]];
  const worker = async (): Promise<void> => {
    while (next < opts.count) {
      if (opts.signal?.aborted) throw new Error('interrupted');
      const from = next;
      const count = Math.min(chunk, opts.count - from);
      next += count;
      const answer = await callJson<ChunkAnswer>(opts.baseUrl, 'POST', '/__bench/fill-line', {
        body: { concertId: opts.concertId, prefix: opts.prefix, from, count, parallel: opts.parallel ?? 16 },
        expectStatus: 200,
      });
      total.joined += answer.joined;
      total.rejoined += answer.rejoined;
      total.failed += answer.failed;
      total.firstError ??= answer.firstError;
      done += count;
      const now = performance.now();
      marks.push([now - t0, done]);
      if (now - lastReport > 5000 || done === opts.count) {
        lastReport = now;
        opts.log(`  fill: ${done.toLocaleString('en-US')} / ${opts.count.toLocaleString('en-US')} in ${((now - t0) / 1000).toFixed(0)} s`);
      }
    }
  };
  await Promise.all(Array.from({ length: requests }, worker));
  total.seconds = (performance.now() - t0) / 1000;
  total.perSecond = opts.count / total.seconds;
  const rateBetween = (fromShare: number, toShare: number): number => {
    const lo = marks.find(([, n]) => n >= opts.count * fromShare) ?? marks[0]!;
    const hi = marks.find(([, n]) => n >= opts.count * toShare) ?? marks.at(-1)!;
    return hi[0] > lo[0] ? ((hi[1] - lo[1]) * 1000) / (hi[0] - lo[0]) : Number.NaN;
  };
  total.firstTenthPerSecond = rateBetween(0, 0.1);
  total.lastTenthPerSecond = rateBetween(0.9, 1);
  return total;
}
