import type { ConcertLobby } from '../durable-objects/concert-lobby.ts';
import type { ConcertRoom, JoinResult } from '../durable-objects/concert-room/index.ts';
import { describeError, logJson } from '../lib/logging.ts';
import { certainlyWaiting, waitingStatus, type AdmissionSnapshot, type QueueStatus } from '../durable-objects/concert-room/model.ts';
import { notFound } from '../lib/errors.ts';
import { invalidQueueToken, signQueueToken, type QueueClaims } from '../lib/queue-token.ts';
import { createEntryChallenge, powRequired, powReused, powTooCheap, verifyEntryProof, type EntryProof } from '../lib/entry-proof.ts';

export type RoomStub = DurableObjectStub<ConcertRoom>;
export type LobbyStub = DurableObjectStub<ConcertLobby>;

export interface QueueDeps {
  room: RoomStub;
  /** The concert's lobby shard `shard` (issue 14). */
  lobby?: (shard: number) => LobbyStub;
  /** The concert's lobby shard count as this isolate last saw it (1 when unknown). */
  lobbyShards?: number;
  queueTokenSecret: string;
  /** HMAC secret of proof-of-work challenges (ENTRY_POW_SECRET); needed only by concerts that ask for one. */
  entryPowSecret?: string | undefined;
  /** Publishes a fresh snapshot to the edge cache in the background. */
  publish: (concertId: string, snapshot: AdmissionSnapshot) => void;
}

export const concertNotFound = (concertId: string) => notFound('CONCERT_NOT_FOUND', `No concert ${concertId}`);

/**
 * Lobby shard counts per concert as this isolate last saw them in a room's answer or the edge
 * snapshot (bounded; the oldest entry goes first). Unknown means 1: the join goes to the room,
 * whose answer then says how many lobbies there are.
 */
const lobbyShardsSeen = new Map<string, number>();
const LOBBY_SHARDS_MEMORY = 1_000;

export function rememberLobbyShards(concertId: string, shards: number | undefined): void {
  if (shards === undefined) return;
  lobbyShardsSeen.delete(concertId);
  if (lobbyShardsSeen.size >= LOBBY_SHARDS_MEMORY) lobbyShardsSeen.delete(lobbyShardsSeen.keys().next().value!);
  lobbyShardsSeen.set(concertId, shards);
}

export const lobbyShardsOf = (concertId: string): number | undefined => lobbyShardsSeen.get(concertId);

/** A user's lobby shard: FNV-1a of the user id, so a re-join goes to the same lobby. */
export function lobbyShardFor(userId: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) hash = Math.imul(hash ^ userId.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % shards;
}

/** Sends a join to the user's lobby shard when the concert has several, else to the room. */
async function placeInLine(deps: QueueDeps, userId: string, concertId: string, proof: EntryProof | null): Promise<JoinResult> {
  const shards = deps.lobbyShards ?? 1;
  if (shards <= 1 || !deps.lobby) return deps.room.join(userId, proof);
  try {
    return await deps.lobby(lobbyShardFor(userId, shards)).join(concertId, userId, proof);
  } catch (error) {
    // A lobby reset mid-batch (or unreachable): the room itself places the fan, and if the lost
    // batch had reached it, answers with the place that batch gave (the proof it spent included).
    logJson('warn', 'lobby join failed; joining at the room', { concertId, ...describeError(error) });
    return deps.room.join(userId, proof, true);
  }
}

/**
 * Joins the line (or re-joins: same place, same token) and signs the queue token. `altcha`: the
 * join's proof of work (issue 20), checked here without any store; the room says whether the concert
 * asks for one and refuses a challenge used before.
 */
export async function joinQueue(deps: QueueDeps, userId: string, concertId: string, altcha?: string) {
  const proof = altcha === undefined ? null : await verifyEntryProof(deps.entryPowSecret, altcha, { userId, concertId });
  const result = await placeInLine(deps, userId, concertId, proof);
  if (!result.ok) {
    if (result.reason === 'POW_REQUIRED') throw powRequired();
    if (result.reason === 'POW_REUSED') throw powReused();
    if (result.reason === 'POW_TOO_CHEAP') throw powTooCheap(result.cost);
    throw concertNotFound(concertId);
  }
  rememberLobbyShards(concertId, result.snapshot.lobbyShards);
  // No snapshot publish here: a join moves nobody's position, and the room publishes whenever
  // admission does move the watermark.
  const token = await signQueueToken(deps.queueTokenSecret, { userId, concertId, seq: result.seq, jti: result.jti }, result.issuedAt);
  return {
    token,
    position: result.status.position,
    status: result.status.status,
    estimatedWaitSeconds: result.status.estimatedWaitSeconds,
    ...(result.status.randomizedAtOpening ? { randomizedAtOpening: true as const } : {}),
    ...(result.status.waitlist ? { waitlist: result.status.waitlist } : {}),
  };
}

/**
 * A proof-of-work challenge for `userId` joining `concertId` at the cost the room asks now, or
 * `{required: false}` when the concert asks for none.
 */
export async function entryChallenge(deps: Pick<QueueDeps, 'room' | 'entryPowSecret'>, userId: string, concertId: string) {
  const asked = await deps.room.entryChallengeCost();
  if (!asked.ok) throw concertNotFound(concertId);
  if (asked.cost === null) return { required: false as const };
  return { required: true as const, cost: asked.cost, challenge: await createEntryChallenge(deps.entryPowSecret, { userId, concertId, cost: asked.cost }) };
}

/**
 * A queue token's status. A waiting place is answered from the edge snapshot when one is cached
 * and the place is certainly still waiting (see certainlyWaiting); admitted and ended sessions, and
 * places the line may have reached since, ask the room.
 */
export async function queueStatus(
  deps: QueueDeps & { cached: AdmissionSnapshot | undefined },
  claims: QueueClaims,
  now = Date.now(),
): Promise<QueueStatus> {
  if (deps.cached && certainlyWaiting(claims.seq, deps.cached, now)) return waitingStatus(claims.seq, deps.cached, now);
  const result = await deps.room.status(claims.seq, claims.userId, claims.jti);
  if (!result.ok) {
    if (result.reason === 'CONCERT_NOT_FOUND') throw concertNotFound(claims.concertId);
    throw invalidQueueToken('Queue token does not match a place in this line');
  }
  deps.publish(claims.concertId, result.snapshot);
  return result.status;
}
