/**
 * The pages' one way to call the API: JSON in and out, and every failure turned into an
 * {@link ApiError} that carries the problem+json `title` and `detail` (DESIGN.md §2) for the page to show.
 */

/** An RFC 9457 problem as the API sends it; fields are optional because a proxy may answer instead. */
export interface Problem {
  title: string;
  detail?: string;
  status: number;
  code?: string;
  requestId?: string;
}

export class ApiError extends Error {
  readonly problem: Problem;
  /** Seconds the server asked us to wait (Retry-After), if it did. */
  readonly retryAfterSeconds: number | undefined;

  constructor(problem: Problem, retryAfterSeconds?: number) {
    super(problem.detail ? `${problem.title}: ${problem.detail}` : problem.title);
    this.problem = problem;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The problem to show for anything a call threw: an ApiError's own, or one for a network failure. */
export function problemOf(error: unknown): Problem {
  if (error instanceof ApiError) return error.problem;
  return { title: 'Network error', detail: error instanceof Error ? error.message : String(error), status: 0 };
}

export interface CallOptions {
  method?: string;
  /** Sent as `Authorization: Bearer …` (a user token or the admin token). */
  bearer?: string;
  queueToken?: string;
  /** Makes a retried write safe: the server replays the first response (DESIGN.md §2). */
  idempotencyKey?: string;
  json?: unknown;
}

export interface ApiResponse<T> {
  body: T;
  headers: Headers;
}

function retryAfter(headers: Headers): number | undefined {
  const value = Number(headers.get('Retry-After'));
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/** Calls the API; resolves with the parsed body of a 2xx, rejects with an ApiError otherwise. */
export async function call<T>(path: string, options: CallOptions = {}): Promise<ApiResponse<T>> {
  const headers = new Headers({ Accept: 'application/json' });
  if (options.bearer) headers.set('Authorization', `Bearer ${options.bearer}`);
  if (options.queueToken) headers.set('Queue-Token', options.queueToken);
  if (options.idempotencyKey) headers.set('Idempotency-Key', options.idempotencyKey);
  if (options.json !== undefined) headers.set('Content-Type', 'application/json');
  const response = await fetch(path, {
    method: options.method ?? (options.json === undefined ? 'GET' : 'POST'),
    headers,
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (response.ok) return { body: parsed as T, headers: response.headers };
  const problem = (parsed ?? {}) as Partial<Problem>;
  throw new ApiError(
    {
      title: problem.title ?? `${response.status} ${response.statusText || 'error'}`,
      detail: problem.detail ?? (parsed === undefined && text ? text.slice(0, 200) : undefined),
      status: response.status,
      code: problem.code,
      requestId: problem.requestId,
    },
    retryAfter(response.headers),
  );
}

/** A value kept for this tab only (sessionStorage), so two tabs can be two different fans. */
export function remembered(key: string): { get(): string | null; set(value: string | null): void } {
  return {
    get: () => sessionStorage.getItem(key),
    set: (value) => (value === null ? sessionStorage.removeItem(key) : sessionStorage.setItem(key, value)),
  };
}
