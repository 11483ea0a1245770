import { createMiddleware } from 'hono/factory';
import type { AppEnv } from '../types.ts';
import { testSwitches } from './test-switches.ts';

/*
 * One Redis deadline per request (issue 19). It is set when the request starts, and every Redis call
 * the request makes to decide something (the idempotency claim, a lock acquisition, each poll of a
 * wait) gets the time left to it as its abort signal, so a request fails closed by then whatever the
 * load and however many calls it makes. Budgets per call instead (they grew with the requests in
 * flight, up to 5 s each) let one request wait ~25 s on a vanished Redis, past the 30 s-ish life of
 * its idempotency claim counting the rest of its work, and did not bound the 503 a fan waits for.
 *
 * The deadline is fixed when the request starts, from REDIS_DEADLINE_MS (an idle isolate fails closed
 * within it) plus a little per request already in flight in this isolate, capped at
 * REDIS_DEADLINE_MAX_MS: a busy isolate reads a healthy Redis's answers late, and a flat deadline
 * failed those requests closed by the thousand in bench:rush. The price: under load, a vanished Redis
 * is answered 503 after up to REDIS_DEADLINE_MAX_MS, not within 2 s.
 */

/**
 * How long after it starts a request may still wait on Redis. Past it, the call in flight is aborted
 * and the request answers 503 DEPENDENCY_UNAVAILABLE (or LOCK_TIMEOUT, when it was waiting its turn
 * for a lock that Redis kept answering about). Far below IDEMPOTENCY_CLAIM_MS, so a request never
 * outlives its claim on Redis's account.
 * @default 1500
 */
export const REDIS_DEADLINE_MS = 1_500;

/** A point in time (epoch ms) by which something must be done. */
export class Deadline {
  /** Epoch milliseconds. */
  readonly at: number;

  constructor(at: number) {
    this.at = at;
  }

  /** The deadline `ms` from now. */
  static after(ms: number): Deadline {
    return new Deadline(Date.now() + ms);
  }

  /** Milliseconds left, 0 once it has passed. */
  remainingMs(): number {
    return Math.max(0, this.at - Date.now());
  }

  /** An abort signal that fires when the deadline passes (aborted already if it has). */
  signal(): AbortSignal {
    const remaining = this.remainingMs();
    return remaining > 0 ? AbortSignal.timeout(remaining) : AbortSignal.abort(new DOMException('The Redis deadline has passed', 'TimeoutError'));
  }

  /**
   * This deadline, or `ms` from now if that is later: for a clean-up call (a release, the end of an
   * idempotency claim) that runs after the request's decisions, perhaps after its deadline, and must
   * still get a fair chance to reach Redis, since what it leaves behind otherwise blocks others until
   * it expires.
   */
  orAtLeast(ms: number): Deadline {
    return new Deadline(Math.max(this.at, Date.now() + ms));
  }
}

/**
 * Why a Redis call failed when its deadline had passed by the time it did: the request's deadline,
 * not Redis's own answer, ended it (logged as the cause of the 503). `cause` is what the call saw.
 */
export class RedisDeadlinePassed extends Error {
  override name = 'RedisDeadlinePassed';

  constructor(deadline: Deadline, cause: unknown) {
    super(`Redis did not answer by the request's deadline (${new Date(deadline.at).toISOString()})`, { cause });
  }
}

/** The cause to report for a Redis call that failed with `error`: {@link RedisDeadlinePassed} once `deadline` has passed. */
export const redisFailure = (deadline: Deadline, error: unknown): unknown => (deadline.remainingMs() === 0 ? new RedisDeadlinePassed(deadline, error) : error);

/**
 * More time per other request in flight in this isolate when a request starts. One workerd thread
 * reads every request's Redis answers in turn: with hundreds in flight (bench:rush at 500 clients), a
 * healthy Redis's answer is read seconds after it came, and a flat 1.5 s failed thousands of requests
 * closed that Redis had answered (docs/benchmarks.md: 752 → 8,453 × 503; at 10 ms each and 5 s at most,
 * still 233 charges of 3,000 at 500 clients). About what the old per-call budgets gave a request of
 * two or three Redis calls. @default 20
 */
export const REDIS_DEADLINE_PER_REQUEST_MS = 20;

/**
 * No request's deadline is later than this after its start, however busy the isolate: a vanished
 * Redis costs a request at most this, inside its idempotency claim (IDEMPOTENCY_CLAIM_MS, 30 s) with
 * room for the rest of its work. @default 10000
 */
export const REDIS_DEADLINE_MAX_MS = 10_000;

let requestsInFlight = 0;

/** The deadline a request starting now gets: REDIS_DEADLINE_MS, plus room for the requests ahead of it in this isolate, capped. */
export function deadlineForRequestStartingNow(othersInFlight: number): number {
  return Math.min(REDIS_DEADLINE_MAX_MS, REDIS_DEADLINE_MS + REDIS_DEADLINE_PER_REQUEST_MS * othersInFlight);
}

/**
 * Sets `c.var.deadline` once, when the request starts: {@link deadlineForRequestStartingNow} from
 * now (fixed from then on, so every call of the request shares it). Register it first.
 */
export const requestDeadline = createMiddleware<AppEnv>(async (c, next) => {
  c.set('deadline', Deadline.after(testSwitches.redisDeadlineMs ?? deadlineForRequestStartingNow(requestsInFlight)));
  requestsInFlight++;
  try {
    await next();
  } finally {
    requestsInFlight--;
  }
});
