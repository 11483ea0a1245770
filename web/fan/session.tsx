/**
 * Who the fan is: a user token kept for this tab. Signing in is asked for only when an action needs
 * it (joining the line or the waitlist, My tickets); locally it mints a token with
 * `POST /auth/dev-token` (DEV_AUTH), where a real deployment would send the fan to its identity provider.
 */
import { useState } from 'hono/jsx/dom';
import { call, problemOf, remembered, type Problem } from '../lib/api.ts';
import { formFields, ProblemBox } from '../lib/ui.tsx';
import type { Session } from './types.ts';

const storedSession = remembered('frontrow.fan');

export function loadSession(): Session | undefined {
  const raw = storedSession.get();
  return raw ? (JSON.parse(raw) as Session) : undefined;
}

export function saveSession(session: Session | undefined): void {
  storedSession.set(session ? JSON.stringify(session) : null);
}

/** "Signed in as …" with a way out; nothing when signed out (sign-in comes with the action that needs it). */
export function SignedIn({ session, onSignOut }: { session: Session | undefined; onSignOut: () => void }) {
  if (!session) return null;
  return (
    <p class="signed-in">
      Signed in as <strong data-testid="user">{session.userId}</strong>{' '}
      <button type="button" class="link" onClick={onSignOut}>
        Sign out
      </button>
    </p>
  );
}

/** The sign-in form, titled by what it is for ("Sign in to join the line"). */
export function SignIn({ purpose, onSignedIn, onCancel }: { purpose: string; onSignedIn: (session: Session) => void; onCancel?: () => void }) {
  const [problem, setProblem] = useState<Problem>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    const { userId = '' } = formFields(event);
    setBusy(true);
    try {
      const { body } = await call<{ token: string }>('/auth/dev-token', { json: { userId } });
      setProblem(undefined);
      onSignedIn({ userId, token: body.token });
    } catch (error) {
      setProblem(problemOf(error));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card sign-in" onSubmit={(event: Event) => void submit(event)} aria-labelledby="sign-in-title">
      <h3 id="sign-in-title">Sign in {purpose}</h3>
      <p class="hint">Local development: any user id; the page mints a token with POST /auth/dev-token.</p>
      <div class="row">
        <label>
          User id <input name="userId" required autocomplete="username" placeholder="fan-1" autofocus />
        </label>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {onCancel ? (
          <button type="button" class="link" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
      </div>
      <ProblemBox problem={problem} />
    </form>
  );
}
