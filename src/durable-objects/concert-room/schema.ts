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
];

/** Brings `sql` up to the newest schema. Run inside `blockConcurrencyWhile` in the constructor. */
export function migrateRoomSchema(sql: SqlStorage): void {
  sql.exec(`CREATE TABLE IF NOT EXISTS _schema (version INTEGER NOT NULL)`);
  const row = sql.exec<{ version: number }>(`SELECT version FROM _schema`).toArray()[0];
  if (!row) sql.exec(`INSERT INTO _schema (version) VALUES (0)`);
  for (let version = row?.version ?? 0; version < ROOM_MIGRATIONS.length; version++) {
    sql.exec(ROOM_MIGRATIONS[version]!);
    sql.exec(`UPDATE _schema SET version = ?`, version + 1);
  }
}
