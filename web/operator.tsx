/**
 * The operator page (`/operator`, admin token): create a concert, tune its queue and watch the
 * on-sale live from `GET /admin/concerts/:id/stats`, with a chart of the last minutes; see its waitlist
 * and its draw, refund a reservation in full, and reconcile the room with Postgres (docs/operations.md).
 */
import { render, useRef, useState } from 'hono/jsx/dom';
import type { QueueConfig } from '../src/durable-objects/concert-room/model.ts';
import { call, problemOf, remembered, type Problem } from './lib/api.ts';
import { formFields, ProblemBox, today, usePolling } from './lib/ui.tsx';

/** How often the live view reads the stats. */
const SAMPLE_MS = 2000;
/** How much history the chart keeps. */
const CHART_WINDOW_MS = 5 * 60_000;

/** `GET /admin/concerts/:id/stats` (StatsSchema in src/routes/admin.ts, which the page cannot import: it needs the Worker's types). */
interface Stats {
  waiting: number;
  admitted: number;
  active: number;
  completed: number;
  soldOut: boolean;
  seats: { available: number; held: number; sold: number };
  waitlist: { waiting: number; offered: number; accepted: number; expired: number; left: number };
  revenue: number;
  queue: QueueConfig;
}

/** `GET /concerts/:id/opening`. */
interface Opening {
  order: 'shuffle' | 'fifo';
  salesOpenAt: string;
  commitment: string;
  seed: string | null;
  prequeueSize: number | null;
}

interface ReconcileReport {
  changed: number;
  differences: { seatNumber: number; room: { status: string; reservationId: string | null } | null; postgres: { status: string; reservationId: string | null } | null }[];
}
/** One stats reading; `admissions` is how many were admitted since the one before. */
interface Sample {
  at: number;
  waiting: number;
  admissions: number;
}

const adminToken = remembered('frontrow.admin');
const watchedConcert = remembered('frontrow.operator.concert');

function TokenForm({ onToken }: { onToken: (token: string) => void }) {
  return (
    <form
      class="card"
      aria-label="Operator sign-in"
      onSubmit={(event: Event) => {
        const { token = '' } = formFields(event);
        adminToken.set(token);
        onToken(token);
      }}
    >
      <h2>Operator sign-in</h2>
      <p class="hint">The Worker's ADMIN_TOKEN (`npm run dev` uses dev-admin-token unless ADMIN_TOKEN is set).</p>
      <label>
        Admin token <input name="token" type="password" required autocomplete="off" />
      </label>
      <button type="submit">Continue</button>
    </form>
  );
}

const optionalInt = (value: string | undefined) => (value ? Number(value) : undefined);

function CreateConcert({ token, onWatch }: { token: string; onWatch: (id: string) => void }) {
  const [problem, setProblem] = useState<Problem>();
  const create = async (event: Event) => {
    const f = formFields(event);
    const date = f.date ?? today();
    try {
      const { body } = await call<{ id: string }>('/admin/concerts', {
        bearer: token,
        json: {
          title: f.title,
          venue: f.venue,
          date,
          startsAt: new Date(`${date}T${f.time || '20:00'}`).toISOString(),
          salesOpenAt: new Date(Date.now() + Number(f.opensInMinutes || 0) * 60_000).toISOString(),
          seats: { count: Number(f.seats), price: Number(f.price) },
          queue: {
            admitPerWindow: Number(f.admitPerWindow),
            windowSeconds: Number(f.windowSeconds),
            ...(f.maxActive ? { maxActive: Number(f.maxActive) } : {}),
            paused: f.paused === 'on',
            openingOrder: f.openingOrder === 'fifo' ? 'fifo' : 'shuffle',
          },
          refunds: { fee: Number(f.refundFee || 0), cutoffHours: Number(f.refundCutoffHours || 24) },
        },
      });
      setProblem(undefined);
      onWatch(body.id);
    } catch (error) {
      setProblem(problemOf(error));
    }
  };
  const watch = (event: Event) => {
    const { id = '' } = formFields(event);
    onWatch(id.trim());
  };
  return (
    <section class="card" aria-labelledby="create-title">
      <h2 id="create-title">New concert</h2>
      <form class="grid-form" onSubmit={(event: Event) => void create(event)}>
        <label>
          Title <input name="title" required value="Frontrow live" />
        </label>
        <label>
          Venue <input name="venue" required value="Hall A" />
        </label>
        <label>
          Date <input type="date" name="date" required value={today()} />
        </label>
        <label>
          Doors <input type="time" name="time" value="20:00" />
        </label>
        <label>
          Seats <input type="number" name="seats" min="1" required value="24" />
        </label>
        <label>
          Price (points) <input type="number" name="price" min="0" required value="100" />
        </label>
        <label>
          Admit per window <input type="number" name="admitPerWindow" min="1" required value="250" />
        </label>
        <label>
          Window (s) <input type="number" name="windowSeconds" min="1" required value="10" />
        </label>
        <label>
          Max active (optional) <input type="number" name="maxActive" min="1" />
        </label>
        <label>
          Sales open in (min) <input type="number" name="opensInMinutes" min="0" value="0" />
        </label>
        <label>
          Refund fee (points) <input type="number" name="refundFee" min="0" value="0" />
        </label>
        <label>
          Refunds close (h before) <input type="number" name="refundCutoffHours" min="0" max="8760" value="24" />
        </label>
        <label>
          Pre-queue order{' '}
          <select name="openingOrder">
            <option value="shuffle">drawn at random at opening</option>
            <option value="fifo">arrival order</option>
          </select>
        </label>
        <label class="check">
          <input type="checkbox" name="paused" /> Start paused
        </label>
        <button type="submit">Create concert</button>
      </form>
      <form class="row" onSubmit={watch}>
        <label>
          Or watch concert id <input name="id" required pattern="[0-9a-fA-F-]{36}" />
        </label>
        <button type="submit">Watch</button>
      </form>
      <ProblemBox problem={problem} />
    </section>
  );
}

