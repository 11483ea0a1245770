/**
 * A fan's way through one on-sale, on the concert's page: waiting in line, live → choosing up to 4
 * seats → checkout (the hold's countdown, balance, charge, pay) → confirmation. Also the notice of a
 * waitlist offer pushed on the queue socket.
 */
import { useEffect, useState } from 'hono/jsx/dom';
import { call, problemOf, type Problem } from '../lib/api.ts';
import { followQueue, type Connection, type QueueStatus, type WaitlistOffer } from '../lib/queue-feed.ts';
import { formFields, ProblemBox, remaining, useNow, usePolling } from '../lib/ui.tsx';
import type { Concert, Hold, Payment, Seat, Session, Step } from './types.ts';

/** DESIGN.md §3: at most 4 seats per user per concert. */
export const MAX_SEATS = 4;
/** How often the seat map is re-read; the API serves it from the edge cache, at most ~1 s old. */
const SEAT_REFRESH_MS = 2000;

const CONNECTION_TEXT: Record<Connection, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  polling: 'Reconnecting — checking every few seconds',
  replaced: 'Following live in another tab — this one checks every few seconds',
};

export function Waiting({
  session,
  concert,
  step,
  onAdmitted,
  onOffer,
  soldOut,
}: {
  session: Session;
  concert: Concert;
  step: Extract<Step, { name: 'waiting' }>;
  onAdmitted: (s: QueueStatus) => void;
  onOffer: (offer: WaitlistOffer) => void;
  /** What to show once the line has sold out (the waitlist). */
  soldOut: () => unknown;
}) {
  const [status, setStatus] = useState<QueueStatus>(step.first);
  const [connection, setConnection] = useState<Connection>('connecting');
  const [paused, setPaused] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  useEffect(
    () =>
      followQueue(step.queueToken, session.token, (update) => {
        if (update.connection) setConnection(update.connection);
        if (update.paused !== undefined) setPaused(update.paused);
        if ('problem' in update) setProblem(update.problem);
        if (update.status) setStatus(update.status);
        if (update.offer) onOffer(update.offer);
      }),
    [step.queueToken],
  );
  useEffect(() => {
    if (status.status === 'admitted') onAdmitted(status);
  }, [status.status]);
  return (
    <section class="card" aria-labelledby="wait-title">
      <h3 id="wait-title">In line for {concert.title}</h3>
      <p class={`connection connection-${connection}`} data-testid="connection">
        <span class="dot" aria-hidden="true" /> {CONNECTION_TEXT[connection]}
      </p>
      {paused ? (
        <p class="banner" role="status" data-testid="paused">
          The organiser has paused the line. You keep your place.
        </p>
      ) : null}
      {status.status === 'waiting' && status.randomizedAtOpening ? (
        <div aria-live="polite" data-testid="prequeue">
          <p class="big">You are in the pre-queue</p>
          <p>
            Everyone who joins before sales open gets a place drawn at random when they open, so there is no need to rush. You were number{' '}
            <strong data-testid="position">{status.position}</strong> to join. Sales open in about {status.estimatedWaitSeconds} s.
          </p>
        </div>
      ) : status.status === 'waiting' ? (
        <div aria-live="polite">
          <p class="big">
            You are number <strong data-testid="position">{status.position}</strong> in line
          </p>
          <p data-testid="estimate">Estimated wait: about {status.estimatedWaitSeconds} s</p>
        </div>
      ) : (
        <p class="big" data-testid="queue-status" role="status">
          {status.status === 'sold_out' ? 'Sold out — sorry.' : status.status === 'expired' ? 'Your session expired.' : status.status}
        </p>
      )}
      {status.status === 'sold_out' ? soldOut() : null}
      <ProblemBox problem={problem} />
    </section>
  );
}

/**
 * Seats held for this fan from the concert's waitlist (pushed on the queue socket), with a way to pay
 * for them. Kept above the page until it runs out: a sold-out line may admit the fan meanwhile.
 */
