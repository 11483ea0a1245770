import { DurableObject } from 'cloudflare:workers';
import type { JoinBatchResult, JoinResult } from './concert-room/index.ts';
import type { EntryProof } from '../lib/entry-proof.ts';

/** Most joins one lobby sends the room in one request. @default 100 */
export const LOBBY_BATCH_SIZE = 100;

/** Longest a join waits in its lobby for others to share its request to the room. @default 20 */
export const LOBBY_GATHER_MS = 20;

/** Requests one lobby has served since it started (for bench:rush's per-object figures). */
export interface LobbyRequestCounts {
  joins: number;
  batches: number;
}

interface Waiting {
  userId: string;
  proof: EntryProof | null;
  settle: (result: JoinResult) => void;
  fail: (error: unknown) => void;
}

/**
 * One of a concert's lobby shards (issue 14): gathers the joins Workers send it into batches of up to
 * LOBBY_BATCH_SIZE, and sends each batch to the concert's room as one request, so the room sees one
 * request per batch instead of one per fan. The lobby keeps no state: places are handed out by the
 * room, in the batch's order (arrival at this lobby), within one SQLite transaction, and a re-join is
 * answered by the room from its line. A lobby that is reset mid-batch loses only its callers' pending
 * answers (the Worker then joins at the room directly, which returns the same place if the batch had
 * landed), never a place. Named `<concertId>/<shard>`; a Worker picks the shard from the user id.
 */
export class ConcertLobby extends DurableObject<Env> {
  private gathering: Waiting[] = [];
  private gatherTimer: ReturnType<typeof setTimeout> | undefined;
  /**
   * True while batches are going out, one at a time (so places follow arrival at this lobby): joins
   * arriving meanwhile wait for the batch in flight to return, then go in the next, as many as fit.
   */
  private draining = false;
  private readonly counts: LobbyRequestCounts = { joins: 0, batches: 0 };

  join(concertId: string, userId: string, proof?: EntryProof | null): Promise<JoinResult> {
    this.counts.joins++;
    return new Promise<JoinResult>((settle, fail) => {
      this.gathering.push({ userId, proof: proof ?? null, settle, fail });
      if (this.draining) return;
      if (this.gathering.length >= LOBBY_BATCH_SIZE) void this.drain(concertId);
      else this.gatherTimer ??= setTimeout(() => void this.drain(concertId), LOBBY_GATHER_MS);
    });
  }

  requestCounts(): LobbyRequestCounts {
    return { ...this.counts };
  }

  private async drain(concertId: string): Promise<void> {
    clearTimeout(this.gatherTimer);
    this.gatherTimer = undefined;
    this.draining = true;
    try {
      while (this.gathering.length > 0) {
        const batch = this.gathering.splice(0, LOBBY_BATCH_SIZE);
        this.counts.batches++;
        let result: JoinBatchResult;
        try {
          result = await this.env.CONCERT_ROOM.getByName(concertId).joinBatch(
            batch.map((waiting) => waiting.userId),
            batch.map((waiting) => waiting.proof),
          );
        } catch (error) {
          for (const waiting of batch) waiting.fail(error);
          continue;
        }
        batch.forEach((waiting, i) => {
          if (!result.ok) return waiting.settle(result);
          const place = result.places[i]!;
          waiting.settle('reason' in place ? place : { ok: true, ...place, snapshot: result.snapshot });
        });
      }
    } finally {
      this.draining = false;
    }
  }
}