/** Line length (a line) and admissions per reading (bars) over the last {@link CHART_WINDOW_MS}. */
function Chart({ samples, now }: { samples: Sample[]; now: number }) {
  const width = 600;
  const height = 160;
  const top = Math.max(1, ...samples.map((s) => Math.max(s.waiting, s.admissions)));
  const x = (at: number) => width - ((now - at) / CHART_WINDOW_MS) * width;
  const y = (value: number) => height - (value / top) * (height - 10);
  const line = samples.map((s) => `${x(s.at).toFixed(1)},${y(s.waiting).toFixed(1)}`).join(' ');
  const last = samples.at(-1);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`Line length and admissions over the last ${CHART_WINDOW_MS / 60_000} minutes`}>
        {samples.map((s) =>
          s.admissions > 0 ? <rect class="bar" x={x(s.at) - 4} y={y(s.admissions)} width="8" height={height - y(s.admissions)} /> : null,
        )}
        <polyline class="waiting-line" points={line} fill="none" />
      </svg>
      <figcaption>
        <span class="key waiting-key">line length</span> <span class="key bar-key">admissions per {SAMPLE_MS / 1000} s</span> — last{' '}
        {CHART_WINDOW_MS / 60_000} minutes, peak {top}
        {last ? `, now ${last.waiting} waiting` : ''}
      </figcaption>
    </figure>
  );
}

function QueueSettings({ token, concertId, config, onChanged }: { token: string; concertId: string; config: QueueConfig; onChanged: () => void }) {
  const [problem, setProblem] = useState<Problem>();
  const patch = async (body: Partial<QueueConfig>) => {
    try {
      await call(`/admin/concerts/${concertId}/queue`, { method: 'PATCH', bearer: token, json: body });
      setProblem(undefined);
      onChanged();
    } catch (error) {
      setProblem(problemOf(error));
    }
  };
  const save = (event: Event) => {
    const f = formFields(event);
    void patch({
      admitPerWindow: Number(f.admitPerWindow),
      windowSeconds: Number(f.windowSeconds),
      maxActive: optionalInt(f.maxActive) ?? null,
      sessionSeconds: Number(f.sessionSeconds),
      holdSeconds: Number(f.holdSeconds),
      waitlistOfferSeconds: Number(f.waitlistOfferSeconds),
    });
  };
  return (
    <section aria-labelledby="queue-title">
      <h3 id="queue-title">
        Queue: <span data-testid="admission">{config.paused ? 'paused' : 'admitting'}</span>
      </h3>
      <button type="button" class={config.paused ? 'primary' : 'danger'} onClick={() => void patch({ paused: !config.paused })}>
        {config.paused ? 'Resume admission' : 'Pause admission'}
      </button>
      <form class="row" onSubmit={save} aria-label="Queue settings">
        <label>
          Admit per window <input type="number" name="admitPerWindow" min="1" required value={String(config.admitPerWindow)} />
        </label>
        <label>
          Window (s) <input type="number" name="windowSeconds" min="1" required value={String(config.windowSeconds)} />
        </label>
        <label>
          Max active <input type="number" name="maxActive" min="1" value={config.maxActive === null ? '' : String(config.maxActive)} />
        </label>
        <label>
          Session (s) <input type="number" name="sessionSeconds" min="1" required value={String(config.sessionSeconds)} />
        </label>
        <label>
          Hold (s) <input type="number" name="holdSeconds" min="1" required value={String(config.holdSeconds)} />
        </label>
        <label>
          Waitlist offer (s) <input type="number" name="waitlistOfferSeconds" min="1" required value={String(config.waitlistOfferSeconds)} />
        </label>
        <button type="submit">Save settings</button>
      </form>
      <p class="hint">
        Request rate limits are per Cloudflare location, set in wrangler.toml ([[ratelimits]]: 60 per user and 1,000 per client address,
        per action per 10 s by default; RATE_LIMITS = "off" turns them off), not here: see docs/api.md. Admission settings apply from
        the next window; a new session length applies to fans admitted after the change.
      </p>
      <ProblemBox problem={problem} />
    </section>
  );
}

