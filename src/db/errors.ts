/** The SQLSTATE of a Postgres error, looking through wrappers such as drizzle's DrizzleQueryError. */
export function sqlState(error: unknown): string | undefined {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Postgres unique_violation (e.g. the one-live-reservation-per-seat index). */
export const isUniqueViolation = (error: unknown) => sqlState(error) === '23505';

/**
 * True when the error means "could not talk to Postgres" rather than "Postgres said no": no
 * SQLSTATE at all from the driver's socket layer, or a connection/shutdown/resource class.
 */
export function isPostgresUnavailable(error: unknown): boolean {
  const state = sqlState(error);
  if (state) return state.startsWith('08') || state.startsWith('53') || state.startsWith('57P');
  // The HTTP path (`neon()`): the fetch itself failed (refused, reset, reply lost, timed out), or
  // Neon's proxy answered with a server error rather than a Postgres error (which would be a 400
  // carrying a SQLSTATE, handled above).
  if (isNeonHttpFailure(error)) return true;
  // The Neon driver rejects with the WebSocket's ErrorEvent when the socket itself fails.
  if (typeof error === 'object' && error !== null && (error as { type?: unknown }).type === 'error' && !(error instanceof Error)) return true;
  // Without a SQLSTATE, recognise the Neon/pg driver's own words for a lost or refused connection.
  const text = String((error as { message?: unknown })?.message ?? error);
  return /Connection terminated|Connection ended|timeout exceeded when trying to connect|connection error|WebSocket|Network connection lost|ECONNREFUSED|ECONNRESET/i.test(
    text,
  );
}

/**
 * The words `neon()` uses when its fetch failed or the endpoint answered other than 200/400, and the
 * fetch deadline's own TimeoutError: when it fires while the reply's body is still being read, the
 * driver passes it on unwrapped (seen under load as a 500 on a room's load of a concert).
 */
function isNeonHttpFailure(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; current && depth < 5; depth++) {
    const { name, message } = current as { name?: unknown; message?: unknown };
    if (name === 'TimeoutError') return true;
    if (name === 'NeonDbError' && typeof message === 'string' && /^(Error connecting to database:|Server error \(HTTP status 5\d\d\))/.test(message)) {
      return true;
    }
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
