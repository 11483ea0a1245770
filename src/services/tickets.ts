import type { Sql } from '../db/http.ts';
import { listTicketsOf, type TicketView } from '../db/tickets-repo.ts';

/** Most reservations one My tickets read returns. @default 50 */
export const DEFAULT_TICKETS_LIMIT = 50;

/** The caller's own reservations, newest first (a fan holds at most 4 seats per concert, so pages stay short). */
export function myTickets(sql: Sql, userId: string, limit = DEFAULT_TICKETS_LIMIT): Promise<TicketView[]> {
  return listTicketsOf(sql, userId, limit);
}