/** The pre-queue draw, as anyone can read it: the commitment, and after opening the seed and P. */
function Draw({ concertId }: { concertId: string }) {
  const [opening, setOpening] = useState<Opening>();
  usePolling(
    async (stopped) => {
      try {
        const { body } = await call<Opening>(`/concerts/${concertId}/opening`);
        if (!stopped()) setOpening(body);
      } catch {
        // Shown when it can be read; the rest of the view does not depend on it.
      }
    },
    10_000,
    [concertId],
  );
  if (!opening) return null;
  return (
    <section aria-labelledby="draw-title">
      <h3 id="draw-title">Draw ({opening.order === 'shuffle' ? 'pre-queue drawn at random at opening' : 'arrival order'})</h3>
      <dl class="facts">
        <dt>Commitment</dt>
        <dd>
          <code class="hash" data-testid="operator-commitment">
            {opening.commitment}
          </code>
        </dd>
        <dt>Seed</dt>
        <dd>{opening.seed ? <code class="hash">{opening.seed}</code> : 'secret until sales open'}</dd>
        <dt>P (fans in the draw)</dt>
        <dd data-testid="operator-prequeue">{opening.prequeueSize ?? 'fixed at opening'}</dd>
      </dl>
    </section>
  );
}

/** An admin refund: any paid reservation, in full, at any time (a cancelled show: docs/operations.md). */
function Refund({ token }: { token: string }) {
  const [problem, setProblem] = useState<Problem>();
  const [done, setDone] = useState<string>();
  const refund = async (event: Event) => {
    const { reservationId = '' } = formFields(event);
    try {
      const { body } = await call<{ refunded: number; balance: number }>(`/reservations/${reservationId.trim()}/refund`, { method: 'POST', bearer: token });
      setProblem(undefined);
      setDone(`Refunded ${body.refunded} points; the owner's balance is ${body.balance}.`);
    } catch (error) {
      setDone(undefined);
      setProblem(problemOf(error));
    }
  };
  return (
    <section aria-labelledby="refund-title">
      <h3 id="refund-title">Refund a reservation</h3>
      <form class="row" onSubmit={(event: Event) => void refund(event)} aria-labelledby="refund-title">
        <label>
          Reservation id <input name="reservationId" required pattern="[0-9a-fA-F-]{36}" />
        </label>
        <button type="submit">Refund in full</button>
      </form>
      <p class="hint">As the admin: no fee and no cut-off. The seats go back on sale, or to the waitlist once sold out.</p>
      {done ? (
        <p role="status" class="ok">
          {done}
        </p>
      ) : null}
      <ProblemBox problem={problem} />
    </section>
  );
}

