-- Refunds to points (issue 13): a paid reservation can be refunded by its owner until a per-concert
-- cut-off before the show, less a per-concert fee; an admin refunds any paid one without the fee.
ALTER TABLE concerts
  ADD COLUMN refund_fee integer NOT NULL DEFAULT 0 CHECK (refund_fee BETWEEN 0 AND 1000000),
  ADD COLUMN refund_cutoff_hours integer NOT NULL DEFAULT 24 CHECK (refund_cutoff_hours BETWEEN 0 AND 8760);

ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
  CHECK (status IN ('held', 'confirmed', 'expired', 'cancelled', 'refunded'));
-- A refunded reservation was paid first: it keeps its confirmed_at (and its payment row).
ALTER TABLE reservations DROP CONSTRAINT reservations_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_confirmed_check
  CHECK ((status IN ('confirmed', 'refunded')) = (confirmed_at IS NOT NULL));
ALTER TABLE reservations ADD COLUMN refunded_at timestamptz;
ALTER TABLE reservations ADD CONSTRAINT reservations_refunded_check CHECK ((status = 'refunded') = (refunded_at IS NOT NULL));

-- At most one refund credit per reservation, whatever races: the ledger row is the refund's record.
CREATE UNIQUE INDEX balance_ledger_one_refund_per_reservation ON balance_ledger (reference) WHERE kind = 'refund';
