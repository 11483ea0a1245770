import { OpenAPIHono } from '@hono/zod-openapi';
import { swaggerUI } from '@hono/swagger-ui';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import { secureHeaders } from 'hono/secure-headers';
import type { Context } from 'hono';
import { isPostgresUnavailable } from './db/errors.ts';
import { requestDeadline } from './lib/deadline.ts';
import { AppError, dependencyUnavailable, toProblem } from './lib/errors.ts';
import { describeError, logJson } from './lib/logging.ts';
import { requestLog } from './lib/middleware.ts';
import { requestDb } from './lib/request-db.ts';
import { validationHook } from './lib/validation.ts';
import { registerAdminRoutes } from './routes/admin.ts';
import { registerAuthRoutes } from './routes/auth.ts';
import { registerBalanceRoutes } from './routes/balance.ts';
import { registerConcertRoutes } from './routes/concerts.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerPageRoutes } from './routes/pages.ts';
import { registerPaymentRoutes } from './routes/payment.ts';
import { registerQueueRoutes } from './routes/queue.ts';
import { registerReservationRoutes } from './routes/reservations.ts';
import { registerTicketRoutes } from './routes/tickets.ts';
import { registerWaitlistRoutes } from './routes/waitlist.ts';
import type { AppEnv } from './types.ts';

/** Largest JSON body any route accepts; the biggest legitimate one (a concert with sections) is far smaller. */
const MAX_BODY_BYTES = 64 * 1024;

function problemResponse(c: Context<AppEnv>, error: AppError): Response {
  const requestIdValue = c.get('requestId') ?? 'unknown';
  return c.json(toProblem(error, requestIdValue), error.status, {
    'Content-Type': 'application/problem+json',
    ...error.headers,
  });
}

/** Maps Hono's own HTTP errors (malformed JSON, body too large) onto the app's problem codes. */
function fromHttpException(error: HTTPException): AppError {
  if (error.status === 413) return new AppError(413, 'PAYLOAD_TOO_LARGE', 'Payload too large', `Bodies are limited to ${MAX_BODY_BYTES} bytes`);
  if (error.status === 400) {
    const detail = /malformed json/i.test(error.message) ? 'Request body is not valid JSON' : error.message;
    return new AppError(400, 'VALIDATION_FAILED', 'Request is invalid', detail);
  }
  if (error.status === 415) {
    return new AppError(415, 'UNSUPPORTED_MEDIA_TYPE', 'Unsupported media type', 'Send the body as application/json');
  }
  return new AppError(error.status, 'HTTP_ERROR', error.message || 'Request failed');
}

/**
 * True for the errors the runtime gives a Durable Object call that did not finish through no fault of
 * the request: the object was reset meanwhile (`durableObjectReset`), or it is overloaded or asks to be
 * retried (`overloaded`, `retryable`).
 */
function isRoomUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { durableObjectReset, overloaded, retryable } = error as Record<string, unknown>;
  return durableObjectReset === true || overloaded === true || retryable === true;
}

/** Builds the Hono app: cross-cutting middleware, error mapping, routes and the OpenAPI document. */
export function createApp() {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.use(requestDeadline);
  app.use(requestId());
  app.use(secureHeaders());
  app.use(requestLog);
  app.use(requestDb);
  app.use(
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new HTTPException(413);
      },
    }),
  );

  app.onError((error, c) => {
    if (error instanceof AppError) {
      if (error.status >= 500) logJson('error', error.code, { requestId: c.get('requestId'), ...describeError(error) });
      return problemResponse(c, error);
    }
    if (error instanceof HTTPException) return problemResponse(c, fromHttpException(error));
    if (isPostgresUnavailable(error)) {
      logJson('error', 'postgres unavailable', { requestId: c.get('requestId'), ...describeError(error) });
      return problemResponse(c, dependencyUnavailable('Postgres', error));
    }
    if (isRoomUnavailable(error)) {
      // The concert's room was reset (a deploy, a crash) or overloaded while it served this call. Its
      // state is safe in storage and it repairs itself on restart; the client retries (a keyed retry
      // replays whatever the call committed), like any other 503.
      logJson('error', 'concert room unavailable', { requestId: c.get('requestId'), ...describeError(error) });
      return problemResponse(c, dependencyUnavailable('The concert room', error));
    }
    logJson('error', 'unhandled error', { requestId: c.get('requestId'), ...describeError(error) });
    return problemResponse(c, new AppError(500, 'INTERNAL_ERROR', 'Internal server error', 'Something went wrong; quote the requestId when reporting it'));
  });

  app.notFound((c) =>
    problemResponse(c, new AppError(404, 'ROUTE_NOT_FOUND', 'Not found', `No route for ${c.req.method} ${c.req.path}`)),
  );

  registerHealthRoutes(app);
  registerAuthRoutes(app);
  registerQueueRoutes(app);
  registerConcertRoutes(app);
  registerReservationRoutes(app);
  registerTicketRoutes(app);
  registerWaitlistRoutes(app);
  registerBalanceRoutes(app);
  registerPaymentRoutes(app);
  registerAdminRoutes(app);
  registerPageRoutes(app);

  app.openAPIRegistry.registerComponent('securitySchemes', 'userToken', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Frontrow API',
      version: '1.0.0',
      description: 'Concert on-sales at the edge: a fair waiting room, atomic seat holds and points payments.',
    },
  });
  // Swagger UI's files come from the static assets (scripts/build-web.ts), so /docs works offline.
  app.get('/docs', swaggerUI({ url: '/openapi.json', baseUrl: '/vendor' }));

  return app;
}
