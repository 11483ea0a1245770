// Proof of work at the entrance (issue 20): a signed, expiring ALTCHA challenge bound to one user and
// one concert, solved by the fan and carried by the join. Verification here is stateless (two HMACs,
// no store); the only state, the set of spent challenges, lives in the concert's room, which the
// join reaches anyway (concert-room/entry.ts).
//
// Why ALTCHA's deterministic mode (a server-chosen counter, keySignature): the server derives the key
// for a random counter once when it issues the challenge and signs it, so verifying a join is one
// HMAC over the parameters and one over the submitted key, whatever the cost. The solver must try
// counters from 0 until it finds the key whose first 16 bytes the challenge shows: `cost` attempts on
// average, each a PBKDF2-SHA-256 of ENTRY_POW_ITERATIONS rounds, which runs at about native speed in a
// browser's WebCrypto too (a per-call overhead that plain SHA-256 attempts would be dominated by).
//
// ALTCHA's Hono plugin is not used: it answers 403 with one generic message, keeps its spent set in an
// in-memory map per isolate (useless across isolates) and reads a form field; the join needs stable
// codes, a spent set that holds across isolates, and a bound to user and concert.
import { createChallenge, randomInt, verifySolution, type Challenge, type Solution } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/web/pbkdf2';
import { AppError, validationFailed } from './errors.ts';

/** ALTCHA algorithm of every entry challenge. */
export const ENTRY_POW_ALGORITHM = 'PBKDF2/SHA-256';

/** PBKDF2 rounds per attempt: enough that a browser's per-call overhead does not dominate. @default 1000 */
export const ENTRY_POW_ITERATIONS = 1_000;

/** How long a challenge may be solved and used. Also how long the room remembers it as spent. @default 300 */
export const ENTRY_CHALLENGE_TTL_SECONDS = 300;

/** Largest `cost` an admin may set (about 20 s of one native core at 1,000 rounds an attempt). */
export const MAX_ENTRY_POW_COST = 100_000;

/** Where the rate rule starts raising the cost, unless the concert says otherwise. @default 200 */
export const DEFAULT_SURGE_JOINS_PER_SECOND = 200;

/** The surge rule never raises a challenge's cost above this multiple of the concert's. @default 8 */
export const MAX_SURGE_MULTIPLIER = 8;

/** A concert's proof-of-work setting (`entry.proofOfWork`). */
export interface ProofOfWorkConfig {
  /** Mean attempts a solver needs (each ENTRY_POW_ITERATIONS rounds of PBKDF2-SHA-256). Also the floor a join accepts. */
  cost: number;
  /** Joins placed per second from which new challenges cost more (see surgeCost). @default 200 */
  surgeJoinsPerSecond: number;
}

/** Per-concert entry settings (`entry` in the queue settings). */
export interface EntryConfig {
  /** null: no proof of work asked (the default). */
  proofOfWork: ProofOfWorkConfig | null;
}

/** What the join hands the room once the proof checked out: the room rejects reuse and too cheap a cost. */
export interface EntryProof {
  /** The challenge's signature: unique per challenge, and unforgeable. */
  id: string;
  cost: number;
  /** Unix ms after which the challenge is refused anyway, so the room may forget it. */
  expiresAt: number;
}

/**
 * The cost of a challenge issued now: the concert's cost, doubled for each doubling of the join rate
 * past `surgeJoinsPerSecond` (rate in [S, 2S) → 2×, [2S, 4S) → 4×, beyond → 8×, never more).
 * A challenge keeps the cost it was issued with; a join accepts any cost ≥ the concert's own, so a fan
 * who was given a dearer challenge in a rush is never turned away for it.
 */
export function surgeCost(config: ProofOfWorkConfig, joinsPerSecond: number): number {
  if (joinsPerSecond < config.surgeJoinsPerSecond) return config.cost;
  const doublings = 1 + Math.floor(Math.log2(joinsPerSecond / config.surgeJoinsPerSecond));
  return Math.min(MAX_ENTRY_POW_COST, config.cost * Math.min(MAX_SURGE_MULTIPLIER, 2 ** doublings));
}

/** Issues a signed challenge for `userId` joining `concertId`, costing `cost` attempts on average. */
export async function createEntryChallenge(secret: string | undefined, input: { userId: string; concertId: string; cost: number }): Promise<Challenge> {
  // The counter the solver must reach: uniform in [cost/2, 3·cost/2], so the mean is `cost`.
  const low = Math.max(1, Math.ceil(input.cost / 2));
  const counter = randomInt(low + input.cost, low);
  return createChallenge({
    algorithm: ENTRY_POW_ALGORITHM,
    cost: ENTRY_POW_ITERATIONS,
    counter,
    deriveKey,
    expiresAt: Math.floor(Date.now() / 1000) + ENTRY_CHALLENGE_TTL_SECONDS,
    data: { concertId: input.concertId, userId: input.userId, cost: input.cost },
    ...secrets(secret),
  });
}

