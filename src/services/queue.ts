import type { ConcertRoom } from '../durable-objects/concert-room/index.ts';
import { certainlyWaiting, waitingStatus, type AdmissionSnapshot, type QueueStatus } from '../durable-objects/concert-room/model.ts';
import { notFound } from '../lib/errors.ts';
import { invalidQueueToken, signQueueToken, type QueueClaims } from '../lib/queue-token.ts';

export type RoomStub = DurableObjectStub<ConcertRoom>;

export interface QueueDeps {
  room: RoomStub;
  queueTokenSecret: string;
  /** Publishes a fresh snapshot to the edge cache in the background. */
  publish: (concertId: string, snapshot: AdmissionSnapshot) => void;
}

export const concertNotFound = (concertId: string) => notFound('CONCERT_NOT_FOUND', `No concert ${concertId}`);

/** Joins the line (or re-joins: same place, same token) and signs the queue token. */
export async function joinQueue(deps: QueueDeps, userId: string, concertId: string) {
  const result = await deps.room.join(userId);
  if (!result.ok) throw concertNotFound(concertId);
  // No snapshot publish here: a join moves nobody's position, and the room publishes whenever
  // admission does move the watermark.
  const token = await signQueueToken(deps.queueTokenSecret, { userId, concertId, seq: result.seq, jti: result.jti }, result.issuedAt);
  return {
    token,
    position: result.status.position,
    status: result.status.status,
    estimatedWaitSeconds: result.status.estimatedWaitSeconds,
    ...(result.status.randomizedAtOpening ? { randomizedAtOpening: true as const } : {}),
  };
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
