/**
 * The fan page (`GET /`): sign in (dev tokens) → pick a concert by date → wait in line, live →
 * choose up to 4 seats → checkout (hold countdown, balance, charge, pay) → confirmation.
 */
import { render, useEffect, useState } from 'hono/jsx/dom';
import { call, problemOf, remembered, type Problem } from './lib/api.ts';
import { followQueue, type Connection, type QueueStatus, type WaitlistOffer } from './lib/queue-feed.ts';
import { formFields, ProblemBox, remaining, today, useNow, usePolling } from './lib/ui.tsx';

/** DESIGN.md §3: at most 4 seats per user per concert. */
const MAX_SEATS = 4;
/** How often the seat map is re-read; the API serves it from the edge cache, at most ~1 s old. */
const SEAT_REFRESH_MS = 2000;

interface Concert {
  id: string;
  title: string;
  venue: string;
  date: string;
  startsAt: string;
}
interface Seat {
  seatNumber: number;
  section: string;
  price: number;
  status: 'available' | 'held' | 'sold';
}
interface Hold {
  reservationId: string;
  seats: Omit<Seat, 'status'>[];
  amount: number;
  expiresAt: string;
}
interface Payment {
  paymentId: string;
  amount: number;
  balance: number;
}
interface Session {
  userId: string;
  token: string;
}

type Step =
  | { name: 'pick' }
  | { name: 'waiting'; concert: Concert; queueToken: string; first: QueueStatus }
  | { name: 'seats'; concert: Concert; queueToken: string; sessionExpiresAt: string | null }
  | { name: 'checkout'; concert: Concert; queueToken: string; hold: Hold; fromWaitlist?: boolean }
  | { name: 'confirmed'; concert: Concert; hold: Hold; payment: Payment };

const storedSession = remembered('frontrow.fan');

function loadSession(): Session | undefined {
  const raw = storedSession.get();
  return raw ? (JSON.parse(raw) as Session) : undefined;
}

function SignIn({ session, onChange }: { session: Session | undefined; onChange: (s: Session | undefined) => void }) {
  const [problem, setProblem] = useState<Problem>();
  if (session) {
    return (
      <p class="signed-in">
        Signed in as <strong data-testid="user">{session.userId}</strong>{' '}
        <button type="button" class="link" onClick={() => onChange(undefined)}>
          Sign out
        </button>
      </p>
    );
  }
  const submit = async (event: Event) => {
    const { userId = '' } = formFields(event);
    try {
      const { body } = await call<{ token: string }>('/auth/dev-token', { json: { userId } });
      setProblem(undefined);
      onChange({ userId, token: body.token });
    } catch (error) {
      setProblem(problemOf(error));
    }
  };
  return (
    <form class="card" onSubmit={(event: Event) => void submit(event)} aria-label="Sign in">
      <h2>Sign in as</h2>
      <p class="hint">Local development only: mints a token with POST /auth/dev-token.</p>
      <label>
        User id <input name="userId" required autocomplete="username" placeholder="fan-1" />
      </label>
      <button type="submit">Sign in</button>
      <ProblemBox problem={problem} />
    </form>
  );
}

