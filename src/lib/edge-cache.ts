import type { AdmissionSnapshot } from '../durable-objects/concert-room/model.ts';

/** How long a published admission snapshot may answer polls at the edge. @default 1 */
export const SNAPSHOT_TTL_SECONDS = 1;

const snapshotKey = (concertId: string) => `https://edge-cache.frontrow.internal/admission/${concertId}`;

/**
 * The edge's copy of a room's admission watermark. Waiting users' polls are answered from it, so
 * a line of 100k pollers costs the room one read per second per location instead of 100k.
 */
export async function readSnapshot(concertId: string): Promise<AdmissionSnapshot | undefined> {
  const cached = await caches.default.match(snapshotKey(concertId));
  return cached ? cached.json<AdmissionSnapshot>() : undefined;
}

export async function publishSnapshot(concertId: string, snapshot: AdmissionSnapshot): Promise<void> {
  await caches.default.put(
    snapshotKey(concertId),
    new Response(JSON.stringify(snapshot), {
      headers: { 'Content-Type': 'application/json', 'Cache-Control': `public, max-age=${SNAPSHOT_TTL_SECONDS}` },
    }),
  );
}
