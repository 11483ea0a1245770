/**
 * A sold-out concert's waitlist (docs/fairness.md: Waitlist): join for 1–4 seats (optionally
 * side by side), see your place, and when seats come back, the offer held for you with its countdown
 * and Pay. Read from `GET /concerts/:id/waitlist/me`, polled, so a reload or a second tab shows the same.
 */
import { useEffect, useState } from 'hono/jsx/dom';
import { ApiError, call, problemOf, type Problem } from '../lib/api.ts';
import { formFields, ProblemBox, remaining, useNow } from '../lib/ui.tsx';
import { MAX_SEATS } from './journey.tsx';
import { SignIn } from './session.tsx';
import type { Concert, Hold, Session, WaitlistEntry } from './types.ts';

/** How often the entry is re-read while it is waiting or offered (the per-user status budget is 60 per 10 s). */
const WAITLIST_POLL_MS = 2000;

const ENDED_TEXT: Record<'expired' | 'left', string> = {
  expired: 'Your last waitlist place ended.',
  left: 'You left the waitlist.',
};

export function Waitlist({
  session,
  concert,
  onSession,
  onPay,
}: {
  session: Session | undefined;
  concert: Concert;
  onSession: (session: Session) => void;
  onPay: (hold: Hold) => void;
}) {
  // A join waiting for the fan to sign in (asked here, so this panel and its state stay put meanwhile).
  const [pendingJoin, setPendingJoin] = useState<{ seats: number; together: boolean }>();
  // undefined: not read yet; null: not on this concert's waitlist.
  const [entry, setEntry] = useState<WaitlistEntry | null>();
  const [problem, setProblem] = useState<Problem>();
  const [busy, setBusy] = useState(false);
  const [reads, setReads] = useState(0);
  const now = useNow();
  const path = `/concerts/${concert.id}/waitlist`;

  useEffect(() => {
    if (!session) return;
    let stopped = false;
    call<WaitlistEntry>(`${path}/me`, { bearer: session.token })
      .then(({ body }) => {
        if (!stopped) setEntry(body);
      })
      .catch((error: unknown) => {
        if (stopped) return;
        if (error instanceof ApiError && error.problem.status === 404) setEntry(null);
        else setProblem(problemOf(error));
      });
    return () => {
      stopped = true;
    };
  }, [session?.token, reads]);

  const live = entry?.status === 'waiting' || entry?.status === 'offered';
  useEffect(() => {
    if (!live) return;
    const timer = setTimeout(() => setReads((n) => n + 1), WAITLIST_POLL_MS);
    return () => clearTimeout(timer);
  }, [live, reads]);

  const act = async (action: () => Promise<void>) => {
    setBusy(true);
    try {
      await action();
      setProblem(undefined);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  };
  const join = (event: Event) => {
    const fields = formFields(event);
    const request = { seats: Number(fields.seats ?? 1), together: fields.together === 'on' };
    if (session) send(session, request);
    else setPendingJoin(request);
  };
  const send = (signedIn: Session, request: { seats: number; together: boolean }) =>
    void act(async () => {
      const { body } = await call<WaitlistEntry>(path, { bearer: signedIn.token, json: request });
      setEntry(body);
    });
  const leave = (signedIn: Session) =>
    void act(async () => {
      await call(`${path}/me`, { method: 'DELETE', bearer: signedIn.token });
      setReads((n) => n + 1);
    });
  const decline = (signedIn: Session, offer: Hold) =>
    void act(async () => {
      await call(`/reservations/${offer.reservationId}`, { method: 'DELETE', bearer: signedIn.token });
      setReads((n) => n + 1);
    });

  let body;
  if (!session && pendingJoin) {
    body = (
      <SignIn
        purpose="to join the waitlist"
        onCancel={() => setPendingJoin(undefined)}
        onSignedIn={(signedIn) => {
          setPendingJoin(undefined);
          onSession(signedIn);
          send(signedIn, pendingJoin);
        }}
      />
    );
  } else if (session && entry?.status === 'offered' && entry.offer) {
    const offer = entry.offer;
    const clock = remaining(offer.expiresAt, now);
    body = (
      <div class="banner" role="alert" data-testid="waitlist-entry-offer">
        <p>
          Seats came back for you: {offer.seats.map((seat) => seat.seatNumber).join(', ')} for <strong>{offer.amount}</strong> points,
          held for you for <strong data-testid="offer-countdown">{clock.text}</strong>.
        </p>
        <div class="row">
          <button type="button" class="primary" disabled={busy || clock.over} onClick={() => onPay(offer)}>
            Pay for the offered seats
          </button>
          <button type="button" class="link" disabled={busy} onClick={() => decline(session, offer)}>
            Decline
          </button>
        </div>
      </div>
    );
  } else if (session && entry?.status === 'waiting') {
    body = (
      <div>
        <p class="big" data-testid="waitlist-position" aria-live="polite">
          You are number {entry.position} on the waitlist
        </p>
        <p>
          For {entry.seats} seat{entry.seats === 1 ? '' : 's'}
          {entry.together ? ', side by side' : ''}. When seats come back they are held for you for a short while; this page shows the
          offer and a countdown.
        </p>
        <button type="button" class="link" disabled={busy} onClick={() => leave(session)}>
          Leave the waitlist
        </button>
      </div>
    );
  } else if (session && entry?.status === 'accepted') {
    body = (
      <p role="status">
        You bought seats from the waitlist. <a href="/tickets">See My tickets</a>
      </p>
    );
  } else {
    const ended = entry && (entry.status === 'expired' || entry.status === 'left') ? entry.status : undefined;
    body = (
      <form onSubmit={join} aria-label="Join the waitlist">
        {ended ? (
          <p>
            {ENDED_TEXT[ended]}
            {entry?.reason === 'OFFER_EXPIRED' ? ' Its offer ran out unpaid.' : entry?.reason === 'HOLD_LIMIT' ? ' You had too many seats for its size.' : ''} You can join
            again, at the back.
          </p>
        ) : null}
        <div class="row">
          <label>
            Seats{' '}
            <select name="seats">
              {Array.from({ length: MAX_SEATS }, (_, i) => (
                <option value={String(i + 1)}>{i + 1}</option>
              ))}
            </select>
          </label>
          <label class="check">
            <input type="checkbox" name="together" /> Side by side
          </label>
          <button type="submit" class="primary" disabled={busy}>
            Join the waitlist
          </button>
        </div>
      </form>
    );
  }
  return (
    <section class="waitlist" aria-labelledby="waitlist-title">
      <h4 id="waitlist-title">Waitlist</h4>
      <p class="hint">
        Seats that come back (a refund, a lapsed hold) go to the waitlist in order: fans who were in the line before it sold out first, in
        line order, then everyone else in joining order.
      </p>
      {body}
      <ProblemBox problem={problem} />
    </section>
  );
}
