/**
 * `/`: the concerts of the next {@link DAYS_AHEAD} days, grouped by day, each with its on-sale state
 * (a countdown while sales have not opened; seats left or sold out for the first on sale). No sign-in:
 * the list is the public, edge-cached `GET /concerts?from=&to=`.
 */
import { useEffect, useState } from 'hono/jsx/dom';
import { call, problemOf, type Problem } from '../lib/api.ts';
import { countdown, dayAfterToday, formatDay, ProblemBox, today, useNow } from '../lib/ui.tsx';
import type { Concert, ConcertDetails } from './types.ts';

/** How far ahead the list looks. */
export const DAYS_AHEAD = 60;

/**
 * How many on-sale concerts of the list have their seat counts read (`GET /concerts/:id`, edge-cached,
 * one request each) to say "sold out" or how many are left: the first ones, which a visitor sees first.
 */
export const COUNTED_CONCERTS = 12;

/** Sale state of a concert at `now`, with the countdown to its opening, and sold out when `counts` say so. */
export function SaleState({ concert, now, counts }: { concert: Concert; now: number; counts?: ConcertDetails['counts'] | undefined }) {
  if (Date.parse(concert.startsAt) <= now) return <span class="pill pill-past">Started</span>;
  const opening = countdown(concert.salesOpenAt, now);
  if (!opening.over) {
    return (
      <span class="pill pill-soon" data-testid="opens-in">
        Sales open in <span class="nowrap">{opening.text}</span>
      </span>
    );
  }
  if (counts && counts.available === 0 && counts.held === 0) return <span class="pill pill-past">Sold out</span>;
  return <span class="pill pill-open">On sale{counts ? ` · ${counts.available} left` : ''}</span>;
}

function byDay(concerts: Concert[]): [string, Concert[]][] {
  const days = new Map<string, Concert[]>();
  for (const concert of concerts) days.set(concert.date, [...(days.get(concert.date) ?? []), concert]);
  return [...days.entries()].sort(([a], [b]) => a.localeCompare(b));
}

export function Landing() {
  const [concerts, setConcerts] = useState<Concert[]>();
  const [problem, setProblem] = useState<Problem>();
  const now = useNow();
  useEffect(() => {
    let stopped = false;
    call<{ concerts: Concert[] }>(`/concerts?from=${today()}&to=${dayAfterToday(DAYS_AHEAD)}&limit=500`)
      .then(({ body }) => {
        if (!stopped) setConcerts(body.concerts);
      })
      .catch((error: unknown) => {
        if (!stopped) setProblem(problemOf(error));
      });
    return () => {
      stopped = true;
    };
  }, []);
  // A show that has begun sells nothing: it leaves the list (it is still reachable by its link).
  const upcoming = (concerts ?? []).filter((concert) => Date.parse(concert.startsAt) > now);
  const [counts, setCounts] = useState<Record<string, ConcertDetails['counts']>>({});
  useEffect(() => {
    if (!concerts) return;
    let stopped = false;
    const started = Date.now();
    const onSale = concerts.filter((c) => Date.parse(c.salesOpenAt) <= started && Date.parse(c.startsAt) > started).slice(0, COUNTED_CONCERTS);
    for (const concert of onSale) {
      call<ConcertDetails>(`/concerts/${concert.id}`)
        .then(({ body }) => {
          if (!stopped) setCounts((known) => ({ ...known, [concert.id]: body.counts }));
        })
        .catch(() => {
          // Counts are extra: without them the row still says "On sale".
        });
    }
    return () => {
      stopped = true;
    };
  }, [concerts]);
  return (
    <section aria-labelledby="upcoming-title">
      <h2 id="upcoming-title">Upcoming concerts</h2>
      <p class="hint">
        The next {DAYS_AHEAD} days. Join a concert's line from its page; fans who join before sales open are placed in an order drawn at
        random when they open, so there is no need to rush.
      </p>
      <ProblemBox problem={problem} />
      {concerts === undefined && !problem ? <p role="status">Loading concerts…</p> : null}
      {concerts !== undefined && upcoming.length === 0 ? <p>No concerts in the next {DAYS_AHEAD} days.</p> : null}
      {byDay(upcoming).map(([day, list]) => (
        <section class="card day" aria-labelledby={`day-${day}`}>
          <h3 id={`day-${day}`}>{formatDay(day)}</h3>
          <ul class="concerts">
            {list.map((concert) => (
              <li data-concert={concert.id}>
                <span class="concert-line">
                  <a href={`/c/${concert.id}`} class="concert-link">
                    {concert.title}
                  </a>
                  <span class="muted">
                    {' '}
                    · {concert.venue} · {new Date(concert.startsAt).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}
                  </span>
                </span>
                <SaleState concert={concert} now={now} counts={counts[concert.id]} />
              </li>
            ))}
          </ul>
        </section>
      ))}
    </section>
  );
}
