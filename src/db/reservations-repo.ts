import type { Pool } from '@neondatabase/serverless';
import type { Sql } from './http.ts';
import { isRecordConflict, LIVE_RECORD, recordCtes, type IdempotencyClaim } from '../lib/idempotency.ts';
import { isUniqueViolation, sqlState } from './errors.ts';

/** Anything with pg's `query(text, values)`: the room's pool or one of its clients. */
export type Queryable = Pick<Pool, 'query'>;

export interface NewHold {
  reservationId: string;
  concertId: string;
  userId: string;
  amount: number;
  expiresAt: number;
  seatIds: readonly number[];
}

/** Postgres refused a hold the room allowed: another live reservation owns one of the seats. */
export class SeatConflictError extends Error {
  override name = 'SeatConflictError';
}

/** A response to store with the effect that produced it (DESIGN.md §5 Idempotency). */
export interface RecordedResponse {
  claim: IdempotencyClaim;
  status: number;
  body: string;
}

/**
 * The statement that writes a hold in ONE round trip, atomic on its own: the reservation, its seats'
 * links (the partial unique index allows one live reservation per seat), the seats' status and,
 * when given, the idempotency record of the response. It fails with 23505 when Postgres already has
 * any of the seats taken; it then changed nothing.
 *
 * The seats are found by primary key only. Their concert and status are checked with IS NOT DISTINCT
 * FROM (the same as `=` on these NOT NULL columns) because `=` lets the planner walk
 * seats_concert_status_idx instead, and it does so for a concert created since the last ANALYZE,
 * which is every concert at its on-sale: each hold then read all its seats (60 ms at 50,000 seats).
 */
export function holdStatement(hold: NewHold, record?: RecordedResponse): { text: string; values: unknown[] } {
  const { ctes, values } = recordCtes(record?.claim, 7, { status: record?.status ?? 201, body: record?.body ?? '' });
  return {
    text: `WITH reservation AS (
         INSERT INTO reservations (id, concert_id, user_id, status, amount, expires_at) VALUES ($1, $2, $3, 'held', $4, $5) RETURNING id
       ), linked AS (
         INSERT INTO reservation_seats (reservation_id, seat_id, active) SELECT $1, unnest($6::bigint[]), true RETURNING seat_id
       ), marked AS (
         UPDATE seats SET status = 'held'
          WHERE id = ANY($6::bigint[]) AND (concert_id, status) IS NOT DISTINCT FROM ($2::uuid, 'available')
         RETURNING id
       ), ${ctes}
       SELECT CASE WHEN (SELECT count(*) FROM marked) <> cardinality($6::bigint[])
                   THEN frontrow_fail('23505', 'a seat is not available in Postgres') END AS refused`,
    values: [hold.reservationId, hold.concertId, hold.userId, hold.amount, new Date(hold.expiresAt), hold.seatIds, ...values],
  };
}

/** Writes a hold (see holdStatement). Throws SeatConflictError when any of its seats is taken. */
export async function insertHold(db: Queryable, hold: NewHold, record?: RecordedResponse): Promise<void> {
  const { text, values } = holdStatement(hold, record);
  try {
    await db.query(text, values);
  } catch (error) {
    if (isUniqueViolation(error) && !isRecordConflict(error)) throw new SeatConflictError('a seat has a live reservation', { cause: error });
    throw error;
  }
}

/**
 * Several holds of one concert in ONE statement (the room's group commit), all or nothing: the same
 * writes as holdStatement for each, with each hold's idempotency record. The room never places two
 * live holds on one seat, so the holds' seats are disjoint; should Postgres have any of them taken,
 * or a record for one of the keys be live, the statement fails and wrote nothing, and the caller
 * writes each hold on its own to learn which one was refused.
 */
