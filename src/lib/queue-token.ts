import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { isCanonicalToken, isValidUserId, secretKey } from './auth.ts';
import { AppError } from './errors.ts';

/** `typ` header of queue tokens; user tokens carry `JWT`, so neither passes for the other. */
export const QUEUE_TOKEN_TYPE = 'frontrow-queue+jwt';

/** How long a queue token stays valid: long enough to wait in a big line and then shop. @default 43200 */
export const QUEUE_TOKEN_TTL_SECONDS = 12 * 60 * 60;

/** Claims a verified queue token guarantees. */
export interface QueueClaims {
  userId: string;
  concertId: string;
  seq: number;
  jti: string;
}

/** Concert ids and token ids are UUIDs; anything else in a signed token is refused, not passed on. */
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const invalidQueueToken = (detail: string) =>
  new AppError(401, 'INVALID_QUEUE_TOKEN', 'Invalid queue token', detail, {
    headers: { 'WWW-Authenticate': 'QueueToken realm="frontrow", error="invalid_token"' },
  });

/** A queue token presented beside another user's user token. */
export const queueTokenOfAnotherUser = () =>
  new AppError(403, 'QUEUE_TOKEN_MISMATCH', 'Queue token does not match', 'The queue token belongs to another user');

/**
 * Signs a queue token. `issuedAt` comes from the room, so re-joining yields the very same token.
 * @param issuedAt seconds since the epoch
 */
export async function signQueueToken(secret: string, claims: QueueClaims, issuedAt: number): Promise<string> {
  return new SignJWT({ cid: claims.concertId, seq: claims.seq })
    .setProtectedHeader({ alg: 'HS256', typ: QUEUE_TOKEN_TYPE })
    .setSubject(claims.userId)
    .setJti(claims.jti)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + QUEUE_TOKEN_TTL_SECONDS)
    .sign(await secretKey(secret, 'QUEUE_TOKEN_SECRET'));
}

/**
 * Verifies a queue token: HS256 only, queue `typ`, every claim present and well-formed (`sub` a
 * valid user id, `cid` and `jti` UUIDs, `seq` a positive safe integer). Says nothing about
 * admission; the room decides that from `seq`.
 */
export async function verifyQueueToken(secret: string, token: string): Promise<QueueClaims> {
  if (!isCanonicalToken(token)) throw invalidQueueToken('Queue token is invalid');
  try {
    const { payload } = await jwtVerify(token, await secretKey(secret, 'QUEUE_TOKEN_SECRET'), {
      algorithms: ['HS256'],
      typ: QUEUE_TOKEN_TYPE,
      requiredClaims: ['sub', 'cid', 'seq', 'jti', 'iat', 'exp'],
    });
    const { sub, cid, seq, jti } = payload;
    const wellFormed =
      isValidUserId(sub) &&
      typeof cid === 'string' &&
      UUID_PATTERN.test(cid) &&
      typeof jti === 'string' &&
      UUID_PATTERN.test(jti) &&
      typeof seq === 'number' &&
      Number.isSafeInteger(seq) &&
      seq >= 1;
    if (!wellFormed) throw invalidQueueToken('Queue token claims are malformed');
    return { userId: sub, concertId: cid, seq, jti };
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) throw invalidQueueToken('Queue token has expired; join the line again');
    if (error instanceof joseErrors.JOSEError) throw invalidQueueToken('Queue token is invalid');
    throw error;
  }
}
