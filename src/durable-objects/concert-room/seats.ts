// The room's live seat map: synchronous functions over SqlStorage.
import { counters } from './meta.ts';

export type RoomSeatStatus = 'available' | 'held' | 'sold';

export interface RoomSeat {
  seatNumber: number;
  section: string;
  price: number;
  status: RoomSeatStatus;
}

export interface SeatSource {
  id: number;
  seatNumber: number;
  section: string;
  price: number;
  status: RoomSeatStatus;
  reservationId: string | null;
}

export function seatCounts(sql: SqlStorage): { available: number; held: number; sold: number } {
  const counts = counters(sql);
  return { available: counts['seat:available'], held: counts['seat:held'], sold: counts['seat:sold'] };
}

/** Sold out means nothing left to hold now or later: no seat available and none merely held. */
export function isSoldOut(sql: SqlStorage): boolean {
  const { available, held, sold } = seatCounts(sql);
  return available + held + sold > 0 && available === 0 && held === 0;
}

export function listSeats(sql: SqlStorage, status?: RoomSeatStatus): RoomSeat[] {
  const query = `SELECT seat_number AS seatNumber, section, price, status FROM seats ${status ? 'WHERE status = ?' : ''} ORDER BY seat_number`;
  return sql.exec<{ seatNumber: number; section: string; price: number; status: RoomSeatStatus }>(query, ...(status ? [status] : [])).toArray();
}

export interface SeatDifference {
  seatNumber: number;
  room: { status: RoomSeatStatus; reservationId: string | null } | null;
  postgres: { status: RoomSeatStatus; reservationId: string | null } | null;
}

/** A seat's state in the room, for spotting changes made while Postgres was being read. */
export type SeatState = { status: RoomSeatStatus; reservationId: string | null };

export function seatStates(sql: SqlStorage): Map<number, SeatState> {
  return new Map(
    sql
      .exec<{ seat_number: number; status: RoomSeatStatus; reservation_id: string | null }>(`SELECT seat_number, status, reservation_id FROM seats`)
      .toArray()
      .map((row) => [row.seat_number, { status: row.status, reservationId: row.reservation_id }]),
  );
}

/**
 * Makes the seat map equal to `truth` (Postgres) and lists every seat that differed. Seats for
 * which `skip` says so (changed by a request while Postgres was read) are left for next time.
 */
export function reconcileSeats(
  sql: SqlStorage,
  truth: readonly SeatSource[],
  skip: (seatNumber: number, current: SeatState | undefined) => boolean = () => false,
): SeatDifference[] {
  const current = new Map(
    sql
      .exec<{ seat_number: number; seat_id: number; status: RoomSeatStatus; reservation_id: string | null }>(
        `SELECT seat_number, seat_id, status, reservation_id FROM seats`,
      )
      .toArray()
      .map((row) => [row.seat_number, row]),
  );
  const differences: SeatDifference[] = [];
  for (const seat of truth) {
    const mine = current.get(seat.seatNumber);
    current.delete(seat.seatNumber);
    if (mine && mine.status === seat.status && mine.reservation_id === seat.reservationId) continue;
    if (skip(seat.seatNumber, mine && { status: mine.status, reservationId: mine.reservation_id })) continue;
    differences.push({
      seatNumber: seat.seatNumber,
      room: mine ? { status: mine.status, reservationId: mine.reservation_id } : null,
      postgres: { status: seat.status, reservationId: seat.reservationId },
    });
    sql.exec(
      `INSERT INTO seats (seat_number, seat_id, section, price, status, reservation_id) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (seat_number) DO UPDATE SET seat_id = excluded.seat_id, section = excluded.section, price = excluded.price,
         status = excluded.status, reservation_id = excluded.reservation_id`,
      seat.seatNumber,
      seat.id,
      seat.section,
      seat.price,
      seat.status,
      seat.reservationId,
    );
  }
  for (const [seatNumber, mine] of current) {
    differences.push({ seatNumber, room: { status: mine.status, reservationId: mine.reservation_id }, postgres: null });
    sql.exec(`DELETE FROM seats WHERE seat_number = ?`, seatNumber);
  }
  return differences;
}
