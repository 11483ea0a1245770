-- Reconciliation (issue 18) reads a concert's live reservations, held or confirmed. Through
-- reservations_concert_idx it would read every reservation the concert ever had: after a rush most
-- are expired or cancelled, and a room reconciles at every start-up and after every lost reply.
CREATE INDEX reservations_concert_live_idx ON reservations (concert_id) WHERE status IN ('held', 'confirmed');