const powError = (status: 400 | 403, code: string, detail: string) => new AppError(status, code, 'Proof of work refused', detail);

/** Stable codes of a refused proof (DESIGN.md §2, docs/entry.md). */
export const powRequired = () => powError(403, 'POW_REQUIRED', 'This concert asks for a proof of work: GET /queue/challenge, solve it, send it as `altcha`');
export const powReused = () => powError(403, 'POW_REUSED', 'This solution was used already: fetch a new challenge');
export const powTooCheap = (cost: number) => powError(403, 'POW_TOO_CHEAP', `The challenge is cheaper than this concert now asks (${cost}): fetch a new one`);

/**
 * Checks the `altcha` field of a join: a base64 JSON `{challenge, solution}` (ALTCHA's own payload)
 * for `userId` joining `concertId`. Throws a 4xx AppError with a stable code; writes nothing.
 */
export async function verifyEntryProof(secret: string | undefined, altcha: string, expected: { userId: string; concertId: string }): Promise<EntryProof> {
  const payload = parsePayload(altcha);
  const result = await verifySolution({ challenge: payload.challenge, solution: payload.solution, deriveKey, ...secrets(secret) });
  if (result.expired) throw powError(403, 'POW_EXPIRED', `The challenge expired (they last ${ENTRY_CHALLENGE_TTL_SECONDS} s): fetch a new one`);
  if (result.invalidSignature) throw powError(403, 'POW_INVALID', 'The challenge was not issued by this server, or was changed');
  // The data is signed, so from here it is what the server issued.
  const data = payload.challenge.parameters.data ?? {};
  if (data.concertId !== expected.concertId) throw powError(403, 'POW_WRONG_CONCERT', 'The challenge was issued for another concert');
  if (data.userId !== expected.userId) throw powError(403, 'POW_WRONG_USER', 'The challenge was issued to another user');
  if (!result.verified) throw powError(403, 'POW_INVALID', 'The solution does not solve the challenge');
  const expiresAt = payload.challenge.parameters.expiresAt;
  if (typeof data.cost !== 'number' || typeof expiresAt !== 'number' || !payload.challenge.signature) {
    throw powError(403, 'POW_INVALID', 'The challenge lacks its cost or expiry');
  }
  return { id: payload.challenge.signature, cost: data.cost, expiresAt: expiresAt * 1000 };
}

function parsePayload(altcha: string): { challenge: Challenge; solution: Solution } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(atob(altcha));
  } catch {
    throw validationFailed('altcha: not base64 JSON');
  }
  const p = parsed as { challenge?: Challenge; solution?: Solution } | null;
  if (
    typeof p !== 'object' ||
    p === null ||
    typeof p.challenge !== 'object' ||
    p.challenge === null ||
    typeof p.challenge.parameters !== 'object' ||
    p.challenge.parameters === null ||
    typeof p.solution !== 'object' ||
    p.solution === null
  ) {
    throw validationFailed('altcha: expected {challenge: {parameters, signature}, solution: {counter, derivedKey}}');
  }
  // Only ALTCHA parameters this server issues: anything else is not one of its challenges.
  if (p.challenge.parameters.algorithm !== ENTRY_POW_ALGORITHM || p.challenge.parameters.cost !== ENTRY_POW_ITERATIONS) {
    throw powError(403, 'POW_INVALID', 'The challenge was not issued by this server, or was changed');
  }
  return { challenge: p.challenge, solution: p.solution };
}

/** Encodes a solved challenge as the `altcha` field of a join (what solvers send). */
export function encodeEntryProof(challenge: Challenge, solution: Solution): string {
  return btoa(JSON.stringify({ challenge, solution: { counter: solution.counter, derivedKey: solution.derivedKey } }));
}

function requireSecret(secret: string | undefined): string {
  // Configuration, not input: a missing secret is a deployment bug (500), never a fan's fault.
  if (!secret || secret.length < 32) throw new Error('ENTRY_POW_SECRET must be set (at least 32 characters) for a concert with a proof of work');
  return secret;
}

// Two keys from one secret: the challenge's signature and the derived key's (ALTCHA wants them distinct).
function secrets(secret: string | undefined) {
  const s = requireSecret(secret);
  return { hmacSignatureSecret: `${s}:challenge`, hmacKeySignatureSecret: `${s}:key` };
}