export function holdsStatement(concertId: string, holds: readonly { hold: NewHold; record?: RecordedResponse | undefined }[]): { text: string; values: unknown[] } {
  const seatHolds = holds.flatMap(({ hold }) => hold.seatIds.map(() => hold.reservationId));
  const seatIds = holds.flatMap(({ hold }) => hold.seatIds);
  const recorded = holds.filter(({ record }) => record !== undefined).map(({ record }) => record!);
  return {
    text: `WITH reservation AS (
         INSERT INTO reservations (id, concert_id, user_id, status, amount, expires_at)
         SELECT id, $1, user_id, 'held', amount, expires_at FROM unnest($2::uuid[], $3::text[], $4::int[], $5::timestamptz[]) AS h(id, user_id, amount, expires_at)
         RETURNING id
       ), linked AS (
         INSERT INTO reservation_seats (reservation_id, seat_id, active) SELECT reservation_id, seat_id, true FROM unnest($6::uuid[], $7::bigint[]) AS l(reservation_id, seat_id)
         RETURNING seat_id
       ), marked AS (
         UPDATE seats SET status = 'held'
          WHERE id = ANY($7::bigint[]) AND (concert_id, status) IS NOT DISTINCT FROM ($1::uuid, 'available')
         RETURNING id
       ), stale_record AS (
         DELETE FROM idempotency_keys k USING unnest($8::text[], $9::text[]) AS r(user_id, key)
          WHERE k.user_id = r.user_id AND k.key = r.key AND NOT (${LIVE_RECORD}) RETURNING 1
       ), recorded AS (
         INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, body)
         SELECT user_id, key, request_hash, status_code, to_jsonb(body) FROM unnest($8::text[], $9::text[], $10::text[], $11::int[], $12::text[]) AS r(user_id, key, request_hash, status_code, body)
          WHERE (SELECT count(*) FROM stale_record) >= 0
       )
       SELECT CASE WHEN (SELECT count(*) FROM marked) <> cardinality($7::bigint[])
                   THEN frontrow_fail('23505', 'a seat is not available in Postgres') END AS refused`,
    values: [
      concertId,
      holds.map(({ hold }) => hold.reservationId),
      holds.map(({ hold }) => hold.userId),
      holds.map(({ hold }) => hold.amount),
      holds.map(({ hold }) => new Date(hold.expiresAt)),
      seatHolds,
      seatIds,
      recorded.map((record) => record.claim.userId),
      recorded.map((record) => record.claim.key),
      recorded.map((record) => record.claim.requestHash),
      recorded.map((record) => record.status),
      recorded.map((record) => record.body),
    ],
  };
}

/** Writes several holds at once (see holdsStatement); any refusal refuses them all. */
export async function insertHolds(db: Queryable, concertId: string, holds: readonly { hold: NewHold; record?: RecordedResponse | undefined }[]): Promise<void> {
  const { text, values } = holdsStatement(concertId, holds);
  await db.query(text, values);
}

export type PaymentOutcome =
  | { ok: true; paymentId: string; amount: number; balance: number; body: string }
  | { ok: false; reason: 'RESERVATION_NOT_FOUND' | 'ALREADY_PAID' | 'RESERVATION_EXPIRED' }
  /** The fence Postgres holds is not below the grant's: a stale lock holder, or a Redis that lost its counter. */
  | { ok: false; reason: 'FENCED'; storedFence: number }
  | { ok: false; reason: 'INSUFFICIENT_BALANCE'; balance: number; amount: number };

/**
 * Pays a held reservation from its owner's balance in ONE statement (DESIGN.md §5 Pay): the
 * reservation row is locked and checked (owner, held, not expired by Postgres's clock), the balance
 * debited under the fence, and the ledger row, payment row, confirmation, sold seats and the
 * idempotency record written, all or nothing. The response body is built by the statement itself
 * (it knows the balance after), so the stored record and the reply are the same bytes.
 */
