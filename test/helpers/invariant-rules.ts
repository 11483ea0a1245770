// The rules of DESIGN.md §6 with no runtime attached: Postgres's facts as one statement (one
// snapshot) and each room's SQLite compared with them. The tests run them inside workerd
// (./invariants.ts reads a room with runInDurableObject); bench:rush runs them from Node (a room read
// through a bench-only route). Both hand in how to query Postgres and how to read a room.

/** What to check: these concerts and users, plus (with `since`) every concert and user active since then. */
export interface InvariantScope {
  concertIds?: readonly string[];
  userIds?: readonly string[];
  /** A Postgres timestamp from `invariantMark`: concerts created and users with ledger rows since it. */
  since?: string;
}

/** How the checker reads Postgres: `directQuery` (a connection per query) or a connection kept open. */
export type QueryFn = <Row extends Record<string, unknown>>(text: string, values?: unknown[]) => Promise<Row[]>;

/** One broken rule, with what broke it. */
export interface Violation {
  rule: string;
  detail: unknown;
}

// The rules Postgres alone can be held to (§6.1–6.4), as rows naming each violation. $1: concerts,
// $2: users (the owners of the concerts' reservations are added).
export const POSTGRES_RULES = `
WITH c AS (SELECT DISTINCT unnest($1::uuid[]) AS id),
s AS (SELECT s.* FROM seats s JOIN c ON c.id = s.concert_id),
r AS (SELECT r.* FROM reservations r JOIN c ON c.id = r.concert_id),
l AS (SELECT rs.reservation_id, rs.active, s.id AS seat_id, s.concert_id, s.seat_number, s.price FROM reservation_seats rs JOIN s ON s.id = rs.seat_id),
u AS (SELECT unnest($2::text[]) AS user_id UNION SELECT user_id FROM r),
v AS (
  SELECT 'a seat has more than one live reservation' AS rule,
         jsonb_build_object('concert', concert_id, 'seat', seat_number, 'live', count(*)) AS detail
    FROM l WHERE active GROUP BY concert_id, seat_number HAVING count(*) > 1
  UNION ALL
  SELECT 'a seat''s status disagrees with its live reservation',
         jsonb_build_object('concert', s.concert_id, 'seat', s.seat_number, 'status', s.status, 'reservation', rl.reservation_id, 'reservationStatus', rr.status)
    FROM s LEFT JOIN l rl ON rl.seat_id = s.id AND rl.active LEFT JOIN reservations rr ON rr.id = rl.reservation_id
   WHERE NOT ((s.status = 'available' AND rl.reservation_id IS NULL)
           OR (s.status = 'held' AND rr.status = 'held')
           OR (s.status = 'sold' AND rr.status = 'confirmed'))
  UNION ALL
  SELECT 'a reservation''s seat link disagrees with the reservation',
         jsonb_build_object('reservation', r.id, 'status', r.status, 'seat', l.seat_number, 'active', l.active)
    FROM l JOIN r ON r.id = l.reservation_id
   WHERE l.active <> (r.status IN ('held', 'confirmed'))
  UNION ALL
  SELECT 'a live reservation''s amount is not the price of its seats',
         jsonb_build_object('reservation', r.id, 'status', r.status, 'amount', r.amount, 'seats', p.total)
    FROM r LEFT JOIN LATERAL (SELECT sum(price) AS total FROM l WHERE l.reservation_id = r.id AND l.active) p ON true
   WHERE r.status IN ('held', 'confirmed') AND r.amount IS DISTINCT FROM p.total
  UNION ALL
  SELECT 'a confirmed reservation has not exactly one payment by its owner, of its amount, before it expired',
         jsonb_build_object('reservation', r.id, 'payments', (SELECT jsonb_agg(jsonb_build_object('user', p.user_id, 'amount', p.amount, 'at', p.created_at)) FROM payments p WHERE p.reservation_id = r.id), 'expiresAt', r.expires_at)
    FROM r
   WHERE r.status IN ('confirmed', 'refunded')
     AND (SELECT count(*) FROM payments p WHERE p.reservation_id = r.id AND p.user_id = r.user_id AND p.amount = r.amount AND p.created_at < r.expires_at) <> 1
  UNION ALL
  SELECT 'a payment''s reservation is neither confirmed nor refunded',
         jsonb_build_object('payment', p.id, 'reservation', r.id, 'status', r.status)
    FROM payments p JOIN r ON r.id = p.reservation_id WHERE r.status NOT IN ('confirmed', 'refunded')
  UNION ALL
  SELECT 'a refunded reservation was not credited once, to its owner, with at most what was paid',
         jsonb_build_object('reservation', r.id, 'amount', r.amount,
                            'credits', (SELECT jsonb_agg(jsonb_build_object('user', b.user_id, 'delta', b.delta)) FROM balance_ledger b WHERE b.reference = r.id::text AND b.kind = 'refund'))
    FROM r
   WHERE r.status = 'refunded'
     AND ((SELECT count(*) FROM balance_ledger b WHERE b.reference = r.id::text AND b.kind = 'refund' AND b.user_id = r.user_id AND b.delta BETWEEN 1 AND r.amount) > 1
          OR EXISTS (SELECT 1 FROM balance_ledger b WHERE b.reference = r.id::text AND b.kind = 'refund' AND (b.user_id <> r.user_id OR b.delta NOT BETWEEN 1 AND r.amount)))
  UNION ALL
  SELECT 'a refund credit has no refunded reservation',
         jsonb_build_object('user', b.user_id, 'reference', b.reference, 'delta', b.delta)
    FROM balance_ledger b JOIN u ON u.user_id = b.user_id
   WHERE b.kind = 'refund' AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.id::text = b.reference AND r.status = 'refunded')
  UNION ALL
  SELECT 'a payment has not exactly one ledger debit of its amount',
         jsonb_build_object('payment', p.id, 'reservation', p.reservation_id, 'amount', p.amount,
                            'debits', (SELECT jsonb_agg(b.delta) FROM balance_ledger b WHERE b.reference = p.reservation_id::text AND b.kind = 'payment'))
    FROM payments p JOIN u ON u.user_id = p.user_id
   WHERE p.amount > 0
     AND (SELECT count(*) FROM balance_ledger b WHERE b.reference = p.reservation_id::text AND b.kind = 'payment' AND b.user_id = p.user_id AND b.delta = -p.amount) <> 1
  UNION ALL
  SELECT 'a ledger debit for a payment has no payment',
         jsonb_build_object('user', b.user_id, 'reference', b.reference, 'delta', b.delta)
    FROM balance_ledger b JOIN u ON u.user_id = b.user_id
   WHERE b.kind = 'payment'
     AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.reservation_id::text = b.reference AND p.user_id = b.user_id AND -b.delta = p.amount)
  UNION ALL
  SELECT 'a balance is negative or not the sum of its ledger',
         jsonb_build_object('user', u.user_id, 'balance', bal.amount, 'ledger', led.total)
    FROM u LEFT JOIN balances bal ON bal.user_id = u.user_id
    LEFT JOIN LATERAL (SELECT sum(delta) AS total FROM balance_ledger WHERE user_id = u.user_id) led ON true
   WHERE coalesce(bal.amount, 0) <> coalesce(led.total, 0) OR bal.amount < 0
  UNION ALL
  SELECT 'points are not conserved: charges - uses - payments + refunds <> balances',
         jsonb_build_object('charges', t.charges, 'uses', t.uses, 'payments', t.payments, 'refunds', t.refunds, 'balances', t.balances)
    FROM (SELECT (SELECT coalesce(sum(delta), 0) FROM balance_ledger b JOIN u USING (user_id) WHERE kind = 'charge') AS charges,
                 (SELECT coalesce(-sum(delta), 0) FROM balance_ledger b JOIN u USING (user_id) WHERE kind = 'use') AS uses,
                 (SELECT coalesce(sum(amount), 0) FROM payments p JOIN u USING (user_id)) AS payments,
                 (SELECT coalesce(sum(delta), 0) FROM balance_ledger b JOIN u USING (user_id) WHERE kind = 'refund') AS refunds,
                 (SELECT coalesce(sum(amount), 0) FROM balances b JOIN u USING (user_id)) AS balances) t
   WHERE t.charges - t.uses - t.payments + t.refunds <> t.balances
)
SELECT
  (SELECT coalesce(jsonb_agg(jsonb_build_object('rule', rule, 'detail', detail)), '[]') FROM v) AS violations,
  (SELECT coalesce(jsonb_agg(jsonb_build_object('concert', s.concert_id, 'seat', s.seat_number, 'section', s.section, 'price', s.price, 'status', s.status,
                                                'reservation', (SELECT reservation_id FROM l WHERE l.seat_id = s.id AND l.active LIMIT 1))
                             ORDER BY s.concert_id, s.seat_number), '[]') FROM s) AS seats,
  (SELECT coalesce(jsonb_agg(jsonb_build_object('concert', r.concert_id, 'id', r.id, 'user', r.user_id, 'status', r.status)), '[]')
     FROM r WHERE r.status IN ('held', 'confirmed')) AS live`;