/** Compares the room's seat map with Postgres and repairs the room (Postgres wins); shows what differed. */
function Reconcile({ token, concertId }: { token: string; concertId: string }) {
  const [problem, setProblem] = useState<Problem>();
  const [report, setReport] = useState<ReconcileReport>();
  const run = async () => {
    try {
      const { body } = await call<ReconcileReport>(`/admin/concerts/${concertId}/reconcile`, { method: 'POST', bearer: token });
      setProblem(undefined);
      setReport(body);
    } catch (error) {
      setProblem(problemOf(error));
    }
  };
  return (
    <section aria-labelledby="reconcile-title">
      <h3 id="reconcile-title">Reconcile with Postgres</h3>
      <button type="button" onClick={() => void run()}>
        Reconcile now
      </button>
      {report ? (
        <div role="status" data-testid="reconcile-report">
          <p>{report.changed === 0 ? 'No differences: the room agrees with Postgres.' : `${report.changed} seat(s) repaired from Postgres:`}</p>
          <ul>
            {report.differences.map((d) => (
              <li>
                Seat {d.seatNumber}: room {d.room?.status ?? 'missing'}, Postgres {d.postgres?.status ?? 'missing'}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <ProblemBox problem={problem} />
    </section>
  );
}

function LiveView({ token, concertId, onClose }: { token: string; concertId: string; onClose: () => void }) {
  const [stats, setStats] = useState<Stats>();
  const [samples, setSamples] = useState<Sample[]>([]);
  const [problem, setProblem] = useState<Problem>();
  const [tick, setTick] = useState(0);
  // Outlives the effect, which restarts after every settings change: no admission goes uncounted.
  const previousAdmitted = useRef<number | undefined>(undefined);
  usePolling(
    async (stopped) => {
      try {
        const { body } = await call<Stats>(`/admin/concerts/${concertId}/stats`, { bearer: token });
        if (stopped()) return;
        const now = Date.now();
        const admissions = previousAdmitted.current === undefined ? 0 : Math.max(0, body.admitted - previousAdmitted.current);
        previousAdmitted.current = body.admitted;
        setStats(body);
        setSamples((old) => [...old.filter((s) => now - s.at < CHART_WINDOW_MS), { at: now, waiting: body.waiting, admissions }]);
        setProblem(undefined);
      } catch (error) {
        if (!stopped()) setProblem(problemOf(error));
      }
    },
    SAMPLE_MS,
    [concertId, tick],
  );
  const tiles: [string, number | undefined][] = [
    ['Waiting', stats?.waiting],
    ['Admitted', stats?.admitted],
    ['Active', stats?.active],
    ['Held', stats?.seats.held],
    ['Sold', stats?.seats.sold],
    ['Available', stats?.seats.available],
    ['Revenue (points)', stats?.revenue],
  ];
  const waitlistTiles: [string, number | undefined][] = [
    ['Waiting', stats?.waitlist.waiting],
    ['Offered', stats?.waitlist.offered],
    ['Accepted', stats?.waitlist.accepted],
    ['Lapsed', stats?.waitlist.expired],
    ['Left', stats?.waitlist.left],
  ];
  return (
    <section class="card" aria-labelledby="live-title">
      <h2 id="live-title">
        Live: <code data-testid="concert-id">{concertId}</code>{' '}
        <button type="button" class="link" onClick={onClose}>
          Close
        </button>
      </h2>
      {stats?.soldOut ? <p class="banner">Sold out</p> : null}
      <dl class="tiles">
        {tiles.map(([name, value]) => (
          <div data-stat={name}>
            <dt>{name}</dt>
            <dd>{value ?? '…'}</dd>
          </div>
        ))}
      </dl>
      <Chart samples={samples} now={samples.at(-1)?.at ?? Date.now()} />
      <h3 id="waitlist-title">Waitlist{stats?.soldOut ? '' : ' (opens at sell-out)'}</h3>
      <dl class="tiles" aria-labelledby="waitlist-title">
        {waitlistTiles.map(([name, value]) => (
          <div data-waitlist-stat={name}>
            <dt>{name}</dt>
            <dd>{value ?? '…'}</dd>
          </div>
        ))}
      </dl>
      {stats ? <QueueSettings token={token} concertId={concertId} config={stats.queue} onChanged={() => setTick(tick + 1)} /> : null}
      <Draw concertId={concertId} />
      <Refund token={token} />
      <Reconcile token={token} concertId={concertId} />
      <ProblemBox problem={problem} />
    </section>
  );
}

function App() {
  const [token, setToken] = useState(adminToken.get() ?? undefined);
  const [concertId, setConcertId] = useState(watchedConcert.get() ?? undefined);
  const watch = (id: string | undefined) => {
    watchedConcert.set(id ?? null);
    setConcertId(id);
  };
  if (!token) return <TokenForm onToken={setToken} />;
  return (
    <>
      <p class="signed-in">
        Operator{' '}
        <button
          type="button"
          class="link"
          onClick={() => {
            adminToken.set(null);
            setToken(undefined);
          }}
        >
          Sign out
        </button>
      </p>
      {concertId ? <LiveView token={token} concertId={concertId} onClose={() => watch(undefined)} /> : <CreateConcert token={token} onWatch={watch} />}
    </>
  );
}

render(<App />, document.getElementById('app')!);
