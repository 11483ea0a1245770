import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { WS_SEQ_HEADER, WS_USER_HEADER } from '../durable-objects/concert-room/index.ts';
import type { AdmissionSnapshot } from '../durable-objects/concert-room/model.ts';
import {
  FAR_BACK_PUSH_INTERVAL_MS,
  FAR_BACK_WINDOWS,
  MAX_SOCKETS_PER_PLACE,
  SOCKET_REPLACED_CLOSE_CODE,
  SOCKET_REPLACED_REASON,
} from '../durable-objects/concert-room/sockets.ts';
import { publishSnapshot, readSnapshot } from '../lib/edge-cache.ts';
import { AppError } from '../lib/errors.ts';
import { logJson } from '../lib/logging.ts';
import { checkOptionalUser, optionalUserMatchesQueueToken, requireQueueToken, requireUser } from '../lib/middleware.ts';
import { problemResponse } from '../lib/problem-schemas.ts';
import { invalidQueueToken, verifyQueueToken } from '../lib/queue-token.ts';
import { drawPending } from '../services/concert-reads.ts';
import { checkAddressLimit, checkUserLimit, limitByAddress, limitByUser } from '../lib/rate-limit.ts';
import { UuidSchema } from '../lib/schemas.ts';
import { concertNotFound, entryChallenge, joinQueue, lobbyShardsOf, queueStatus, rememberLobbyShards, type QueueDeps } from '../services/queue.ts';
import type { App, AppEnv } from '../types.ts';

const QueueStatusName = z.enum(['waiting', 'admitted', 'completed', 'expired', 'sold_out']);

export const JoinRequestSchema = z
  .strictObject({
    concertId: UuidSchema,
    altcha: z
      .string()
      .min(1)
      .max(4096)
      .optional()
      .openapi({
        description:
          'The proof of work, when the concert asks for one (GET /queue/challenge says): ALTCHA\'s payload, base64 of JSON `{challenge, solution: {counter, derivedKey}}`. Single-use; ignored by a concert that asks for none.',
      }),
  })
  .openapi('QueueJoinRequest');

const ChallengeQuerySchema = z.object({ concertId: UuidSchema.openapi({ param: { name: 'concertId', in: 'query' } }) });

export const ChallengeResponseSchema = z
  .object({
    required: z.boolean().openapi({ description: 'Whether this concert asks for a proof of work on joining; false: join without one' }),
    cost: z.number().int().optional().openapi({ description: 'Mean attempts the challenge takes (each PBKDF2-SHA-256 of 1,000 rounds); raised while joins per second are high' }),
    challenge: z
      .object({
        parameters: z.record(z.string(), z.unknown()),
        signature: z.string().optional(),
      })
      .optional()
      .openapi({ description: 'An ALTCHA v2 challenge (altcha-lib solveChallenge / solveChallengeWorkers), bound to you and this concert, expiring in 5 minutes' }),
  })
  .openapi('QueueChallenge');

const powProblems = 'POW_REQUIRED, POW_EXPIRED, POW_WRONG_CONCERT, POW_WRONG_USER, POW_TOO_CHEAP, POW_INVALID, POW_REUSED';

const challengeRoute = createRoute({
  method: 'get',
  path: '/queue/challenge',
  tags: ['queue'],
  summary: 'A proof-of-work challenge to solve before joining, when the concert asks for one',
  security: [{ userToken: [] }],
  middleware: [limitByAddress('challenge'), requireUser, limitByUser('challenge', (c) => c.get('userId'))] as const,
  request: { query: ChallengeQuerySchema },
  responses: {
    200: { description: 'A challenge, or required: false', content: { 'application/json': { schema: ChallengeResponseSchema } } },
    400: problemResponse('Invalid query (VALIDATION_FAILED)'),
    401: problemResponse('Missing or invalid user token (UNAUTHENTICATED)'),
    404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
    429: problemResponse('Too many challenges from this user or address (RATE_LIMITED, with Retry-After)'),
  },
});
const RandomizedAtOpening = z.literal(true).optional().openapi({
  description:
    'Present while sales have not opened and the pre-queue is to be drawn at random: position is then your number in the pre-queue (how many had joined when you did), not your place, and estimatedWaitSeconds counts until opening',
});
const WaitlistOpen = z.literal('open').optional().openapi({
  description:
    'Present with status sold_out: the line sold out (no seat available or held) and admits nobody more; every seat that comes back (refund, cancel, lapsed offer) is offered through the waitlist (POST /concerts/{id}/waitlist), where your place in line ranks ahead of everyone who joins without one, in line order',
});
export const JoinResponseSchema = z
  .object({
    token: z.string(),
    position: z.number().int(),
    status: QueueStatusName,
    estimatedWaitSeconds: z.number().int(),
    randomizedAtOpening: RandomizedAtOpening,
    waitlist: WaitlistOpen,
  })
  .openapi('QueueJoin');