interface PostgresView {
  violations: Violation[];
  seats: { concert: string; seat: number; section: string; price: number; status: string; reservation: string | null }[];
  live: { concert: string; id: string; user: string; status: 'held' | 'confirmed' }[];
}

/** Concerts created, and users who moved points or held seats, since `mark`. */
async function scopeSince(mark: string, query: QueryFn): Promise<{ concertIds: string[]; userIds: string[] }> {
  const [row] = await query<{ concerts: string[]; users: string[] }>(
    `SELECT (SELECT coalesce(array_agg(id::text), '{}') FROM concerts WHERE created_at >= $1::timestamptz) AS concerts,
            (SELECT coalesce(array_agg(DISTINCT user_id), '{}') FROM (
               SELECT user_id FROM balance_ledger WHERE created_at >= $1::timestamptz
               UNION SELECT user_id FROM reservations WHERE created_at >= $1::timestamptz) x) AS users`,
    [mark],
  );
  return { concertIds: row!.concerts, userIds: row!.users };
}

/** A room's own state: its seat map through its RPC surface, its holds and line from its SQLite. */
export interface RoomView {
  seats: { seatNumber: number; section: string; price: number; status: string }[];
  links: { seat_number: number; reservation_id: string | null }[];
  /** `seq`: the place in line the hold was made through; 0 for a waitlist offer or one adopted from Postgres. */
  holds: { reservation_id: string; user_id: string; status: string; seq: number; created_at: number }[];
  /** In seq order: the order of joining, which admission must follow (FIFO). */
  line: LineRow[];
  /** When the line sold out (the room's latch), or null while it has not. */
  soldOutAt: number | null;
  /** When each waitlist entry (or its latest re-join) was made. */
  waitlist: { user_id: string; created_at: number }[];
}

