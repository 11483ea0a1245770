/** One structured JSON line; Workers Logs and `wrangler tail` index its fields. */
export function logJson(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, message, time: new Date().toISOString(), ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}

/** Error details for logs only; never returned to clients. */
export function describeError(error: unknown): Record<string, unknown> {
  if (error instanceof Error) {
    return {
      errorName: error.name,
      errorMessage: error.message,
      stack: error.stack,
      ...(error.cause === undefined ? {} : { cause: describeError(error.cause) }),
    };
  }
  // The Neon driver rejects with a WebSocket ErrorEvent, which is not an Error but has a message.
  const message = (error as { message?: unknown } | null)?.message;
  return { error: typeof message === 'string' && message ? message : String(error), errorType: (error as object | null)?.constructor?.name };
}
