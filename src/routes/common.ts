import { z } from '@hono/zod-openapi';
import { problemResponse } from '../lib/problem-schemas.ts';

/** The Idempotency-Key header of retryable writes (charge, use, payment). */
export const idempotencyHeader = z.object({
  'idempotency-key': z.string().max(255).optional().openapi({ description: 'Replays the first final response (2xx, or a 4xx about the request) for 24 h; a 5xx, 429, 404, 403 NOT_ADMITTED or an answer with Retry-After is not stored, so the retry runs again' }),
});

/** Problem responses every user-token write with an Idempotency-Key can give. */
export const common = {
  400: problemResponse('Invalid body (VALIDATION_FAILED)'),
  401: problemResponse('Missing or invalid user token (UNAUTHENTICATED)'),
  409: problemResponse('Same Idempotency-Key still running (REQUEST_IN_PROGRESS)'),
  422: problemResponse('Idempotency-Key reused with another body (IDEMPOTENCY_KEY_REUSED)'),
  503: problemResponse('Redis or Postgres unavailable, or the lock timed out; nothing changed (DEPENDENCY_UNAVAILABLE, LOCK_TIMEOUT)'),
};