/** One place in a room's line, as its SQLite keeps it. */
export type LineRow = {
  seq: number;
  user_id: string;
  status: string;
  admitted_at: number | null;
  session_expires_at: number | null;
};

/** The tables of {@link RoomView} besides the seat map, read from a room's own SQLite. */
export function readRoomTables(sql: SqlStorage): Omit<RoomView, 'seats'> {
  return {
    links: sql.exec<{ seat_number: number; reservation_id: string | null }>(`SELECT seat_number, reservation_id FROM seats ORDER BY seat_number`).toArray(),
    holds: sql
      .exec<{ reservation_id: string; user_id: string; status: string; seq: number; created_at: number }>(`SELECT reservation_id, user_id, status, seq, created_at FROM holds`)
      .toArray(),
    line: sql.exec<LineRow>(`SELECT seq, user_id, status, admitted_at, session_expires_at FROM line ORDER BY seq`).toArray(),
    soldOutAt:
      (JSON.parse(sql.exec<{ value: string }>(`SELECT value FROM room_meta WHERE key = 'soldOut'`).toArray()[0]?.value ?? 'null') as { at: number } | null)?.at ?? null,
    waitlist: sql.exec<{ user_id: string; created_at: number }>(`SELECT user_id, created_at FROM waitlist`).toArray(),
  };
}

