import { directQuery } from '../helpers/postgres.ts';

/**
 * Pays a held reservation in Postgres alone, as a payment whose reply (or whose room) was lost after
 * its commit leaves it: payment row, ledger debit (after a matching charge, so the owner's balance is
 * unchanged and still equals their ledger), reservation confirmed, seats sold. The room knows nothing.
 */
export async function payBehindTheRoom(reservationId: string): Promise<void> {
  const rows = await directQuery(
    `WITH r AS (SELECT id, user_id, amount FROM reservations WHERE id = $1 AND status = 'held'),
     balance AS (INSERT INTO balances (user_id) SELECT user_id FROM r ON CONFLICT (user_id) DO NOTHING),
     credit AS (
       INSERT INTO balance_ledger (user_id, delta, balance_after, kind)
       SELECT user_id, amount, amount, 'charge' FROM r WHERE amount > 0
     ), debit AS (
       INSERT INTO balance_ledger (user_id, delta, balance_after, kind, reference)
       SELECT user_id, -amount, 0, 'payment', id::text FROM r WHERE amount > 0
     ), payment AS (
       INSERT INTO payments (reservation_id, user_id, amount) SELECT id, user_id, amount FROM r
     ), confirmed AS (
       UPDATE reservations SET status = 'confirmed', confirmed_at = now() WHERE id IN (SELECT id FROM r)
     ), sold AS (
       UPDATE seats SET status = 'sold' WHERE id IN (SELECT seat_id FROM reservation_seats WHERE reservation_id IN (SELECT id FROM r) AND active)
     )
     SELECT id FROM r`,
    [reservationId],
  );
  if (rows.length !== 1) throw new Error(`reservation ${reservationId} is not held`);
}
