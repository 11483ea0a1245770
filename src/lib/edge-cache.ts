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

/** How long concert lists stay cached at the edge; an admin change purges them sooner. @default 30 */
export const CONCERT_LIST_TTL_SECONDS = 30;

const listGenerationKey = 'https://edge-cache.frontrow.internal/concert-lists/generation';

async function listGeneration(): Promise<string> {
  const cached = await caches.default.match(listGenerationKey);
  return cached ? cached.text() : '0';
}

/**
 * Serves a concert list from the edge cache, computing and storing it on a miss. Keys carry a
 * generation number, so one write of a new generation purges every cached list at once.
 */
export async function cachedConcertList<T>(query: string, produce: () => Promise<T>, defer: (p: Promise<unknown>) => void): Promise<{ body: T; hit: boolean }> {
  const key = `https://edge-cache.frontrow.internal/concert-lists/${await listGeneration()}/${query}`;
  const cached = await caches.default.match(key);
  if (cached) return { body: await cached.json<T>(), hit: true };
  const body = await produce();
  defer(
    caches.default.put(
      key,
      new Response(JSON.stringify(body), {
        headers: { 'Content-Type': 'application/json', 'Cache-Control': `public, max-age=${CONCERT_LIST_TTL_SECONDS}` },
      }),
    ),
  );
  return { body, hit: false };
}

/** Purges every cached concert list (call after an admin changes concerts). */
export async function purgeConcertLists(): Promise<void> {
  await caches.default.put(
    listGenerationKey,
    new Response(crypto.randomUUID(), { headers: { 'Cache-Control': `public, max-age=${24 * 3600}` } }),
  );
}