/** Where one room disagrees with Postgres (§6.7), or keeps state no request will ever settle. */
function compareRoom(concertId: string, mine: RoomView, pg: PostgresView): Violation[] {
  const found: Violation[] = [];
  const theirs = pg.seats.filter((seat) => seat.concert === concertId);
  const map = mine.seats.map(({ seatNumber, section, price, status }) => ({ seatNumber, section, price, status }));
  const expected = theirs.map((seat) => ({ seatNumber: seat.seat, section: seat.section, price: seat.price, status: seat.status }));
  if (JSON.stringify(map) !== JSON.stringify(expected)) {
    const differing = expected.filter((seat, i) => JSON.stringify(seat) !== JSON.stringify(map[i]));
    found.push({ rule: 'the room’s seat map differs from Postgres', detail: { concertId, postgres: differing, room: map.filter((s) => differing.some((d) => d.seatNumber === s.seatNumber)) } });
  }
  const roomLinks = new Map(mine.links.map((row) => [row.seat_number, row.reservation_id]));
  for (const seat of theirs) {
    const reservation = roomLinks.get(seat.seat) ?? null;
    if (reservation !== seat.reservation) {
      found.push({ rule: 'a seat belongs to another reservation in the room than in Postgres', detail: { concertId, seat: seat.seat, room: reservation, postgres: seat.reservation } });
    }
  }
  const live = new Map(pg.live.filter((r) => r.concert === concertId).map((r) => [r.id, r]));
  const holds = new Map(mine.holds.map((hold) => [hold.reservation_id, hold]));
  for (const hold of mine.holds) {
    if (hold.status === 'pending') found.push({ rule: 'a hold is still pending after quiet', detail: { concertId, hold } });
    else if ((hold.status === 'held' || hold.status === 'confirmed') && live.get(hold.reservation_id)?.status !== hold.status) {
      found.push({ rule: 'a live hold in the room is not live in Postgres', detail: { concertId, hold, postgres: live.get(hold.reservation_id)?.status ?? null } });
    }
  }
  for (const reservation of live.values()) {
    if (holds.get(reservation.id)?.status !== reservation.status) {
      found.push({ rule: 'a live reservation in Postgres is not live in its room', detail: { concertId, reservation, room: holds.get(reservation.id)?.status ?? null } });
    }
  }
  // Paying ends the buyer's session (DESIGN.md §3), however the room learnt of the payment. A hold
  // made through no place in line (seq 0: a waitlist offer) may be paid by a fan still waiting in a
  // sold-out line, who had no session: that place stays.
  const lineStatus = new Map(mine.line.map((row) => [row.user_id, row.status]));
  for (const reservation of live.values()) {
    const status = lineStatus.get(reservation.user);
    const throughLine = (holds.get(reservation.id)?.seq ?? 0) !== 0;
    if (reservation.status === 'confirmed' && (status === 'admitted' || (status === 'waiting' && throughLine))) {
      found.push({ rule: 'a buyer’s session did not end with their payment', detail: { concertId, user: reservation.user, status } });
    }
  }
  // The waitlist opens only once the line has sold out, and from then on seats go only to it (issue 18).
  for (const entry of mine.waitlist) {
    if (mine.soldOutAt === null || entry.created_at < mine.soldOutAt) {
      found.push({ rule: 'a waitlist entry was made before the line sold out', detail: { concertId, entry, soldOutAt: mine.soldOutAt } });
    }
  }
  for (const hold of mine.holds) {
    if (mine.soldOutAt !== null && hold.seq !== 0 && hold.created_at > mine.soldOutAt) {
      found.push({ rule: 'a place in line held seats after the line sold out', detail: { concertId, hold, soldOutAt: mine.soldOutAt } });
    }
  }
  return found;
}

/** How the checker reaches Postgres and the rooms. */
export interface InvariantSources {
  query: QueryFn;
  readRoom: (concertId: string) => Promise<RoomView>;
}

/**
 * Checks DESIGN.md §6 over a scope and returns every violation (none: an empty list): one live
 * reservation per seat, sold ⇔ confirmed ⇔ one payment ⇔ one ledger debit, paid by the owner before
 * expiry, balances = ledger sums and ≥ 0, points conserved, and each room's seat map, seat owners,
 * holds and finished sessions equal to Postgres (waiting up to `settleMs` for the rooms to agree:
 * a room finishes some work in the background, "after quiet", §6.7).
 */
export async function findViolationsWith(sources: InvariantSources, scope: InvariantScope, settleMs: number): Promise<Violation[]> {
  const { query, readRoom } = sources;
  const since = scope.since ? await scopeSince(scope.since, query) : { concertIds: [], userIds: [] };
  const concertIds = [...new Set([...(scope.concertIds ?? []), ...since.concertIds])];
  const userIds = [...new Set([...(scope.userIds ?? []), ...since.userIds])];
  const deadline = Date.now() + settleMs;
  for (;;) {
    const [pg] = await query<{ violations: Violation[]; seats: PostgresView['seats']; live: PostgresView['live'] }>(POSTGRES_RULES, [concertIds, userIds]);
    const view = pg!;
    const found = [...view.violations];
    for (const concertId of concertIds) found.push(...compareRoom(concertId, await readRoom(concertId), view));
    if (found.length === 0 || view.violations.length > 0 || Date.now() >= deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
