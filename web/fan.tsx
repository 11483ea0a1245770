/**
 * The fan page: `/` lists the upcoming concerts, `/c/:id` is a concert's page where the fan joins
 * its line (signing in only then) and goes through the sale, `/tickets` lists the fan's reservations.
 * Routes are client-side (web/lib/router.ts); the Worker serves this page for each of them.
 */
import { render, useEffect, useState } from 'hono/jsx/dom';
import { useRoute } from './lib/router.ts';
import { ConcertPage } from './fan/concert.tsx';
import { Landing } from './fan/landing.tsx';
import { loadSession, saveSession, SignedIn } from './fan/session.tsx';
import { Tickets } from './fan/tickets.tsx';
import type { Session, Step } from './fan/types.ts';

function App() {
  const route = useRoute();
  const [session, setSession] = useState(loadSession());
  // The sale the fan is going through, kept while they look at other pages (one at a time, as one tab).
  const [journey, setJourney] = useState<{ concertId: string; step: Step }>();
  const changeSession = (next: Session | undefined) => {
    saveSession(next);
    setSession(next);
    if (!next) setJourney(undefined);
  };
  useEffect(() => {
    // The header's links are static HTML: mark the one for this page.
    for (const link of document.querySelectorAll<HTMLAnchorElement>('header nav a')) {
      const here = (route.name === 'home' && link.pathname === '/') || (route.name === 'tickets' && link.pathname === '/tickets');
      if (here) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }, [route.name]);
  let page;
  if (route.name === 'home') page = <Landing />;
  else if (route.name === 'tickets') page = <Tickets session={session} onSession={changeSession} />;
  else if (route.name === 'concert') {
    page = (
      <ConcertPage
        id={route.id}
        session={session}
        onSession={changeSession}
        journey={journey?.concertId === route.id ? journey.step : undefined}
        onJourney={(step) => setJourney(step ? { concertId: route.id, step } : undefined)}
      />
    );
  } else {
    page = (
      <p>
        Nothing here. <a href="/">See the upcoming concerts</a>
      </p>
    );
  }
  return (
    <>
      <SignedIn session={session} onSignOut={() => changeSession(undefined)} />
      {page}
    </>
  );
}

render(<App />, document.getElementById('app')!);
