import { ENTRY_SPENT_MIGRATION } from './entry.ts';
/**
 * The room's SQLite schema, as ordered migrations. Applied once in the constructor; `_schema`
 * records how far this object's storage has come, so each step runs exactly once per object.
 * Append only: a shipped step is never edited.
 */
export const ROOM_MIGRATIONS: readonly string[] = [
  `CREATE TABLE room_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

   -- The waiting line. seq is the place in line and never changes; admission goes strictly by seq.
   CREATE TABLE line (
     seq                INTEGER PRIMARY KEY,
     user_id            TEXT NOT NULL UNIQUE,
     jti                TEXT NOT NULL,
     issued_at          INTEGER NOT NULL,
     status             TEXT NOT NULL CHECK (status IN ('waiting', 'admitted', 'completed', 'expired')),
     admitted_at        INTEGER,
     session_expires_at INTEGER,
     ended_at           INTEGER
   );
   CREATE INDEX line_status_seq ON line (status, seq);
   CREATE INDEX line_live_sessions ON line (session_expires_at) WHERE status = 'admitted';

   -- Live seat map; Postgres holds the same facts and wins on reconciliation.
   CREATE TABLE seats (
     seat_number    INTEGER PRIMARY KEY,
     seat_id        INTEGER NOT NULL UNIQUE,
     section        TEXT NOT NULL,
     price          INTEGER NOT NULL,
     status         TEXT NOT NULL CHECK (status IN ('available', 'held', 'sold')),
     reservation_id TEXT
   );
   CREATE INDEX seats_status ON seats (status);
   CREATE INDEX seats_reservation ON seats (reservation_id) WHERE reservation_id IS NOT NULL;

   -- Holds this room has made. 'pending' while the Postgres write is in flight.
   CREATE TABLE holds (
     reservation_id TEXT PRIMARY KEY,
     user_id        TEXT NOT NULL,
     seq            INTEGER NOT NULL,
     amount         INTEGER NOT NULL,
     expires_at     INTEGER NOT NULL,
     status         TEXT NOT NULL CHECK (status IN ('pending', 'held', 'confirmed', 'expired', 'cancelled')),
     created_at     INTEGER NOT NULL
   );
   CREATE INDEX holds_live_expiry ON holds (expires_at) WHERE status IN ('pending', 'held');
   CREATE INDEX holds_user ON holds (user_id, status);`,

  // Counters of line and seat states, kept by triggers in the same transaction as every change, so
  // no request path ever counts rows (DESIGN.md §5). Hold expiry asks for status = 'held', which the
  // old partial index (status IN ('pending', 'held')) does not serve: replace it with one that does.
  `CREATE TABLE room_counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
   INSERT INTO room_counts (name, n)
     SELECT 'line:' || s, (SELECT COUNT(*) FROM line WHERE status = s)
       FROM (SELECT 'waiting' AS s UNION ALL SELECT 'admitted' UNION ALL SELECT 'completed' UNION ALL SELECT 'expired');
   INSERT INTO room_counts (name, n)
     SELECT 'seat:' || s, (SELECT COUNT(*) FROM seats WHERE status = s)
       FROM (SELECT 'available' AS s UNION ALL SELECT 'held' UNION ALL SELECT 'sold');

   CREATE TRIGGER line_counts_insert AFTER INSERT ON line BEGIN
     UPDATE room_counts SET n = n + 1 WHERE name = 'line:' || new.status;
   END;
   CREATE TRIGGER line_counts_update AFTER UPDATE OF status ON line WHEN old.status <> new.status BEGIN
     UPDATE room_counts SET n = n - 1 WHERE name = 'line:' || old.status;
     UPDATE room_counts SET n = n + 1 WHERE name = 'line:' || new.status;
   END;
   CREATE TRIGGER line_counts_delete AFTER DELETE ON line BEGIN
     UPDATE room_counts SET n = n - 1 WHERE name = 'line:' || old.status;
   END;
   CREATE TRIGGER seat_counts_insert AFTER INSERT ON seats BEGIN
     UPDATE room_counts SET n = n + 1 WHERE name = 'seat:' || new.status;
   END;
   CREATE TRIGGER seat_counts_update AFTER UPDATE OF status ON seats WHEN old.status <> new.status BEGIN
     UPDATE room_counts SET n = n - 1 WHERE name = 'seat:' || old.status;
     UPDATE room_counts SET n = n + 1 WHERE name = 'seat:' || new.status;
   END;
   CREATE TRIGGER seat_counts_delete AFTER DELETE ON seats BEGIN
     UPDATE room_counts SET n = n - 1 WHERE name = 'seat:' || old.status;
   END;

   DROP INDEX holds_live_expiry;
   CREATE INDEX holds_held_expiry ON holds (expires_at) WHERE status = 'held';
   CREATE INDEX holds_pending ON holds (reservation_id) WHERE status = 'pending';`,

  // Refunds (issue 13): a paid hold can end 'refunded'. SQLite changes a CHECK only by rebuilding.
  `CREATE TABLE holds_next (
     reservation_id TEXT PRIMARY KEY,
     user_id        TEXT NOT NULL,
     seq            INTEGER NOT NULL,
     amount         INTEGER NOT NULL,
     expires_at     INTEGER NOT NULL,
     status         TEXT NOT NULL CHECK (status IN ('pending', 'held', 'confirmed', 'expired', 'cancelled', 'refunded')),
     created_at     INTEGER NOT NULL
   );
   INSERT INTO holds_next SELECT reservation_id, user_id, seq, amount, expires_at, status, created_at FROM holds;
   DROP TABLE holds;
   ALTER TABLE holds_next RENAME TO holds;
   CREATE INDEX holds_user ON holds (user_id, status);
   CREATE INDEX holds_held_expiry ON holds (expires_at) WHERE status = 'held';
   CREATE INDEX holds_pending ON holds (reservation_id) WHERE status = 'pending';`,

  // Waitlist for freed seats (issue 13). One entry per user; seq_order is the order of joining (a
  // re-join after an entry ended takes a new one, at the back). Offers go first-fit in join order,
  // so the walk reads the head of each of the 8 kinds of request (1–4 seats, together or not) from
  // waitlist_waiting instead of stepping over every entry that cannot be served.
  //
  // A position (waiting entries ahead + 1) is a prefix count over seq_order. Entries leave out of
  // order, so it is not seq_order minus a watermark as in the line; counting the index range would
  // cost the length of the waitlist. waitlist_rank is a Fenwick tree over seq_order (capacity 2^30)
  // that the triggers keep in the same transaction as every change: a position is at most 30
  // primary-key reads, an update one upsert of at most 30 rows. waitlist_bits is the bit numbers 0..29.
  //
  // An offer is a hold (holds, seats) made for the entry's owner. The holds trigger makes the
  // entry follow its hold whichever path ends it: paid → accepted, expired → expired, cancelled
  // without the owner asking (its Postgres write failed or was never made) → waiting again, in
  // its old place. The owner's own cancel marks the entry left before its hold is released.
  //
  // room_ticks counts events rather than rows: seats_freed grows whenever a seat becomes available,
  // which is how the room knows, inside the transaction that freed them, that it has seats to offer.
  `CREATE TABLE waitlist (
     user_id          TEXT PRIMARY KEY,
     seq_order        INTEGER NOT NULL UNIQUE CHECK (seq_order BETWEEN 1 AND 1073741823),
     seats            INTEGER NOT NULL CHECK (seats BETWEEN 1 AND 4),
     together         INTEGER NOT NULL CHECK (together IN (0, 1)),
     status           TEXT NOT NULL CHECK (status IN ('waiting', 'offered', 'accepted', 'expired', 'left')),
     reason           TEXT,
     reservation_id   TEXT,
     offered_at       INTEGER,
     offer_expires_at INTEGER,
     created_at       INTEGER NOT NULL
   );
   CREATE INDEX waitlist_waiting ON waitlist (seats, together, seq_order) WHERE status = 'waiting';
   CREATE INDEX waitlist_reservation ON waitlist (reservation_id) WHERE reservation_id IS NOT NULL;

   INSERT INTO room_counts (name, n)
     SELECT 'waitlist:' || s, 0 FROM (SELECT 'waiting' AS s UNION ALL SELECT 'offered' UNION ALL SELECT 'accepted' UNION ALL SELECT 'expired' UNION ALL SELECT 'left');
   CREATE TRIGGER waitlist_counts_insert AFTER INSERT ON waitlist BEGIN
     UPDATE room_counts SET n = n + 1 WHERE name = 'waitlist:' || new.status;
   END;
   CREATE TRIGGER waitlist_counts_update AFTER UPDATE OF status ON waitlist WHEN old.status <> new.status BEGIN
     UPDATE room_counts SET n = n - 1 WHERE name = 'waitlist:' || old.status;
     UPDATE room_counts SET n = n + 1 WHERE name = 'waitlist:' || new.status;
   END;
   CREATE TRIGGER waitlist_counts_delete AFTER DELETE ON waitlist BEGIN
     UPDATE room_counts SET n = n - 1 WHERE name = 'waitlist:' || old.status;
   END;

   CREATE TABLE waitlist_bits (k INTEGER PRIMARY KEY) WITHOUT ROWID;
   INSERT INTO waitlist_bits (k) VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12), (13), (14),
     (15), (16), (17), (18), (19), (20), (21), (22), (23), (24), (25), (26), (27), (28), (29);
   CREATE TABLE waitlist_rank (node INTEGER PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
   -- Adding d at index i touches the nodes ((i - 1) | (2^k - 1)) + 1 for every bit k that is 0 in i - 1.
   CREATE TRIGGER waitlist_rank_insert AFTER INSERT ON waitlist WHEN new.status = 'waiting' BEGIN
     INSERT INTO waitlist_rank (node, n)
       SELECT ((new.seq_order - 1) | ((1 << k) - 1)) + 1, 1 FROM waitlist_bits WHERE ((new.seq_order - 1) >> k) & 1 = 0
       ON CONFLICT (node) DO UPDATE SET n = n + excluded.n;
   END;
   CREATE TRIGGER waitlist_rank_update AFTER UPDATE OF status, seq_order ON waitlist
     WHEN (old.status = 'waiting') <> (new.status = 'waiting') OR (new.status = 'waiting' AND old.seq_order <> new.seq_order) BEGIN
     INSERT INTO waitlist_rank (node, n)
       SELECT ((old.seq_order - 1) | ((1 << k) - 1)) + 1, -1 FROM waitlist_bits WHERE old.status = 'waiting' AND ((old.seq_order - 1) >> k) & 1 = 0
       ON CONFLICT (node) DO UPDATE SET n = n + excluded.n;
     INSERT INTO waitlist_rank (node, n)
       SELECT ((new.seq_order - 1) | ((1 << k) - 1)) + 1, 1 FROM waitlist_bits WHERE new.status = 'waiting' AND ((new.seq_order - 1) >> k) & 1 = 0
       ON CONFLICT (node) DO UPDATE SET n = n + excluded.n;
   END;
   CREATE TRIGGER waitlist_rank_delete AFTER DELETE ON waitlist WHEN old.status = 'waiting' BEGIN
     INSERT INTO waitlist_rank (node, n)
       SELECT ((old.seq_order - 1) | ((1 << k) - 1)) + 1, -1 FROM waitlist_bits WHERE ((old.seq_order - 1) >> k) & 1 = 0
       ON CONFLICT (node) DO UPDATE SET n = n + excluded.n;
   END;

   CREATE TRIGGER waitlist_follows_offer AFTER UPDATE OF status ON holds
     WHEN old.status <> new.status AND new.status IN ('confirmed', 'expired', 'cancelled') BEGIN
     UPDATE waitlist
        SET status = CASE new.status WHEN 'confirmed' THEN 'accepted' WHEN 'expired' THEN 'expired' ELSE 'waiting' END,
            reason = CASE new.status WHEN 'expired' THEN 'OFFER_EXPIRED' ELSE NULL END,
            reservation_id = CASE new.status WHEN 'cancelled' THEN NULL ELSE reservation_id END,
            offered_at = CASE new.status WHEN 'cancelled' THEN NULL ELSE offered_at END,
            offer_expires_at = CASE new.status WHEN 'cancelled' THEN NULL ELSE offer_expires_at END
      WHERE reservation_id = new.reservation_id AND status = 'offered';
   END;

   CREATE TABLE room_ticks (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
   INSERT INTO room_ticks (name, n) VALUES ('seats_freed', 0);
   CREATE TRIGGER seats_freed_tick AFTER UPDATE OF status ON seats WHEN new.status = 'available' AND old.status <> 'available' BEGIN
     UPDATE room_ticks SET n = n + 1 WHERE name = 'seats_freed';
   END;`,

  // Reconciliation (issue 18) reads the live holds only: the table keeps every hold ever made.
  `CREATE INDEX holds_live ON holds (reservation_id, status, created_at) WHERE status IN ('pending', 'held', 'confirmed');`,

  // Runs of adjacent available seats (issue 18): seat numbers first..last, consecutive, one section,
  // every seat available, as long as they go. A together offer of n seats takes the lowest run of n
  // or more; found by reading the whole free map it cost a scan of the available seats per offer,
  // so a refund wave of thousands of seats against thousands of entries cost their product. The
  // triggers keep the runs in the same transaction as every seat change, one seat's change a few
  // primary-key steps: a freed seat joins its neighbours' runs, a taken one splits its run. `size`
  // is the length capped at 4 (the most seats one entry asks for), so the lowest run of at least n
  // is the least `first` over sizes n..4: one step of seat_runs_size each.
  `CREATE TABLE seat_runs (
     first   INTEGER PRIMARY KEY,
     last    INTEGER NOT NULL,
     section TEXT NOT NULL,
     size    INTEGER NOT NULL GENERATED ALWAYS AS (MIN(last - first + 1, 4)) VIRTUAL
   );
   CREATE INDEX seat_runs_last ON seat_runs (last);
   CREATE INDEX seat_runs_size ON seat_runs (size, first);
   INSERT INTO seat_runs (first, last, section)
     SELECT MIN(seat_number), MAX(seat_number), section FROM (
       SELECT seat_number, section, seat_number - ROW_NUMBER() OVER (PARTITION BY section ORDER BY seat_number) AS island
         FROM seats WHERE status = 'available')
      GROUP BY section, island;

   -- Seat s leaves the free map: the run holding it keeps s + 1.. as a run of its own, and ends at
   -- s - 1 or goes. Seat s joins it: s extends the run ending at s - 1 (same section) or starts one,
   -- which then swallows the run starting at s + 1 (same section). One trigger per event, the take
   -- before the free, because a section change (rare: reconciliation) does both in that order and
   -- SQLite does not promise an order among triggers.
   CREATE TRIGGER seat_runs_update AFTER UPDATE OF status, section ON seats
     WHEN (old.status = 'available') <> (new.status = 'available') OR (new.status = 'available' AND new.section <> old.section) BEGIN
     INSERT INTO seat_runs (first, last, section)
       SELECT old.seat_number + 1, last, section FROM seat_runs
        WHERE first = (SELECT MAX(first) FROM seat_runs WHERE first <= old.seat_number) AND last > old.seat_number AND old.status = 'available';
     DELETE FROM seat_runs WHERE first = old.seat_number AND old.status = 'available';
     UPDATE seat_runs SET last = old.seat_number - 1
      WHERE first = (SELECT MAX(first) FROM seat_runs WHERE first < old.seat_number) AND last >= old.seat_number AND old.status = 'available';
     UPDATE seat_runs SET last = new.seat_number WHERE last = new.seat_number - 1 AND section = new.section AND new.status = 'available';
     INSERT INTO seat_runs (first, last, section)
       SELECT new.seat_number, new.seat_number, new.section WHERE NOT EXISTS (SELECT 1 FROM seat_runs WHERE last = new.seat_number) AND new.status = 'available';
     UPDATE seat_runs SET last = (SELECT r.last FROM seat_runs r WHERE r.first = new.seat_number + 1 AND r.section = new.section)
      WHERE last = new.seat_number AND EXISTS (SELECT 1 FROM seat_runs r WHERE r.first = new.seat_number + 1 AND r.section = new.section) AND new.status = 'available';
     DELETE FROM seat_runs WHERE first = new.seat_number + 1 AND section = new.section AND new.status = 'available';
   END;
   CREATE TRIGGER seat_runs_delete AFTER DELETE ON seats WHEN old.status = 'available' BEGIN
     INSERT INTO seat_runs (first, last, section)
       SELECT old.seat_number + 1, last, section FROM seat_runs
        WHERE first = (SELECT MAX(first) FROM seat_runs WHERE first <= old.seat_number) AND last > old.seat_number;
     DELETE FROM seat_runs WHERE first = old.seat_number;
     UPDATE seat_runs SET last = old.seat_number - 1
      WHERE first = (SELECT MAX(first) FROM seat_runs WHERE first < old.seat_number) AND last >= old.seat_number;
   END;
   CREATE TRIGGER seat_runs_insert AFTER INSERT ON seats WHEN new.status = 'available' BEGIN
     UPDATE seat_runs SET last = new.seat_number WHERE last = new.seat_number - 1 AND section = new.section;
     INSERT INTO seat_runs (first, last, section)
       SELECT new.seat_number, new.seat_number, new.section WHERE NOT EXISTS (SELECT 1 FROM seat_runs WHERE last = new.seat_number);
     UPDATE seat_runs SET last = (SELECT r.last FROM seat_runs r WHERE r.first = new.seat_number + 1 AND r.section = new.section)
      WHERE last = new.seat_number AND EXISTS (SELECT 1 FROM seat_runs r WHERE r.first = new.seat_number + 1 AND r.section = new.section);
     DELETE FROM seat_runs WHERE first = new.seat_number + 1 AND section = new.section;
   END;`,
  // Issue 20: challenges already used to join (entry.ts), so a proof of work buys one place only.
  ENTRY_SPENT_MIGRATION,
];

/**
 * Brings `sql` up to the newest schema: in the constructor (inside `blockConcurrencyWhile`) for a room
 * that has tables, or in the synchronous step that first loads its concert.
 */
export function migrateRoomSchema(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS _schema (version INTEGER NOT NULL)`);
  const row = sql.exec<{ version: number }>(`SELECT version FROM _schema`).toArray()[0];
  if (!row) sql.exec(`INSERT INTO _schema (version) VALUES (0)`);
  for (let version = row?.version ?? 0; version < ROOM_MIGRATIONS.length; version++) {
    sql.exec(ROOM_MIGRATIONS[version]!);
    sql.exec(`UPDATE _schema SET version = ?`, version + 1);
  }
}

/** Whether `sql` already has the room's tables: a read of SQLite's catalogue, which writes nothing. */
export function hasRoomSchema(sql: SqlStorage): boolean {
  return sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_schema'`).toArray().length > 0;
}
