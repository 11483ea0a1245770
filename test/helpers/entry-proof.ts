// Solving the proof of work at the entrance (issue 20) the way a fan's page does: fetch a challenge,
// run altcha-lib's solver with the WebCrypto PBKDF2 (here inside workerd), send the payload as `altcha`.
import { solveChallenge, type Challenge } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/web/pbkdf2';
import { encodeEntryProof } from '../../src/lib/entry-proof.ts';
import { api } from './api.ts';
import { tokenFor } from './concerts.ts';

export interface ChallengeBody {
  required: boolean;
  cost?: number;
  challenge?: Challenge;
}

/** GET /queue/challenge as `userId`; returns the raw response. */
export async function fetchChallenge(concertId: string, userId: string): Promise<Response> {
  return api(`/queue/challenge?concertId=${concertId}`, { headers: { Authorization: `Bearer ${await tokenFor(userId)}` } });
}

/** Solves `challenge` and returns the join's `altcha` field. */
export async function solve(challenge: Challenge): Promise<string> {
  const solution = await solveChallenge({ challenge, deriveKey });
  if (!solution) throw new Error('challenge not solved');
  return encodeEntryProof(challenge, solution);
}

/** A solved challenge for `userId` joining `concertId` (the concert must ask for a proof). */
export async function solvedProof(concertId: string, userId: string): Promise<string> {
  const response = await fetchChallenge(concertId, userId);
  if (response.status !== 200) throw new Error(`challenge failed: ${response.status} ${await response.text()}`);
  const body = await response.json<ChallengeBody>();
  if (!body.challenge) throw new Error('the concert asks for no proof of work');
  return solve(body.challenge);
}

/** POST /queue/token as `userId` carrying `altcha` (omitted when undefined). */
export async function joinWithProof(concertId: string, userId: string, altcha: string | undefined): Promise<Response> {
  return api('/queue/token', {
    method: 'POST',
    headers: { Authorization: `Bearer ${await tokenFor(userId)}` },
    json: altcha === undefined ? { concertId } : { concertId, altcha },
  });
}
