-- Frontrow schema v1. Append-only: change the schema with a new numbered file, never by editing this one.

CREATE TABLE concerts (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  venue         text NOT NULL CHECK (length(venue) BETWEEN 1 AND 200),
  date          date NOT NULL,
  starts_at     timestamptz NOT NULL,
  sales_open_at timestamptz NOT NULL,
  seat_count    integer NOT NULL CHECK (seat_count BETWEEN 1 AND 100000),
  -- Admission and hold settings the ConcertRoom starts from; admins change them through the room.
  queue_config  jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at    timestamptz NOT NULL DEFAULT now()
);
-- GET /concerts?date= and the seed's GET /reservations/:date.
CREATE INDEX concerts_date_idx ON concerts (date);

CREATE TABLE seats (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  concert_id  uuid NOT NULL REFERENCES concerts (id) ON DELETE CASCADE,
  seat_number integer NOT NULL CHECK (seat_number >= 1),
  section     text NOT NULL DEFAULT 'general',
  price       integer NOT NULL CHECK (price BETWEEN 0 AND 1000000),
  status      text NOT NULL DEFAULT 'available' CHECK (status IN ('available', 'held', 'sold')),
  CONSTRAINT seats_concert_seat_number_key UNIQUE (concert_id, seat_number)
);
-- Available seats of a concert, and live counts by status.
CREATE INDEX seats_concert_status_idx ON seats (concert_id, status);

CREATE TABLE reservations (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  concert_id   uuid NOT NULL REFERENCES concerts (id) ON DELETE CASCADE,
  user_id      text NOT NULL,
  status       text NOT NULL CHECK (status IN ('held', 'confirmed', 'expired', 'cancelled')),
  amount       integer NOT NULL CHECK (amount >= 0),
  expires_at   timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  confirmed_at timestamptz,
  CHECK ((status = 'confirmed') = (confirmed_at IS NOT NULL))
);
CREATE INDEX reservations_user_created_idx ON reservations (user_id, created_at);
-- The expiry sweep only ever looks at live holds.
CREATE INDEX reservations_held_expires_idx ON reservations (expires_at) WHERE status = 'held';
CREATE INDEX reservations_concert_idx ON reservations (concert_id);

CREATE TABLE reservation_seats (
  reservation_id uuid NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
  seat_id        bigint NOT NULL REFERENCES seats (id) ON DELETE CASCADE,
  active         boolean NOT NULL DEFAULT true,
  PRIMARY KEY (reservation_id, seat_id)
);
-- The double-booking guard: at most one live (held or confirmed) reservation per seat.
CREATE UNIQUE INDEX reservation_seats_one_live_per_seat ON reservation_seats (seat_id) WHERE active;

CREATE TABLE balances (
  user_id text PRIMARY KEY,
  amount  bigint NOT NULL DEFAULT 0 CHECK (amount BETWEEN 0 AND 1000000000),
  -- Highest lock fencing token that has written this row; a stale lock holder's write is refused.
  fence   bigint NOT NULL DEFAULT 0
);

CREATE TABLE balance_ledger (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id       text NOT NULL,
  delta         bigint NOT NULL CHECK (delta <> 0),
  balance_after bigint NOT NULL CHECK (balance_after >= 0),
  kind          text NOT NULL CHECK (kind IN ('charge', 'use', 'payment', 'refund')),
  reference     text,
  created_at    timestamptz NOT NULL DEFAULT now()
);
-- GET /balance/history: newest first, keyset-paginated on id.
CREATE INDEX balance_ledger_user_id_idx ON balance_ledger (user_id, id DESC);

CREATE TABLE payments (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  reservation_id uuid NOT NULL UNIQUE REFERENCES reservations (id),
  user_id        text NOT NULL,
  amount         integer NOT NULL CHECK (amount >= 0),
  created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE idempotency_keys (
  user_id      text NOT NULL,
  key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  request_hash text NOT NULL,
  -- NULL while the first request is still running.
  status_code  integer,
  body         jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