export const QueueStatusSchema = z
  .object({
    status: QueueStatusName,
    position: z.number().int(),
    estimatedWaitSeconds: z.number().int(),
    sessionExpiresAt: z.string().nullable(),
    randomizedAtOpening: RandomizedAtOpening,
    waitlist: WaitlistOpen,
  })
  .openapi('QueueStatus');

const joinRoute = createRoute({
  method: 'post',
  path: '/queue/token',
  tags: ['queue'],
  summary: 'Join a concert’s waiting line; joining again keeps the same place',
  security: [{ userToken: [] }],
  middleware: [limitByAddress('join'), requireUser, limitByUser('join', (c) => c.get('userId'))] as const,
  request: { body: { required: true, content: { 'application/json': { schema: JoinRequestSchema } } } },
  responses: {
    201: { description: 'Your place and queue token', content: { 'application/json': { schema: JoinResponseSchema } } },
    400: problemResponse('Invalid body, or an altcha field that is not base64 JSON (VALIDATION_FAILED)'),
    401: problemResponse('Missing or invalid user token (UNAUTHENTICATED)'),
    403: problemResponse(`The concert asks for a proof of work and this join brought none, or a refused one (${powProblems})`),
    404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
    429: problemResponse('Too many joins from this user or address (RATE_LIMITED, with Retry-After)'),
  },
});

/** `true` or `false` on `GET /queue/status`: whether the operator has paused admission. */
export const QUEUE_PAUSED_HEADER = 'Queue-Paused';

/** The reads a fan makes with their queue token: its place checked, and the status budget per address and per user. */
const byQueueToken = [
  limitByAddress('status'),
  requireQueueToken,
  optionalUserMatchesQueueToken,
  limitByUser('status', (c) => c.get('queueClaims').userId),
] as const;

const statusRoute = createRoute({
  method: 'get',
  path: '/queue/status',
  tags: ['queue'],
  summary: 'Your place in line, or your session; send the queue token as Queue-Token (and, optionally, your user token)',
  request: { headers: z.object({ 'queue-token': z.string().optional() }) },
  middleware: [...byQueueToken] as const,
  responses: {
    200: {
      description: 'Current status',
      headers: { [QUEUE_PAUSED_HEADER]: { description: 'Whether admission is paused: true or false', schema: { type: 'string' } } },
      content: { 'application/json': { schema: QueueStatusSchema } },
    },
    401: problemResponse('Missing or invalid queue token, or an invalid user token (INVALID_QUEUE_TOKEN, UNAUTHENTICATED)'),
    403: problemResponse('The user token given is not the queue token’s user (QUEUE_TOKEN_MISMATCH)'),
    429: problemResponse('Too many polls from this user or address (RATE_LIMITED, with Retry-After)'),
  },
});

const DigestHex = z.string().regex(/^[0-9a-f]{64}$/);

const ProofSchema = z
  .object({
    concertId: z.string(),
    seq: z.number().int().openapi({ description: 'Your place in line (the order you joined in)' }),
    rank: z.number().int().openapi({ description: 'Your admission rank: drawn within the pre-queue, your place after it' }),
    prequeueSize: z.number().int().nullable(),
    inPrequeue: z.boolean().openapi({ description: 'Whether your place was one of the drawn places 1..prequeueSize' }),
    root: DigestHex.optional().openapi({ description: 'The membership root (GET /concerts/{id}/opening): the path below leads to it' }),
    salt: DigestHex.optional().openapi({ description: 'Your place’s salt: SHA-256(salt ‖ your user id) is userDigest' }),
    userDigest: DigestHex.optional(),
    leaf: DigestHex.optional().openapi({ description: 'SHA-256(0x00 ‖ seq as 4 big-endian bytes ‖ userDigest)' }),
    path: z.array(DigestHex).optional().openapi({ description: 'RFC 9162 §2.1.3 audit path of leaf seq−1, bottom first' }),
  })
  .openapi('OpeningProof');

