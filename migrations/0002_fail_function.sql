-- Lets a single statement refuse itself: `SELECT CASE WHEN <broken> THEN frontrow_fail('23505', '...') END`
-- aborts the statement (and so every data-modifying CTE in it) with the given SQLSTATE. The room's
-- hold and payment are each one statement, one round trip, with no BEGIN/COMMIT around them.
CREATE FUNCTION frontrow_fail(state text, message text) RETURNS void
  LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = state, MESSAGE = message;
END
$$;