export async function payReservation(
  db: Queryable,
  input: { reservationId: string; userId: string; fence: number | null; claim?: IdempotencyClaim | undefined },
): Promise<PaymentOutcome> {
  const paymentId = crypto.randomUUID();
  for (let attempt = 0; attempt < 2; attempt++) {
    const { ctes, values } = recordCtes(input.claim, 5, { status: 201, bodySql: '(SELECT text FROM body)', whenCte: 'debit' });
    const sqlText = `WITH r AS (
         SELECT user_id, status, amount, concert_id, expires_at > now() AS live FROM reservations WHERE id = $1 FOR UPDATE
       ), debit AS (
         UPDATE balances b SET amount = b.amount - r.amount, fence = COALESCE($3, b.fence)
           FROM r
          WHERE b.user_id = $2 AND r.user_id = $2 AND r.status = 'held' AND r.live
            AND ($3::bigint IS NULL OR b.fence < $3) AND b.amount >= r.amount
         RETURNING b.amount AS balance, r.amount AS paid
       ), ledger AS (
         INSERT INTO balance_ledger (user_id, delta, balance_after, kind, reference)
         SELECT $2, -paid, balance, 'payment', $1 FROM debit WHERE paid <> 0
       ), payment AS (
         INSERT INTO payments (id, reservation_id, user_id, amount) SELECT $4, $1, $2, paid FROM debit RETURNING id
       ), confirmed AS (
         UPDATE reservations SET status = 'confirmed', confirmed_at = now() WHERE id = $1 AND EXISTS (SELECT 1 FROM debit)
       ), sold AS (
         UPDATE seats SET status = 'sold'
          WHERE id IN (SELECT seat_id FROM reservation_seats WHERE reservation_id = $1 AND active) AND EXISTS (SELECT 1 FROM debit)
       ), body AS (
         SELECT '{"paymentId":"' || $4 || '","reservationId":"' || $1 || '","amount":' || paid || ',"balance":' || balance || ',"status":"confirmed"}' AS text
           FROM debit
       ), ${ctes}
       SELECT r.user_id, r.status, r.amount, r.live, (SELECT text FROM body) AS body, (SELECT balance FROM debit) AS balance,
              b.amount AS current_amount, b.fence AS current_fence
         FROM (SELECT 1) AS one LEFT JOIN r ON true LEFT JOIN balances b ON b.user_id = $2`;
    const rows = (
      await db.query<{
        user_id: string | null;
        status: string | null;
        amount: number | null;
        live: boolean | null;
        body: string | null;
        balance: string | null;
        current_amount: string | null;
        current_fence: string | null;
      }>(sqlText, [input.reservationId, input.userId, input.fence, paymentId, ...values])
    ).rows;
    const row = rows[0];
    if (!row || row.user_id !== input.userId) return { ok: false, reason: 'RESERVATION_NOT_FOUND' };
    if (row.body !== null && row.balance !== null) {
      return { ok: true, paymentId, amount: row.amount ?? 0, balance: Number(row.balance), body: row.body };
    }
    if (row.status === 'confirmed') return { ok: false, reason: 'ALREADY_PAID' };
    if (row.status !== 'held' || !row.live) return { ok: false, reason: 'RESERVATION_EXPIRED' };
    if (row.current_amount === null) {
      // The payer has never had a balance: make the zero row, and let the statement decide again.
      await db.query(`INSERT INTO balances (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING`, [input.userId]);
      continue;
    }
    if (input.fence !== null && Number(row.current_fence) >= input.fence) return { ok: false, reason: 'FENCED', storedFence: Number(row.current_fence) };
    return { ok: false, reason: 'INSUFFICIENT_BALANCE', balance: Number(row.current_amount), amount: row.amount ?? 0 };
  }
  return { ok: false, reason: 'INSUFFICIENT_BALANCE', balance: 0, amount: 0 };
}

export type RefundOutcome =
  | { ok: true; refunded: number; fee: number; balance: number; refundedAt: string }
  | { ok: false; reason: 'RESERVATION_NOT_FOUND' | 'RESERVATION_NOT_PAID' | 'REFUND_DEADLINE_PASSED' | 'BALANCE_LIMIT' };

interface RefundRow {
  user_id: string | null;
  status: ReservationState | null;
  amount: number | null;
  credit: number | null;
  fee: number | null;
  balance: string | null;
  refunded_at: Date | null;
}