const proofRoute = createRoute({
  method: 'get',
  path: '/queue/opening-proof',
  tags: ['queue'],
  summary: 'Proof that your place was drawn with the pre-queue, and the rank the draw gave it (send the queue token as Queue-Token)',
  request: { headers: z.object({ 'queue-token': z.string().optional() }) },
  middleware: [...byQueueToken] as const,
  responses: {
    200: { description: 'Your place, rank and inclusion proof', content: { 'application/json': { schema: ProofSchema } } },
    401: problemResponse('Missing or invalid queue token, or an invalid user token (INVALID_QUEUE_TOKEN, UNAUTHENTICATED)'),
    403: problemResponse('The user token given is not the queue token’s user (QUEUE_TOKEN_MISMATCH)'),
    404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
    409: problemResponse('Sales have not opened yet, so nothing is drawn (DRAW_PENDING)'),
    429: problemResponse('Too many requests from this user or address (RATE_LIMITED, with Retry-After)'),
  },
});

/** The queue WebSocket's subprotocol; the server echoes only this one back. */
export const WS_PROTOCOL = 'frontrow.v1';

/** Prefix of the subprotocol that carries the queue token: `token.<queue token>`. */
export const WS_TOKEN_PROTOCOL_PREFIX = 'token.';

/** RFC 9745 `Deprecation` header sent on upgrades that still carry `?token=` (deprecated 2026-11-25). */
const WS_QUERY_TOKEN_DEPRECATED = '@1795564800';

/**
 * The queue token of a WebSocket upgrade. Preferred: offered as the subprotocol `token.<jwt>` beside
 * `frontrow.v1` (`new WebSocket(url, ['frontrow.v1', 'token.' + jwt])`), so it never appears in a
 * URL that proxies and logs record. Deprecated but still accepted (DESIGN.md §2 lists it): `?token=`.
 */
function wsQueueToken(c: Context<AppEnv>): { token: string; protocol?: string } {
  const offered = (c.req.header('Sec-WebSocket-Protocol') ?? '')
    .split(',')
    .map((protocol) => protocol.trim())
    .filter(Boolean);
  if (offered.length > 0) {
    if (!offered.includes(WS_PROTOCOL)) {
      throw new AppError(400, 'VALIDATION_FAILED', 'Request is invalid', `Offer the "${WS_PROTOCOL}" subprotocol`);
    }
    const tokens = offered.filter((protocol) => protocol.startsWith(WS_TOKEN_PROTOCOL_PREFIX));
    const [token] = tokens;
    if (tokens.length !== 1 || !token) throw invalidQueueToken(`Offer the queue token as one "${WS_TOKEN_PROTOCOL_PREFIX}<token>" subprotocol`);
    return { token: token.slice(WS_TOKEN_PROTOCOL_PREFIX.length), protocol: WS_PROTOCOL };
  }
  const token = c.req.query('token');
  if (!token) throw invalidQueueToken(`Offer the queue token as the subprotocol "${WS_TOKEN_PROTOCOL_PREFIX}<token>" beside "${WS_PROTOCOL}"`);
  return { token };
}

function queueDeps(c: Context<AppEnv>, concertId: string): QueueDeps {
  return {
    room: c.env.CONCERT_ROOM.getByName(concertId),
    lobby: (shard) => c.env.CONCERT_LOBBY.getByName(`${concertId}/${shard}`),
    lobbyShards: lobbyShardsOf(concertId),
    queueTokenSecret: c.env.QUEUE_TOKEN_SECRET,
    entryPowSecret: c.env.ENTRY_POW_SECRET,
    publish: (id: string, snapshot: AdmissionSnapshot) =>
      c.executionCtx.waitUntil(publishSnapshot(id, snapshot).catch((error: unknown) => logJson('warn', 'snapshot publish failed', { error: String(error) }))),
  };
}

