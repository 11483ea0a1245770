/**
 * `/tickets`: the fan's reservations (`GET /reservations`) with status, seats and amount, and Refund
 * where the concert still allows it. The fee and the cut-off are shown before the fan confirms.
 */
import { useEffect, useState } from 'hono/jsx/dom';
import { call, problemOf, type Problem } from '../lib/api.ts';
import { formatTime, ProblemBox } from '../lib/ui.tsx';
import { SignIn } from './session.tsx';
import type { Session } from './types.ts';

interface Ticket {
  reservationId: string;
  concert: { id: string; title: string; venue: string; date: string; startsAt: string };
  status: 'held' | 'confirmed' | 'expired' | 'cancelled' | 'refunded';
  amount: number;
  seats: { seatNumber: number; section: string; price: number }[];
  createdAt: string;
  expiresAt: string;
  refundedAt: string | null;
  refund: { fee: number; until: string; allowed: boolean };
}

interface Refund {
  refunded: number;
  fee: number;
  balance: number;
}

const STATUS_TEXT: Record<Ticket['status'], string> = {
  held: 'Held, not paid',
  confirmed: 'Paid',
  expired: 'Hold expired',
  cancelled: 'Released',
  refunded: 'Refunded',
};

function TicketCard({ ticket, session, onChanged }: { ticket: Ticket; session: Session; onChanged: (note: string) => void }) {
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const headingId = `ticket-${ticket.reservationId}`;
  const refund = async () => {
    setBusy(true);
    try {
      const { body } = await call<Refund>(`/reservations/${ticket.reservationId}/refund`, { method: 'POST', bearer: session.token });
      setConfirming(false);
      onChanged(`Refunded ${body.refunded} points (fee ${body.fee}); your balance is ${body.balance} points.`);
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  };
  const seats = ticket.seats.map((seat) => seat.seatNumber).join(', ');
  return (
    <li class="card ticket" data-reservation={ticket.reservationId} data-status={ticket.status} aria-labelledby={headingId}>
      <h3 id={headingId}>
        <a href={`/c/${ticket.concert.id}`}>{ticket.concert.title}</a>
      </h3>
      <dl class="facts">
        <dt>Status</dt>
        <dd data-testid="ticket-status">{STATUS_TEXT[ticket.status]}</dd>
        <dt>When</dt>
        <dd>
          {formatTime(ticket.concert.startsAt)}, {ticket.concert.venue}
        </dd>
        <dt>Seats</dt>
        <dd data-testid="ticket-seats">{seats || '—'}</dd>
        <dt>Amount</dt>
        <dd data-testid="ticket-amount">{ticket.amount} points</dd>
      </dl>
      {ticket.status === 'confirmed' && !ticket.refund.allowed ? (
        <p class="hint">Refunds closed on {formatTime(ticket.refund.until)}.</p>
      ) : null}
      {ticket.refund.allowed && !confirming ? (
        <button type="button" onClick={() => setConfirming(true)}>
          Refund…
        </button>
      ) : null}
      {ticket.refund.allowed && confirming ? (
        <div class="banner" role="group" aria-label="Confirm the refund">
          <p data-testid="refund-terms">
            Refund seats {seats}: you get <strong>{ticket.amount - ticket.refund.fee}</strong> points back (the concert keeps a fee of{' '}
            {ticket.refund.fee} points). Refunds close {formatTime(ticket.refund.until)}. The seats go back on sale.
          </p>
          <div class="row">
            <button type="button" class="danger" disabled={busy} onClick={() => void refund()}>
              Confirm refund
            </button>
            <button type="button" class="link" disabled={busy} onClick={() => setConfirming(false)}>
              Keep my tickets
            </button>
          </div>
        </div>
      ) : null}
      <ProblemBox problem={problem} />
    </li>
  );
}

export function Tickets({ session, onSession }: { session: Session | undefined; onSession: (session: Session) => void }) {
  const [tickets, setTickets] = useState<Ticket[]>();
  const [problem, setProblem] = useState<Problem>();
  const [note, setNote] = useState<string>();
  const [reads, setReads] = useState(0);
  useEffect(() => {
    if (!session) return;
    let stopped = false;
    call<{ reservations: Ticket[] }>('/reservations', { bearer: session.token })
      .then(({ body }) => {
        if (!stopped) setTickets(body.reservations);
      })
      .catch((error: unknown) => {
        if (!stopped) setProblem(problemOf(error));
      });
    return () => {
      stopped = true;
    };
  }, [session?.token, reads]);
  if (!session) {
    return (
      <section aria-labelledby="tickets-title">
        <h2 id="tickets-title">My tickets</h2>
        <SignIn purpose="to see your tickets" onSignedIn={onSession} />
      </section>
    );
  }
  return (
    <section aria-labelledby="tickets-title">
      <h2 id="tickets-title">My tickets</h2>
      {note ? (
        <p class="banner" role="status" data-testid="tickets-note">
          {note}
        </p>
      ) : null}
      <ProblemBox problem={problem} />
      {tickets === undefined && !problem ? <p role="status">Loading your tickets…</p> : null}
      {tickets?.length === 0 ? (
        <p>
          No tickets yet. <a href="/">See the upcoming concerts</a>
        </p>
      ) : null}
      <ul class="tickets">
        {(tickets ?? []).map((ticket) => (
          <TicketCard
            ticket={ticket}
            session={session}
            onChanged={(text) => {
              setNote(text);
              setReads((n) => n + 1);
            }}
          />
        ))}
      </ul>
    </section>
  );
}