/**
 * Refunds a paid reservation to points in ONE statement (issue 13): the reservation is locked and
 * checked (paid; the caller's unless `byAdmin`; before the concert's cut-off unless `byAdmin`), marked
 * refunded, its seats freed (links inactive, seats available), and the amount less the concert's fee
 * (no fee when `byAdmin`) credited with its ledger row, all or nothing. A reservation already
 * refunded answers with that refund, so a retry changes nothing. The unique index on the
 * refund's ledger row is the last guard against a second credit.
 */
export async function refundReservation(
  db: Queryable,
  input: { reservationId: string; userId: string | null; byAdmin: boolean },
): Promise<RefundOutcome> {
  let rows: RefundRow[];
  try {
    ({ rows } = await db.query<RefundRow>(
      `WITH r AS (
         SELECT r.user_id, r.status, r.amount, c.refund_fee, r.refunded_at,
                now() < c.starts_at - make_interval(hours => c.refund_cutoff_hours) AS open
           FROM reservations r JOIN concerts c ON c.id = r.concert_id
          WHERE r.id = $1 FOR UPDATE OF r
       ), allowed AS (
         SELECT user_id, amount, CASE WHEN $3 THEN 0 ELSE LEAST(refund_fee, amount) END AS fee
           FROM r WHERE status = 'confirmed' AND ($2::text IS NULL OR user_id = $2) AND ($3 OR open)
       ), refunded AS (
         UPDATE reservations SET status = 'refunded', refunded_at = now() WHERE id = $1 AND EXISTS (SELECT 1 FROM allowed)
         RETURNING refunded_at
       ), freed AS (
         UPDATE reservation_seats SET active = false WHERE reservation_id = $1 AND active AND EXISTS (SELECT 1 FROM allowed) RETURNING seat_id
       ), released AS (
         UPDATE seats SET status = 'available' WHERE id IN (SELECT seat_id FROM freed) AND status = 'sold'
       ), credited AS (
         INSERT INTO balances (user_id, amount) SELECT user_id, amount - fee FROM allowed
         ON CONFLICT (user_id) DO UPDATE SET amount = balances.amount + EXCLUDED.amount
         RETURNING amount AS balance
       ), ledger AS (
         INSERT INTO balance_ledger (user_id, delta, balance_after, kind, reference)
         SELECT a.user_id, a.amount - a.fee, c.balance, 'refund', $1 FROM allowed a, credited c WHERE a.amount - a.fee <> 0
       )
       SELECT r.user_id, r.status, r.amount, (SELECT amount - fee FROM allowed) AS credit, (SELECT fee FROM allowed) AS fee,
              (SELECT balance FROM credited) AS balance, COALESCE((SELECT refunded_at FROM refunded), r.refunded_at) AS refunded_at
         FROM (SELECT 1) AS one LEFT JOIN r ON true`,
      [input.reservationId, input.userId, input.byAdmin],
    ));
  } catch (error) {
    // The balance's CHECK (at most 1,000,000,000) refused the credit; the statement changed nothing.
    if (sqlState(error) === '23514') return { ok: false, reason: 'BALANCE_LIMIT' };
    throw error;
  }
  const row = rows[0];
  if (!row?.status || (input.userId !== null && row.user_id !== input.userId)) return { ok: false, reason: 'RESERVATION_NOT_FOUND' };
  if (row.credit !== null && row.balance !== null) {
    return { ok: true, refunded: row.credit, fee: row.fee ?? 0, balance: Number(row.balance), refundedAt: row.refunded_at!.toISOString() };
  }
  if (row.status === 'refunded') {
    // Already refunded (or refunded by a concurrent call this one waited for): the same answer again,
    // from the refund's ledger row. A second statement on purpose: the first one's snapshot predates
    // the lock wait, so it would see no credit yet and the balance before it.
    const { rows: [prior] } = await db.query<{ credit: string | null; balance_after: string | null; balance: string | null }>(
      `SELECT l.delta AS credit, l.balance_after, b.amount AS balance
         FROM (SELECT 1) AS one
         LEFT JOIN balance_ledger l ON l.reference = $1::text AND l.kind = 'refund'
         LEFT JOIN balances b ON b.user_id = $2`,
      [input.reservationId, row.user_id],
    );
    const refunded = Number(prior?.credit ?? 0);
    // No ledger row when the fee took it all: nothing moved, so the balance now is the best answer.
    const balance = Number(prior?.balance_after ?? prior?.balance ?? 0);
    return { ok: true, refunded, fee: (row.amount ?? 0) - refunded, balance, refundedAt: row.refunded_at!.toISOString() };
  }
  if (row.status !== 'confirmed') return { ok: false, reason: 'RESERVATION_NOT_PAID' };
  return { ok: false, reason: 'REFUND_DEADLINE_PASSED' };
}

