import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** Extra fields a problem may carry beyond RFC 9457's own, e.g. `seats` on SEAT_UNAVAILABLE. */
export type ProblemExtensions = Record<string, unknown>;

/**
 * The one error type of the app. Routes and services throw it; `onError` renders it as
 * RFC 9457 problem+json with a stable upper-snake `code`. `cause` is logged, never returned.
 */
export class AppError extends Error {
  readonly status: ContentfulStatusCode;
  readonly code: string;
  readonly title: string;
  readonly detail: string | undefined;
  readonly extensions: ProblemExtensions;
  readonly headers: Record<string, string>;

  constructor(
    status: ContentfulStatusCode,
    code: string,
    title: string,
    detail?: string,
    options: { cause?: unknown; extensions?: ProblemExtensions; headers?: Record<string, string> } = {},
  ) {
    super(detail ?? title, { cause: options.cause });
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.title = title;
    this.detail = detail;
    this.extensions = options.extensions ?? {};
    this.headers = options.headers ?? {};
  }
}

/** Body of an `application/problem+json` response. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code: string;
  requestId: string;
  [extension: string]: unknown;
}

/** Renders an AppError as the problem document sent to the client. */
export function toProblem(error: AppError, requestId: string): Problem {
  return {
    ...error.extensions,
    type: `https://frontrow.dev/problems/${error.code.toLowerCase().replaceAll('_', '-')}`,
    title: error.title,
    status: error.status,
    ...(error.detail === undefined ? {} : { detail: error.detail }),
    code: error.code,
    requestId,
  };
}

export const validationFailed = (detail: string, extensions?: ProblemExtensions) =>
  new AppError(400, 'VALIDATION_FAILED', 'Request is invalid', detail, { extensions });

export const unauthenticated = (detail: string) =>
  new AppError(401, 'UNAUTHENTICATED', 'Authentication required', detail, {
    headers: { 'WWW-Authenticate': 'Bearer realm="frontrow", error="invalid_token"' },
  });

export const forbidden = (detail: string) => new AppError(403, 'FORBIDDEN', 'Forbidden', detail);

export const notFound = (code: string, detail: string) => new AppError(404, code, 'Not found', detail);

/** A store we depend on is down or too slow: fail closed and tell the client when to retry. */
export const dependencyUnavailable = (dependency: string, cause?: unknown) =>
  new AppError(503, 'DEPENDENCY_UNAVAILABLE', 'Dependency unavailable', `${dependency} is unavailable; retry shortly`, {
    cause,
    headers: { 'Retry-After': '1' },
  });
