import type { TypedResponse } from 'hono';
import type { AdmissionSnapshot } from '../durable-objects/concert-room/model.ts';

/** How long a published admission snapshot may answer polls at the edge. @default 1 */
export const SNAPSHOT_TTL_SECONDS = 1;

/**
 * Reads this isolate already made, kept in its memory and never past their own freshness bound
 * (a room read's publishedAt + ROOM_READ_TTL_SECONDS, a missing concert's MISSING_CONCERT_TTL_SECONDS,
 * a concert list's LIST_MEMO_MS): a hot read then costs no Cache API call at all. Bounded in size;
 * the oldest entry goes first.
 */
const memo = new Map<string, { value: unknown; until: number; publishedAt: number }>();
const MEMO_ENTRIES = 1_000;
/** How long an isolate reuses a concert list it read: an admin's purge reaches it within this. @default 1000 */
const LIST_MEMO_MS = 1_000;

function remember(key: string, entry: { value: unknown; until: number; publishedAt: number }): void {
  memo.delete(key);
  if (memo.size >= MEMO_ENTRIES) memo.delete(memo.keys().next().value!);
  memo.set(key, entry);
}

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
  const now = Date.now();
  const memoKey = `concert-list/${query}`;
  const remembered = memo.get(memoKey);
  if (remembered && remembered.until > now) return { body: remembered.value as T, hit: true };
  const key = `https://edge-cache.frontrow.internal/concert-lists/${await listGeneration()}/${query}`;
  const cached = await caches.default.match(key);
  if (cached) {
    const body = await cached.json<T>();
    remember(memoKey, { value: body, until: now + LIST_MEMO_MS, publishedAt: now });
    return { body, hit: true };
  }
  const body = await produce();
  remember(memoKey, { value: body, until: now + LIST_MEMO_MS, publishedAt: now });
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
  for (const key of [...memo.keys()]) if (key.startsWith('concert-list/')) memo.delete(key);
  await caches.default.put(
    listGenerationKey,
    new Response(crypto.randomUUID(), { headers: { 'Cache-Control': `public, max-age=${24 * 3600}` } }),
  );
}

/**
 * A JSON answer whose body was serialized elsewhere (by the room, or stored for a replay), typed so
 * a route's handler may return it as its declared JSON response.
 */
export type TypedJsonResponse<Status extends 200 | 201 = 200> = Response & TypedResponse<never, Status, 'json'>;

/** How long a room read (seat map, concert details) is served from the edge. @default 1 */
export const ROOM_READ_TTL_SECONDS = 1;

/** How long the edge remembers that a concert id names nothing. @default 30 */
export const MISSING_CONCERT_TTL_SECONDS = 30;

const PUBLISHED_AT_HEADER = 'X-Published-At';

const roomReadKey = (path: string) => `https://edge-cache.frontrow.internal/room-read/${path}`;
const missingKey = (concertId: string) => `https://edge-cache.frontrow.internal/missing-concert/${concertId}`;

/** A JSON body from the edge cache or fresh from its room; `ageSeconds` says how old it is. */
export interface EdgeBody {
  body: string;
  ageSeconds: number;
  hit: boolean;
  /** How long a client may keep it (`Cache-Control: max-age`); 0 for an answer that may still change (`no-store`). */
  maxAgeSeconds: number;
}

/** How `cachedRoomRead` keeps an answer. */
export interface RoomReadOptions {
  /** How long a stored answer is served. @default ROOM_READ_TTL_SECONDS */
  ttlSeconds?: number;
  /**
   * Asked after `produce`: false when the answer may still change in a way a stale copy must not
   * hide (the opening draw before it is made), so it is served but neither stored nor remembered.
   * A missing concert is remembered whatever this says. @default () => true
   */
  keep?: () => boolean;
}

/**
 * Serves a read of `concertId`'s room from the edge cache, at most ROOM_READ_TTL_SECONDS stale. On a
 * miss `produce` asks the room once and the answer is stored; `undefined` from it means no such
 * concert, which is remembered for MISSING_CONCERT_TTL_SECONDS so repeated requests for a made-up
 * id never reach a room again. Returns undefined for a missing concert.
 */
export async function cachedRoomRead(
  concertId: string,
  path: string,
  produce: () => Promise<string | undefined>,
  defer: (p: Promise<unknown>) => void,
  options: RoomReadOptions = {},
): Promise<EdgeBody | undefined> {
  const ttlSeconds = options.ttlSeconds ?? ROOM_READ_TTL_SECONDS;
  const now = Date.now();
  const ageOf = (publishedAt: number) => Math.max(0, Math.floor((now - publishedAt) / 1000));
  const remembered = memo.get(path) ?? memo.get(`missing/${concertId}`);
  if (remembered && remembered.until > now) {
    return remembered.value === undefined
      ? undefined
      : { body: remembered.value as string, ageSeconds: ageOf(remembered.publishedAt), hit: true, maxAgeSeconds: ttlSeconds };
  }
  const cached = await caches.default.match(roomReadKey(path));
  if (cached) {
    const publishedAt = Number(cached.headers.get(PUBLISHED_AT_HEADER));
    const body = await cached.text();
    remember(path, { value: body, until: publishedAt + ttlSeconds * 1000, publishedAt });
    return { body, ageSeconds: ageOf(publishedAt), hit: true, maxAgeSeconds: ttlSeconds };
  }
  if (await caches.default.match(missingKey(concertId))) {
    remember(`missing/${concertId}`, { value: undefined, until: now + MISSING_CONCERT_TTL_SECONDS * 1000, publishedAt: now });
    return undefined;
  }
  const body = await produce();
  if (body === undefined) {
    remember(`missing/${concertId}`, { value: undefined, until: now + MISSING_CONCERT_TTL_SECONDS * 1000, publishedAt: now });
    defer(
      caches.default.put(missingKey(concertId), new Response('', { headers: { 'Cache-Control': `public, max-age=${MISSING_CONCERT_TTL_SECONDS}` } })),
    );
    return undefined;
  }
  if (options.keep && !options.keep()) return { body, ageSeconds: 0, hit: false, maxAgeSeconds: 0 };
  const publishedAt = Date.now();
  remember(path, { value: body, until: publishedAt + ttlSeconds * 1000, publishedAt });
  defer(
    caches.default.put(
      roomReadKey(path),
      new Response(body, {
        headers: {
          'Content-Type': 'application/json',
          'Cache-Control': `public, max-age=${ttlSeconds}`,
          [PUBLISHED_AT_HEADER]: String(publishedAt),
        },
      }),
    ),
  );
  return { body, ageSeconds: 0, hit: false, maxAgeSeconds: ttlSeconds };
}

/**
 * The HTTP answer for an edge-cached read: `Age` and `Cache-Control` tell the client how fresh it
 * is. Typed as the route's JSON answer, which the body already is (it was serialized by the room).
 */
export function edgeResponse(read: EdgeBody): TypedJsonResponse {
  const response = new Response(read.body, {
    status: 200,
    headers: {
      'Content-Type': 'application/json',
      'Cache-Control': read.maxAgeSeconds > 0 ? `public, max-age=${read.maxAgeSeconds}` : 'no-store',
      Age: String(read.ageSeconds),
      'X-Cache': read.hit ? 'HIT' : 'MISS',
    },
  });
  return response as TypedJsonResponse;
}
