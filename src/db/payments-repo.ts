import type { Pool, PoolClient } from '@neondatabase/serverless';
import { applyBalanceChange } from './balances-repo.ts';
import { inTransaction } from './transaction.ts';

export type PaymentOutcome =
  | { ok: true; paymentId: string; amount: number; balance: number; concertId: string }
  | { ok: false; reason: 'RESERVATION_NOT_FOUND' | 'ALREADY_PAID' | 'RESERVATION_EXPIRED' | 'FENCED' }
  | { ok: false; reason: 'INSUFFICIENT_BALANCE'; balance: number; amount: number };

/** Rolls the transaction back with a business outcome rather than an error. */
class Refusal extends Error {
  readonly outcome: Exclude<PaymentOutcome, { ok: true }>;
  constructor(outcome: Exclude<PaymentOutcome, { ok: true }>) {
    super(outcome.reason);
    this.outcome = outcome;
  }
}

/**
 * Pays a held reservation from its owner's balance in one transaction: the reservation row is
 * locked, then checked (owner, held, not expired by Postgres's clock), the balance debited under the
 * fence, and the ledger row, payment row, confirmation and sold seats written. Any refusal rolls
 * everything back, so a refused payment changes nothing.
 */
export async function payReservation(
  connection: PoolClient,
  input: { reservationId: string; userId: string; fence: number | null },
): Promise<PaymentOutcome> {
  try {
    return await inTransaction(connection, async (client) => {
      const found = await client.query<{ user_id: string; status: string; amount: number; concert_id: string; live: boolean }>(
        `SELECT user_id, status, amount, concert_id, expires_at > now() AS live FROM reservations WHERE id = $1 FOR UPDATE`,
        [input.reservationId],
      );
      const reservation = found.rows[0];
      if (!reservation || reservation.user_id !== input.userId) throw new Refusal({ ok: false, reason: 'RESERVATION_NOT_FOUND' });
      if (reservation.status === 'confirmed') throw new Refusal({ ok: false, reason: 'ALREADY_PAID' });
      if (reservation.status !== 'held' || !reservation.live) throw new Refusal({ ok: false, reason: 'RESERVATION_EXPIRED' });

      const amount = reservation.amount;
      const debit = await applyBalanceChange(client, {
        userId: input.userId,
        delta: -amount,
        kind: 'payment',
        reference: input.reservationId,
        fence: input.fence,
      });
      if (!debit.ok) {
        if (debit.reason === 'INSUFFICIENT_BALANCE') throw new Refusal({ ok: false, reason: 'INSUFFICIENT_BALANCE', balance: debit.balance, amount });
        throw new Refusal({ ok: false, reason: 'FENCED' });
      }
      const payment = await client.query<{ id: string }>(
        `WITH paid AS (
           INSERT INTO payments (reservation_id, user_id, amount) VALUES ($1, $2, $3) RETURNING id
         ), confirmed AS (
           UPDATE reservations SET status = 'confirmed', confirmed_at = now() WHERE id = $1
         ), sold AS (
           UPDATE seats SET status = 'sold'
            WHERE id IN (SELECT seat_id FROM reservation_seats WHERE reservation_id = $1 AND active)
         )
         SELECT id FROM paid`,
        [input.reservationId, input.userId, amount],
      );
      return { ok: true, paymentId: payment.rows[0]!.id, amount, balance: debit.balance, concertId: reservation.concert_id };
    });
  } catch (error) {
    if (error instanceof Refusal) return error.outcome;
    throw error;
  }
}

/** Points taken by payments for one concert. */
export async function concertRevenue(pool: Pool, concertId: string): Promise<number> {
  const result = await pool.query<{ revenue: string }>(
    `SELECT COALESCE(SUM(p.amount), 0) AS revenue FROM payments p JOIN reservations r ON r.id = p.reservation_id WHERE r.concert_id = $1`,
    [concertId],
  );
  return Number(result.rows[0]?.revenue ?? 0);
}