export function OfferNotice({ offer, onPay }: { offer: WaitlistOffer; onPay: () => void }) {
  const now = useNow();
  const clock = remaining(offer.expiresAt, now);
  if (clock.over) return null;
  return (
    <div class="card banner" role="alert" data-testid="waitlist-offer">
      <p>
        Seats came back for you from the waitlist: {offer.seats.map((seat) => seat.seatNumber).join(', ')} for {offer.amount} points, held
        for {clock.text}.
      </p>
      <button type="button" class="primary" onClick={onPay}>
        Pay for them
      </button>
    </div>
  );
}

const STATUS_TEXT: Record<Seat['status'], string> = { available: 'free', held: 'held', sold: 'sold' };

export function SeatMap({
  session,
  concert,
  step,
  onHeld,
}: {
  session: Session;
  concert: Concert;
  step: Extract<Step, { name: 'seats' }>;
  onHeld: (hold: Hold) => void;
}) {
  const [seats, setSeats] = useState<Seat[]>([]);
  const [chosen, setChosen] = useState<number[]>([]);
  const [problem, setProblem] = useState<Problem>();
  const [busy, setBusy] = useState(false);
  const now = useNow();
  usePolling(
    async (stopped) => {
      try {
        const { body } = await call<{ seats: Seat[] }>(`/concerts/${concert.id}/seats`);
        if (!stopped()) setSeats(body.seats);
      } catch (error) {
        if (!stopped()) setProblem(problemOf(error));
      }
    },
    SEAT_REFRESH_MS,
    [concert.id],
  );
  const toggle = (seat: Seat) => {
    if (seat.status !== 'available') return;
    if (chosen.includes(seat.seatNumber)) setChosen(chosen.filter((n) => n !== seat.seatNumber));
    else if (chosen.length < MAX_SEATS) setChosen([...chosen, seat.seatNumber]);
  };
  const hold = async () => {
    setBusy(true);
    try {
      const { body } = await call<Hold>('/reservations', {
        bearer: session.token,
        queueToken: step.queueToken,
        idempotencyKey: crypto.randomUUID(),
        json: { concertId: concert.id, seatNumbers: chosen },
      });
      onHeld(body);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  };
  const session_ = step.sessionExpiresAt ? remaining(step.sessionExpiresAt, now) : undefined;
  return (
    <section class="card" aria-labelledby="seats-title">
      <h3 id="seats-title">
        Choose up to {MAX_SEATS} seats — {concert.title}
      </h3>
      <p role="status">You're in!{session_ ? ` Your session ends in ${session_.text}.` : ''}</p>
      <ul class="legend" aria-label="Legend">
        <li class="seat-available">free</li>
        <li class="seat-held">held</li>
        <li class="seat-sold">sold</li>
        <li class="seat-chosen">your choice</li>
      </ul>
      <div class="seatmap" role="group" aria-label="Seat map">
        {seats.map((seat) => {
          const mine = chosen.includes(seat.seatNumber);
          const label = `Seat ${seat.seatNumber}, section ${seat.section}, ${seat.price} points, ${mine ? 'chosen' : STATUS_TEXT[seat.status]}`;
          return (
            <button
              type="button"
              class={`seat seat-${mine ? 'chosen' : seat.status}`}
              data-seat={seat.seatNumber}
              data-status={seat.status}
              aria-pressed={mine ? 'true' : 'false'}
              aria-disabled={seat.status === 'available' ? 'false' : 'true'}
              title={label}
              onClick={() => toggle(seat)}
            >
              {/* The visible number and state start the accessible name (axe: label-content-name-mismatch); the rest is for screen readers. */}
              <span class="num">{seat.seatNumber}</span> <span class="state">{mine ? 'yours' : STATUS_TEXT[seat.status]}</span>
              <span class="sr-only">
                {' '}
                — seat {seat.seatNumber}, section {seat.section}, {seat.price} points
              </span>
            </button>
          );
        })}
      </div>
      <p>
        {chosen.length} of {MAX_SEATS} chosen
        {chosen.length ? `: ${[...chosen].sort((a, b) => a - b).join(', ')}` : ''}
      </p>
      <button type="button" disabled={chosen.length === 0 || busy} onClick={() => void hold()}>
        Hold {chosen.length || ''} seat{chosen.length === 1 ? '' : 's'}
      </button>
      <ProblemBox problem={problem} />
    </section>
  );
}

export function Checkout({
  session,
  concert,
  step,
  onPaid,
  onReleased,
}: {
  session: Session;
  concert: Concert;
  step: Extract<Step, { name: 'checkout' }>;
  onPaid: (payment: Payment) => void;
  onReleased: () => void;
}) {
  const [balance, setBalance] = useState<number>();
  const [problem, setProblem] = useState<Problem>();
  const [busy, setBusy] = useState(false);
  const now = useNow();
  const clock = remaining(step.hold.expiresAt, now);
  const attempt = async (action: () => Promise<void>) => {
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
  useEffect(() => {
    void attempt(async () => setBalance((await call<{ balance: number }>('/balance', { bearer: session.token })).body.balance));
  }, []);
  const charge = (event: Event) => {
    const { amount = '' } = formFields(event);
    void attempt(async () => {
      const { body } = await call<{ balance: number }>('/balance/charge', {
        bearer: session.token,
        idempotencyKey: crypto.randomUUID(),
        json: { amount: Number(amount) },
      });
      setBalance(body.balance);
    });
  };
  // A fresh key per click: a declined attempt must not be replayed once the balance is topped up.
  const pay = () =>
    void attempt(async () => {
      const { body } = await call<Payment>('/payment', {
        bearer: session.token,
        idempotencyKey: crypto.randomUUID(),
        json: { reservationId: step.hold.reservationId },
      });
      onPaid(body);
    });
  const release = () =>
    void attempt(async () => {
      await call(`/reservations/${step.hold.reservationId}`, { method: 'DELETE', bearer: session.token });
      onReleased();
    });
  return (
    <section class="card" aria-labelledby="checkout-title">
      <h3 id="checkout-title">Checkout — {concert.title}</h3>
      <p class={clock.over ? 'banner' : ''} role="timer" data-testid="countdown">
        {clock.over ? 'Your hold has expired.' : `Seats held for ${clock.text}`}
      </p>
      <ul>
        {step.hold.seats.map((seat) => (
          <li>
            Seat {seat.seatNumber} (section {seat.section}) — {seat.price} points
          </li>
        ))}
      </ul>
      <p>
        Total: <strong data-testid="amount">{step.hold.amount}</strong> points · Balance: <strong data-testid="balance">{balance ?? '…'}</strong>{' '}
        points
      </p>
      <form class="row" onSubmit={charge} aria-label="Top up">
        <label>
          Charge points <input type="number" name="amount" min="1" max="1000000" step="1" required />
        </label>
        <button type="submit" disabled={busy}>
          Charge
        </button>
      </form>
      <div class="row">
        <button type="button" class="primary" disabled={busy || clock.over} onClick={pay}>
          Pay {step.hold.amount} points
        </button>
        <button type="button" class="link" disabled={busy} onClick={release}>
          Release the seats
        </button>
      </div>
      <ProblemBox problem={problem} />
    </section>
  );
}

export function Confirmed({ concert, step }: { concert: Concert; step: Extract<Step, { name: 'confirmed' }> }) {
  return (
    <section class="card confirmed" aria-labelledby="done-title">
      <h3 id="done-title">Payment confirmed</h3>
      <p role="status">
        Seats {step.hold.seats.map((seat) => seat.seatNumber).join(', ')} for {concert.title} are yours.
      </p>
      <p>
        Paid {step.payment.amount} points; balance {step.payment.balance} points. Payment <code>{step.payment.paymentId}</code>.
      </p>
      <p>
        <a href="/tickets">See My tickets</a>
      </p>
    </section>
  );
}
