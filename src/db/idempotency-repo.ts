import { lookupStatement, toStoredResponse, type IdempotencyClaim, type StoredResponse } from '../lib/idempotency.ts';
import type { Sql } from './http.ts';

/**
 * The live stored response for the claim's key, over the HTTP path: what a route whose effect
 * records its own response replays before running the effect again (the in-flight claim in Redis
 * keeps a second run of the same key out meanwhile).
 */
export async function findStoredResponse(sql: Sql, claim: IdempotencyClaim): Promise<StoredResponse | undefined> {
  const { text, values } = lookupStatement(claim);
  const rows = (await sql.query(text, values)) as { request_hash: string; status_code: number; body: unknown }[];
  return rows[0] && toStoredResponse(rows[0]);
}