export type ReservationState = 'held' | 'confirmed' | 'expired' | 'cancelled' | 'refunded';

/**
 * Ends the given holds that are still `held` (expiry or cancellation), frees their seats, and
 * reports every reservation's state afterwards so the room can follow Postgres exactly. Expiry is
 * guarded by Postgres's clock: a hold whose `expires_at` has not passed by `now()` stays held (and is
 * reported `held`), whatever the caller's clock says, so an alarm that runs early or twice, or a room
 * whose clock runs ahead, never ends a hold its owner may still pay (payment checks the same clock).
 */
export async function endHolds(
  db: Queryable,
  reservationIds: readonly string[],
  to: 'expired' | 'cancelled',
  onlyUserId?: string,
): Promise<Map<string, ReservationState>> {
  if (reservationIds.length === 0) return new Map();
  // One statement: atomic on its own, one round trip. Its final SELECT reads the snapshot from
  // before the UPDATE, so the ended ones take their new state from `ended`.
  const result = await db.query<{ id: string; status: ReservationState }>(
    `WITH ended AS (
       UPDATE reservations SET status = $2
        WHERE id = ANY($1::uuid[]) AND status = 'held' AND ($3::text IS NULL OR user_id = $3)
          AND ($2::text <> 'expired' OR expires_at <= now())
        RETURNING id
     ), freed AS (
       UPDATE reservation_seats SET active = false WHERE reservation_id IN (SELECT id FROM ended) AND active RETURNING seat_id
     ), released AS (
       UPDATE seats SET status = 'available' WHERE id IN (SELECT seat_id FROM freed) AND status = 'held'
     )
     SELECT r.id, CASE WHEN e.id IS NULL THEN r.status ELSE $2 END AS status
       FROM reservations r LEFT JOIN ended e ON e.id = r.id
      WHERE r.id = ANY($1::uuid[])`,
    [reservationIds, to, onlyUserId ?? null],
  );
  return new Map(result.rows.map((row) => [row.id, row.status]));
}

export interface ReservationView {
  reservationId: string;
  concertId: string;
  userId: string;
  status: ReservationState;
  amount: number;
  expiresAt: string;
  createdAt: string;
  confirmedAt: string | null;
  seats: { seatNumber: number; section: string; price: number }[];
}

type ReservationRecord = {
  id: string;
  concert_id: string;
  user_id: string;
  status: ReservationState;
  amount: number;
  expires_at: Date;
  created_at: Date;
  confirmed_at: Date | null;
  seats: { seatNumber: number; section: string; price: number }[] | null;
};

/** One reservation with its seats, or undefined. Ownership is the caller's check. */
export async function findReservation(sql: Sql, reservationId: string): Promise<ReservationView | undefined> {
  const rows = (await sql.query(
    `SELECT r.id, r.concert_id, r.user_id, r.status, r.amount, r.expires_at, r.created_at, r.confirmed_at,
            (SELECT json_agg(json_build_object('seatNumber', s.seat_number, 'section', s.section, 'price', s.price) ORDER BY s.seat_number)
               FROM reservation_seats rs JOIN seats s ON s.id = rs.seat_id WHERE rs.reservation_id = r.id) AS seats
       FROM reservations r WHERE r.id = $1`,
    [reservationId],
  )) as ReservationRecord[];
  const row = rows[0];
  if (!row) return undefined;
  return {
    reservationId: row.id,
    concertId: row.concert_id,
    userId: row.user_id,
    status: row.status,
    amount: row.amount,
    expiresAt: row.expires_at.toISOString(),
    createdAt: row.created_at.toISOString(),
    confirmedAt: row.confirmed_at?.toISOString() ?? null,
    seats: row.seats ?? [],
  };
}

