import { describe, expect, it } from 'vitest';
import { isFinalAnswer } from '../../src/lib/idempotency.ts';

const problem = (code: string) => JSON.stringify({ type: 'about:blank', title: 't', status: 0, code });
const none = new Headers();
const retryAfter = new Headers({ 'Retry-After': '1' });

describe('isFinalAnswer', () => {
  it('keeps 2xx answers and 4xx answers about the request itself', () => {
    expect(isFinalAnswer(200, none, '{"balance":1}')).toBe(true);
    expect(isFinalAnswer(201, none, '{}')).toBe(true);
    expect(isFinalAnswer(400, none, problem('VALIDATION_FAILED'))).toBe(true);
    expect(isFinalAnswer(402, none, problem('INSUFFICIENT_BALANCE'))).toBe(true);
    expect(isFinalAnswer(409, none, problem('SEAT_UNAVAILABLE'))).toBe(true);
    expect(isFinalAnswer(409, none, problem('ALREADY_PAID'))).toBe(true);
    expect(isFinalAnswer(422, none, problem('HOLD_LIMIT'))).toBe(true);
  });

  it('drops answers that say "not yet": 5xx, 429, 404, Retry-After and the in-progress or not-admitted codes', () => {
    expect(isFinalAnswer(500, none, problem('INTERNAL'))).toBe(false);
    expect(isFinalAnswer(503, retryAfter, problem('DEPENDENCY_UNAVAILABLE'))).toBe(false);
    expect(isFinalAnswer(429, retryAfter, problem('RATE_LIMITED'))).toBe(false);
    expect(isFinalAnswer(429, none, problem('RATE_LIMITED'))).toBe(false);
    expect(isFinalAnswer(404, none, problem('RESERVATION_NOT_FOUND'))).toBe(false);
    expect(isFinalAnswer(409, retryAfter, problem('REQUEST_IN_PROGRESS'))).toBe(false);
    // Even without the header, the code alone says retry.
    expect(isFinalAnswer(409, none, problem('PAYMENT_IN_PROGRESS'))).toBe(false);
    expect(isFinalAnswer(403, none, problem('NOT_ADMITTED'))).toBe(false);
  });
});
