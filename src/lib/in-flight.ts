import { createMiddleware } from 'hono/factory';

/*
 * Redis budgets that follow this isolate's load. One workerd thread serves every request of the
 * isolate: with hundreds in flight, an answer from a healthy Redis waits behind their work before
 * this request can read it, and a fixed 800 ms budget then calls Redis down (bench:rush at 500
 * clients: 503s on charges with Redis at 1 % CPU, and a trivial 404's p99 of 4.7 s in the same run).
 * The budget grows with the requests in flight here, so an idle isolate still fails closed within
 * its budget when Redis is away, and a busy one waits at most MAX_BUDGET_MS.
 */

/** Extra budget per other request in flight in this isolate. @default 10 */
const MS_PER_REQUEST_IN_FLIGHT = 10;

/** No budget stretches past this. @default 5000 */
export const MAX_BUDGET_MS = 5_000;

let inFlight = 0;

/** Counts the requests this isolate is serving; register it first. */
export const countInFlight = createMiddleware(async (_c, next) => {
  inFlight++;
  try {
    await next();
  } finally {
    inFlight--;
  }
});

/** `ms` plus MS_PER_REQUEST_IN_FLIGHT for every other request in flight here, at most MAX_BUDGET_MS. */
export function budgetUnderLoad(ms: number): number {
  return Math.max(ms, Math.min(ms + Math.max(0, inFlight - 1) * MS_PER_REQUEST_IN_FLIGHT, MAX_BUDGET_MS));
}
