import { directQuery } from './postgres.ts';

export { openDirectClient, type DirectClient } from './postgres.ts';

/**
 * Waits until some backend is blocked on a lock while running a statement that contains `fragment`
 * (e.g. "INSERT INTO payments"): the way a test knows the order in which statements queue for a row.
 */
export async function waitForLockWaiter(fragment: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const rows = await directQuery<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND strpos(query, $1) > 0`,
      [fragment],
    );
    if (Number(rows[0]?.n) > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no statement containing "${fragment}" came to wait on a lock within ${timeoutMs} ms`);
}