function PickConcert({ session, onJoined }: { session: Session; onJoined: (step: Step) => void }) {
  const [date, setDate] = useState(today());
  const [concerts, setConcerts] = useState<Concert[]>();
  const [problem, setProblem] = useState<Problem>();
  const search = async (event: Event) => {
    const fields = formFields(event);
    setDate(fields.date ?? date);
    try {
      const { body } = await call<{ concerts: Concert[] }>(`/concerts?date=${encodeURIComponent(fields.date ?? '')}`);
      setConcerts(body.concerts);
      setProblem(undefined);
    } catch (error) {
      setProblem(problemOf(error));
    }
  };
  const join = async (concert: Concert) => {
    try {
      const { body } = await call<QueueStatus & { token: string }>('/queue/token', { bearer: session.token, json: { concertId: concert.id } });
      const { token, ...first } = body;
      onJoined({ name: 'waiting', concert, queueToken: token, first: { ...first, sessionExpiresAt: null } });
    } catch (error) {
      setProblem(problemOf(error));
    }
  };
  return (
    <section class="card" aria-labelledby="pick-title">
      <h2 id="pick-title">Pick a concert</h2>
      <form onSubmit={(event: Event) => void search(event)} class="row">
        <label>
          Date <input type="date" name="date" value={date} required />
        </label>
        <button type="submit">Find concerts</button>
      </form>
      <ProblemBox problem={problem} />
      {concerts && concerts.length === 0 ? <p>No concerts on {date}.</p> : null}
      <ul class="concerts">
        {(concerts ?? []).map((concert) => (
          <li>
            <span>
              <strong>{concert.title}</strong> — {concert.venue}, {new Date(concert.startsAt).toLocaleString()}
            </span>
            <button type="button" onClick={() => void join(concert)} aria-label={`Join the line for ${concert.title}`}>
              Join the line
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

const CONNECTION_TEXT: Record<Connection, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  polling: 'Reconnecting — checking every few seconds',
  replaced: 'Following live in another tab — this one checks every few seconds',
};

function Waiting({
  session,
  step,
  onAdmitted,
  onOffer,
}: {
  session: Session;
  step: Extract<Step, { name: 'waiting' }>;
  onAdmitted: (s: QueueStatus) => void;
  onOffer: (offer: WaitlistOffer) => void;
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
      <h2 id="wait-title">In line for {step.concert.title}</h2>
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
      <ProblemBox problem={problem} />
    </section>
  );
}

/**
 * Seats held for this fan from the concert's waitlist (pushed on the queue socket), with a way to pay
 * for them. Kept above the page until it runs out: a sold-out line may admit the fan meanwhile.
 */
function OfferNotice({ offer, onPay }: { offer: WaitlistOffer; onPay: () => void }) {
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

function SeatMap({ session, step, onHeld }: { session: Session; step: Extract<Step, { name: 'seats' }>; onHeld: (hold: Hold) => void }) {
  const [seats, setSeats] = useState<Seat[]>([]);
  const [chosen, setChosen] = useState<number[]>([]);
  const [problem, setProblem] = useState<Problem>();
  const [busy, setBusy] = useState(false);
  const now = useNow();
  usePolling(
    async (stopped) => {
      try {
        const { body } = await call<{ seats: Seat[] }>(`/concerts/${step.concert.id}/seats`);
        if (!stopped()) setSeats(body.seats);
      } catch (error) {
        if (!stopped()) setProblem(problemOf(error));
      }
    },
    SEAT_REFRESH_MS,
    [step.concert.id],
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
        json: { concertId: step.concert.id, seatNumbers: chosen },
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
      <h2 id="seats-title">Choose up to {MAX_SEATS} seats — {step.concert.title}</h2>
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
              aria-label={label}
              title={label}
              onClick={() => toggle(seat)}
            >
              <span class="num">{seat.seatNumber}</span>
              <span class="state">{mine ? 'yours' : STATUS_TEXT[seat.status]}</span>
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

function Checkout({
  session,
  step,
  onPaid,
  onReleased,
}: {
  session: Session;
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
      <h2 id="checkout-title">Checkout — {step.concert.title}</h2>
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
        Total: <strong data-testid="amount">{step.hold.amount}</strong> points · Balance:{' '}
        <strong data-testid="balance">{balance ?? '…'}</strong> points
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

function Confirmed({ step }: { step: Extract<Step, { name: 'confirmed' }> }) {
  return (
    <section class="card confirmed" aria-labelledby="done-title">
      <h2 id="done-title">Payment confirmed</h2>
      <p role="status">
        Seats {step.hold.seats.map((seat) => seat.seatNumber).join(', ')} for {step.concert.title} are yours.
      </p>
      <p>
        Paid {step.payment.amount} points; balance {step.payment.balance} points. Payment <code>{step.payment.paymentId}</code>.
      </p>
    </section>
  );
}

function App() {
  const [session, setSession] = useState(loadSession());
  const [step, setStep] = useState<Step>({ name: 'pick' });
  const [offer, setOffer] = useState<WaitlistOffer>();
  const changeSession = (next: Session | undefined) => {
    storedSession.set(next ? JSON.stringify(next) : null);
    setSession(next);
    setStep({ name: 'pick' });
    setOffer(undefined);
  };
  let body = null;
  if (session) {
    if (step.name === 'pick') body = <PickConcert session={session} onJoined={setStep} />;
    if (step.name === 'waiting') {
      const onAdmitted = (status: QueueStatus) =>
        setStep({ name: 'seats', concert: step.concert, queueToken: step.queueToken, sessionExpiresAt: status.sessionExpiresAt });
      body = <Waiting session={session} step={step} onAdmitted={onAdmitted} onOffer={setOffer} />;
    }
    if (step.name === 'seats') {
      body = <SeatMap session={session} step={step} onHeld={(hold) => setStep({ name: 'checkout', concert: step.concert, queueToken: step.queueToken, hold })} />;
    }
    if (step.name === 'checkout') {
      body = (
        <Checkout
          session={session}
          step={step}
          onPaid={(payment) => setStep({ name: 'confirmed', concert: step.concert, hold: step.hold, payment })}
          onReleased={() =>
            // A declined waitlist offer leaves the fan without a session: back to the concerts, not the seat map.
            setStep(step.fromWaitlist ? { name: 'pick' } : { name: 'seats', concert: step.concert, queueToken: step.queueToken, sessionExpiresAt: null })
          }
        />
      );
    }
    if (step.name === 'confirmed') body = <Confirmed step={step} />;
  }
  // The offer is for the concert of the line the fan is following (waiting, or admitted since).
  const offerFor = offer && (step.name === 'waiting' || step.name === 'seats') ? step : undefined;
  const takeOffer = () => {
    if (!offer || !offerFor) return;
    const { reservationId, seats, amount, expiresAt } = offer;
    setOffer(undefined);
    setStep({ name: 'checkout', concert: offerFor.concert, queueToken: offerFor.queueToken, hold: { reservationId, seats, amount, expiresAt }, fromWaitlist: true });
  };
  return (
    <>
      <SignIn session={session} onChange={changeSession} />
      {offer && offerFor ? <OfferNotice offer={offer} onPay={takeOffer} /> : null}
      {body}
    </>
  );
}

render(<App />, document.getElementById('app')!);