/**
 * Settles whether a hold whose reply was lost was written, for good: inserts a cancelled placeholder
 * (no seats) under its id unless the hold is there, so a hold statement still on its way fails on
 * the primary key, and one still running is waited for. Then, with a fresh snapshot, a hold that
 * owns seats was written. Safe to repeat (a placeholder of an earlier try has no seats either).
 * True: it was written; false: it never will be.
 */
export async function settleHoldWrite(sql: Sql, hold: NewHold): Promise<boolean> {
  const [, written] = (await sql.transaction([
    sql.query(
      `INSERT INTO reservations (id, concert_id, user_id, status, amount, expires_at) VALUES ($1, $2, $3, 'cancelled', $4, $5)
       ON CONFLICT (id) DO NOTHING`,
      [hold.reservationId, hold.concertId, hold.userId, hold.amount, new Date(hold.expiresAt)],
    ),
    sql.query(`SELECT EXISTS (SELECT 1 FROM reservation_seats WHERE reservation_id = $1) AS written`, [hold.reservationId]),
  ])) as [unknown, { written: boolean }[]];
  return written[0]?.written === true;
}

/**
 * The reservation's status in Postgres once a payment attempt with `fenced.fence` is settled: the
 * balance is fenced at it first (one READ COMMITTED batch, as in {@link readPaymentOf}), so that
 * payment can no longer commit behind this answer. What a room follows for a payment whose reply and
 * read-back were lost: the payment row alone does not say the seats are sold, since a refund may have
 * come since. Undefined when there is no such reservation.
 */
export async function settledStatusOf(
  sql: Sql,
  reservationId: string,
  fenced: { userId: string; fence: number | null },
): Promise<ReservationState | undefined> {
  const read = sql.query(`SELECT status FROM reservations WHERE id = $1::uuid`, [reservationId]);
  const results = fenced.fence
    ? await sql.transaction([sql.query(`UPDATE balances SET fence = GREATEST(fence, $2) WHERE user_id = $1`, [fenced.userId, fenced.fence]), read])
    : [await read];
  return (results.at(-1) as { status: ReservationState }[])[0]?.status;
}

/**
 * A payment that Postgres has for the reservation, as the payment statement answered it (same body
 * bytes), for reading back a payment whose reply was lost; undefined when it was not paid. With the
 * lock's fence, the balance is fenced at it first, so a payment statement still on its way can no
 * longer commit behind this answer (one still running is waited for).
 */
export async function readPaymentOf(
  sql: Sql,
  reservationId: string,
  fenced?: { userId: string; fence: number | null },
): Promise<Extract<PaymentOutcome, { ok: true }> | undefined> {
  const read = sql.query(
    `SELECT p.id, p.amount,
            COALESCE((SELECT balance_after FROM balance_ledger WHERE reference = $1::text AND kind = 'payment' ORDER BY id DESC LIMIT 1),
                     (SELECT amount FROM balances WHERE user_id = p.user_id)) AS balance
       FROM payments p WHERE p.reservation_id = $1::uuid`,
    [reservationId],
  );
  // Two statements of one READ COMMITTED batch: the read takes its snapshot after the fence is in.
  const results = fenced?.fence
    ? await sql.transaction([
        sql.query(`UPDATE balances SET fence = GREATEST(fence, $2) WHERE user_id = $1`, [fenced.userId, fenced.fence]),
        read,
      ])
    : [await read];
  const rows = results.at(-1) as { id: string; amount: number; balance: string }[];
  const row = rows[0];
  if (!row) return undefined;
  const balance = Number(row.balance);
  const body = `{"paymentId":"${row.id}","reservationId":"${reservationId}","amount":${row.amount},"balance":${balance},"status":"confirmed"}`;
  return { ok: true, paymentId: row.id, amount: row.amount, balance, body };
}