export function registerQueueRoutes(app: App): void {
  app.openapi(joinRoute, async (c) => {
    const { concertId, altcha } = c.req.valid('json');
    // A fresh isolate learns the lobby count from the edge snapshot, or from the room's first answer.
    if (lobbyShardsOf(concertId) === undefined) rememberLobbyShards(concertId, (await readSnapshot(concertId))?.lobbyShards);
    return c.json(await joinQueue(queueDeps(c, concertId), c.get('userId'), concertId, altcha), 201);
  });

  app.openapi(challengeRoute, async (c) => {
    const { concertId } = c.req.valid('query');
    // Each challenge is fresh and personal: never cached anywhere.
    c.header('Cache-Control', 'no-store');
    return c.json(await entryChallenge(queueDeps(c, concertId), c.get('userId'), concertId), 200);
  });

  app.openapi(statusRoute, async (c) => {
    const claims = c.get('queueClaims');
    const cached = await readSnapshot(claims.concertId);
    const deps = queueDeps(c, claims.concertId);
    // The snapshot the answer came from: the cached one, or the room's fresh one published on the way.
    let seen = cached;
    const status = await queueStatus(
      {
        ...deps,
        cached,
        publish: (id, snapshot) => {
          seen = snapshot;
          deps.publish(id, snapshot);
        },
      },
      claims,
    );
    // A pause moves nobody, so the status body cannot show it; the fan page reads it here.
    if (seen) c.header(QUEUE_PAUSED_HEADER, String(seen.paused));
    rememberLobbyShards(claims.concertId, seen?.lobbyShards);
    return c.json(status, 200);
  });

  app.openapi(proofRoute, async (c) => {
    const claims = c.get('queueClaims');
    const result = await c.env.CONCERT_ROOM.getByName(claims.concertId).openingProof(claims.seq, claims.userId, claims.jti);
    if (!result.ok) {
      if (result.reason === 'DRAW_PENDING') throw drawPending();
      if (result.reason === 'INVALID_QUEUE_TOKEN') throw invalidQueueToken('This queue token has no place in this line');
      throw concertNotFound(claims.concertId);
    }
    if (!result.inPrequeue) {
      const { ok: _ok, ...place } = result;
      return c.json({ concertId: claims.concertId, ...place }, 200);
    }
    return c.json({ concertId: claims.concertId, inPrequeue: true, ...result.proof }, 200);
  });

  // WebSocket upgrades are not JSON routes, so the document gets the path by hand. The queue token
  // comes as a subprotocol (see wsQueueToken); only the verified place in line reaches the room.
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/queue/ws',
    tags: ['queue'],
    summary: 'The queue WebSocket: pushes the GET /queue/status object whenever it changes (and waitlist_offer messages)',
    description: [
      `Open as a WebSocket with the subprotocols \`${WS_PROTOCOL}\` and \`${WS_TOKEN_PROTOCOL_PREFIX}<queue token>\` (\`?token=\` still works, deprecated).`,
      'Send the text `status` to be sent your status at once (at most once a second).',
      `At most ${MAX_SOCKETS_PER_PLACE} sockets stay open per place in line: opening another closes the oldest with close code`,
      `**${SOCKET_REPLACED_CLOSE_CODE} "${SOCKET_REPLACED_REASON}"**; a client must not reconnect on that code (a newer socket took its place).`,
      `A place more than ${FAR_BACK_WINDOWS} admission windows from the front is pushed its position at most once every`,
      `${FAR_BACK_PUSH_INTERVAL_MS / 1000} s; nearer places and changes of status (admitted, sold_out, …) are pushed at once.`,
    ].join(' '),
    responses: {
      101: { description: 'Switching protocols: the socket is open and its first message is the current status' },
      400: problemResponse('No frontrow.v1 subprotocol offered (VALIDATION_FAILED)'),
      401: problemResponse('Missing, invalid or expired queue token (INVALID_QUEUE_TOKEN)'),
      404: problemResponse('No such concert (CONCERT_NOT_FOUND)'),
      426: problemResponse('Not a WebSocket upgrade (UPGRADE_REQUIRED)'),
      429: problemResponse('Too many socket opens (RATE_LIMITED, with Retry-After)'),
    },
  });
  app.get('/queue/ws', async (c) => {
    if (c.req.header('Upgrade')?.toLowerCase() !== 'websocket') {
      throw new AppError(426, 'UPGRADE_REQUIRED', 'Upgrade required', 'Open this URL as a WebSocket', { headers: { Upgrade: 'websocket' } });
    }
    await checkAddressLimit(c, 'ws');
    const { token, protocol } = wsQueueToken(c);
    const claims = await verifyQueueToken(c.env.QUEUE_TOKEN_SECRET, token);
    await checkOptionalUser(c.env.AUTH_SECRET, c.req.header('Authorization'), claims);
    await checkUserLimit(c, 'ws', claims.userId);
    // Only what the room needs crosses over: never the token itself (not even in the URL).
    const headers = new Headers({ Upgrade: 'websocket', [WS_SEQ_HEADER]: String(claims.seq), [WS_USER_HEADER]: claims.userId });
    const url = new URL(c.req.url);
    const response = await c.env.CONCERT_ROOM.getByName(claims.concertId).fetch(new Request(`${url.origin}${url.pathname}`, { headers }));
    if (response.status === 403) throw invalidQueueToken('Queue token does not match a place in this line');
    if (response.status === 404) throw new AppError(404, 'CONCERT_NOT_FOUND', 'Not found', `No concert ${claims.concertId}`);
    // A fresh response: the room's has immutable headers, and the middleware adds security headers.
    // A client that offered subprotocols must get exactly one of them back, or it drops the socket.
    return new Response(null, {
      status: response.status,
      webSocket: response.webSocket,
      headers: protocol ? { 'Sec-WebSocket-Protocol': protocol } : { Deprecation: WS_QUERY_TOKEN_DEPRECATED },
    });
  });
}
