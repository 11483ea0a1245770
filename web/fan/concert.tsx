/**
 * `/c/:id`: one concert — its details and live seat counts, when sales open (with a countdown), the
 * pre-queue draw's commitment (and, once drawn, the seed, checked in the page), and "Join the line".
 * Sign-in is asked for only when the fan joins. Once joined, the fan's way through the sale
 * (web/fan/journey.tsx) is shown here; a sold-out concert offers its waitlist instead.
 */
import { useEffect, useState } from 'hono/jsx/dom';
import { isShuffleSeed, shuffleCommitment } from '../../src/lib/opening-shuffle.ts';
import { ApiError, call, problemOf, type Problem } from '../lib/api.ts';
import type { QueueStatus, WaitlistOffer } from '../lib/queue-feed.ts';
import { countdown, formatTime, ProblemBox, useNow, usePolling } from '../lib/ui.tsx';
import { Checkout, Confirmed, OfferNotice, SeatMap, Waiting } from './journey.tsx';
import { SaleState } from './landing.tsx';
import { SignIn } from './session.tsx';
import { isSoldOut, type ConcertDetails, type Hold, type Opening, type Session, type Step } from './types.ts';
import { Waitlist } from './waitlist.tsx';

/** How often the live counts are re-read (edge-cached, about a second old at most). */
const DETAILS_REFRESH_MS = 5000;

/** The draw, for anyone to audit: the commitment before opening, the seed after, checked here. */
function Draw({ concertId, salesOpenAt, now }: { concertId: string; salesOpenAt: string; now: number }) {
  const [opening, setOpening] = useState<Opening>();
  const [check, setCheck] = useState<'matches' | 'differs'>();
  const opened = Date.parse(salesOpenAt) <= now;
  const drawn = opening?.seed != null;
  // Read once, then again every 10 s after opening until the seed is out (the room draws at its first act).
  usePolling(
    async (stopped) => {
      if (opening && (drawn || !opened || opening.order === 'fifo')) return;
      try {
        const { body } = await call<Opening>(`/concerts/${concertId}/opening`);
        if (!stopped()) setOpening(body);
      } catch {
        // The draw is extra information: the rest of the page works without it.
      }
    },
    10_000,
    [concertId, opened, drawn],
  );
  useEffect(() => {
    const seed = opening?.seed;
    if (!seed || !isShuffleSeed(seed)) return;
    void shuffleCommitment(seed).then((digest) => setCheck(digest === opening.commitment ? 'matches' : 'differs'));
  }, [opening?.seed]);
  if (!opening) return null;
  return (
    <section class="draw" aria-labelledby="draw-title">
      <h3 id="draw-title">Fair opening</h3>
      {opening.order === 'shuffle' ? (
        <p>
          Everyone who joins before sales open is placed in an order drawn at random when they open; later fans go behind them in arrival
          order. The draw's secret seed was fixed in advance, and its commitment is published now, so nobody (the organiser included) can
          change it afterwards.
        </p>
      ) : (
        <p>This concert's line keeps arrival order: no draw.</p>
      )}
      <dl class="facts">
        <dt>Commitment (SHA-256 of the seed)</dt>
        <dd>
          <code class="hash" data-testid="commitment">
            {opening.commitment}
          </code>
        </dd>
        <dt>Seed</dt>
        <dd>
          {opening.seed ? (
            <code class="hash" data-testid="seed">
              {opening.seed}
            </code>
          ) : (
            'revealed when sales open'
          )}
        </dd>
        {opening.prequeueSize !== null ? (
          <>
            <dt>Fans in the draw (P)</dt>
            <dd data-testid="prequeue-size">{opening.prequeueSize}</dd>
          </>
        ) : null}
      </dl>
      {check ? (
        <p role="status" data-testid="seed-check" class={check === 'matches' ? 'ok' : 'problem'}>
          {check === 'matches' ? 'Checked in this page: the seed hashes to the commitment.' : 'The seed does NOT hash to the commitment.'}
        </p>
      ) : null}
      <details>
        <summary>How to check it yourself</summary>
        <p>
          The commitment is the SHA-256 of the seed's 32 bytes: <code>printf %s SEED | xxd -r -p | sha256sum</code> prints it. With the
          seed and P, anyone recomputes every place's rank with <code>rankOfPlace</code> in <code>src/lib/opening-shuffle.ts</code>; the
          algorithm and test vectors are in <code>docs/fairness.md</code>. <code>npm run verify-draw -- --base-url URL --concert ID</code>
          checks the whole draw from public answers, and with your queue token, your own place.
        </p>
      </details>
    </section>
  );
}

export function ConcertPage({
  id,
  session,
  onSession,
  journey,
  onJourney,
}: {
  id: string;
  session: Session | undefined;
  onSession: (session: Session) => void;
  journey: Step | undefined;
  onJourney: (step: Step | undefined) => void;
}) {
  const [details, setDetails] = useState<ConcertDetails>();
  const [problem, setProblem] = useState<Problem>();
  const [missing, setMissing] = useState(false);
  const [signIn, setSignIn] = useState<{ purpose: string; then: (session: Session) => void }>();
  const [offer, setOffer] = useState<WaitlistOffer>();
  const [busy, setBusy] = useState(false);
  // Sold out is for good (DESIGN.md §3), though an offer's hold briefly shows seats as held: keep the waitlist once seen.
  const [soldOutSeen, setSoldOutSeen] = useState(false);
  const now = useNow();
  usePolling(
    async (stopped) => {
      try {
        const { body } = await call<ConcertDetails>(`/concerts/${encodeURIComponent(id)}`);
        if (stopped()) return;
        setDetails(body);
        if (isSoldOut(body)) setSoldOutSeen(true);
        setProblem(undefined);
      } catch (error) {
        if (stopped()) return;
        if (error instanceof ApiError && (error.problem.status === 404 || error.problem.status === 400)) setMissing(true);
        else setProblem(problemOf(error));
      }
    },
    DETAILS_REFRESH_MS,
    [id],
  );
  useEffect(() => {
    if (details) document.title = `${details.title} — Frontrow`;
  }, [details?.title]);

  if (missing) {
    return (
      <section class="card" aria-labelledby="missing-title">
        <h2 id="missing-title">No such concert</h2>
        <p>
          <a href="/">See the upcoming concerts</a>
        </p>
      </section>
    );
  }
  if (!details) {
    return (
      <section>
        <p role="status">Loading the concert…</p>
        <ProblemBox problem={problem} />
      </section>
    );
  }
  const concert = details;
  const needSession = (purpose: string, then: (session: Session) => void) => setSignIn({ purpose, then });
  const signedIn = (next: Session) => {
    const pending = signIn;
    setSignIn(undefined);
    onSession(next);
    pending?.then(next);
  };
  const join = async (signedInAs: Session) => {
    setBusy(true);
    try {
      const { body } = await call<QueueStatus & { token: string }>('/queue/token', { bearer: signedInAs.token, json: { concertId: concert.id } });
      const { token, ...first } = body;
      setProblem(undefined);
      setBusy(false);
      onJourney({ name: 'waiting', queueToken: token, first: { ...first, sessionExpiresAt: null } });
    } catch (error) {
      setProblem(problemOf(error));
      setBusy(false);
    }
  };
  const payOffer = (hold: Hold, queueToken: string | null) => {
    setOffer(undefined);
    onJourney({ name: 'checkout', queueToken, hold, fromWaitlist: true });
  };
  const waitlist = () =>
    session || !journey ? <Waitlist session={session} concert={concert} onSession={onSession} onPay={(hold) => payOffer(hold, null)} /> : null;

  let action;
  if (journey && session) {
    if (journey.name === 'waiting') {
      action = (
        <Waiting
          session={session}
          concert={concert}
          step={journey}
          soldOut={waitlist}
          onOffer={setOffer}
          onAdmitted={(status) => onJourney({ name: 'seats', queueToken: journey.queueToken, sessionExpiresAt: status.sessionExpiresAt })}
        />
      );
    } else if (journey.name === 'seats') {
      action = (
        <SeatMap session={session} concert={concert} step={journey} onHeld={(hold) => onJourney({ name: 'checkout', queueToken: journey.queueToken, hold })} />
      );
    } else if (journey.name === 'checkout') {
      action = (
        <Checkout
          session={session}
          concert={concert}
          step={journey}
          onPaid={(payment) => onJourney({ name: 'confirmed', hold: journey.hold, payment })}
          // A declined waitlist offer leaves the fan without a session: back to the concert, not the seat map.
          onReleased={() =>
            onJourney(journey.fromWaitlist || !journey.queueToken ? undefined : { name: 'seats', queueToken: journey.queueToken, sessionExpiresAt: null })
          }
        />
      );
    } else {
      action = <Confirmed concert={concert} step={journey} />;
    }
  } else if (soldOutSeen || isSoldOut(details)) {
    action = (
      <section class="card" aria-labelledby="sold-out-title">
        <h3 id="sold-out-title">Sold out</h3>
        {waitlist()}
      </section>
    );
  } else if (Date.parse(concert.startsAt) > now) {
    action = (
      <section class="card" aria-labelledby="join-title">
        <h3 id="join-title">Tickets</h3>
        <p>
          {concert.counts.available} of {concert.seatCount} seats available. Up to 4 per fan.
        </p>
        <button type="button" class="primary big-button" disabled={busy} onClick={() => (session ? void join(session) : needSession('to join the line', (s) => void join(s)))}>
          Join the line
        </button>
      </section>
    );
  }
  // The offer pushed on the queue socket is for this concert's line, waiting or admitted since.
  const offerFor = offer && journey && (journey.name === 'waiting' || journey.name === 'seats') ? journey : undefined;
  const opening = countdown(concert.salesOpenAt, now);
  return (
    <>
      <p class="crumbs">
        <a href="/">← All concerts</a>
      </p>
      <section class="card" aria-labelledby="concert-title">
        <h2 id="concert-title">{concert.title}</h2>
        <SaleState concert={concert} now={now} counts={concert.counts} />
        <dl class="facts">
          <dt>Venue</dt>
          <dd>{concert.venue}</dd>
          <dt>Starts</dt>
          <dd>{formatTime(concert.startsAt)}</dd>
          <dt>Sales open</dt>
          <dd data-testid="sales-open">
            {formatTime(concert.salesOpenAt)}
            {opening.over ? ' (open now)' : ` — in ${opening.text}`}
          </dd>
          <dt>Seats</dt>
          <dd data-testid="counts">
            {concert.counts.available} available · {concert.counts.held} held · {concert.counts.sold} sold
          </dd>
        </dl>
        <Draw concertId={concert.id} salesOpenAt={concert.salesOpenAt} now={now} />
      </section>
      {offer && offerFor ? <OfferNotice offer={offer} onPay={() => payOffer(offer, offerFor.queueToken)} /> : null}
      {signIn ? <SignIn purpose={signIn.purpose} onSignedIn={signedIn} onCancel={() => setSignIn(undefined)} /> : action}
      <ProblemBox problem={problem} />
    </>
  );
}
