import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { unauthenticated } from './errors.ts';

/** `typ` header of user tokens. Queue tokens carry another, so neither passes for the other. */
export const USER_TOKEN_TYPE = 'JWT';

/** Longest user id (a token's `sub`) accepted anywhere. @default 64 */
export const USER_ID_MAX_LENGTH = 64;

/**
 * Characters a user id may use: printable, and safe in Redis keys, log lines and rate-limit keys.
 * The dev-token endpoint's `UserIdSchema` and {@link verifyUserToken} both hold ids to it.
 */
export const USER_ID_PATTERN = /^[A-Za-z0-9._:@-]+$/;

/** True for a user id within {@link USER_ID_MAX_LENGTH} and {@link USER_ID_PATTERN}. */
export function isValidUserId(value: unknown): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= USER_ID_MAX_LENGTH && USER_ID_PATTERN.test(value);
}

/** Longest token (user or queue) accepted; ours are a few hundred bytes. @default 4096 */
export const MAX_TOKEN_LENGTH = 4096;

const BASE64URL_SEGMENTS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * True for a compact JWS of bounded length in canonical base64url. The JWT library also decodes
 * standard base64 characters and ignores a signature's padding bits, so one token could be written
 * several ways; only the one spelling we issue is accepted, and junk is refused before any HMAC.
 */
export function isCanonicalToken(token: string): boolean {
  if (token.length > MAX_TOKEN_LENGTH || !BASE64URL_SEGMENTS.test(token)) return false;
  const signature = token.slice(token.lastIndexOf('.') + 1);
  try {
    const bytes = atob(signature.replaceAll('-', '+').replaceAll('_', '/'));
    return btoa(bytes).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '') === signature;
  } catch {
    return false;
  }
}

/** Lifetime of tokens minted by `POST /auth/dev-token`. @default 3600 */
export const DEV_TOKEN_TTL_SECONDS = 3600;

const encoder = new TextEncoder();

/** HS256 keys by secret, imported once per isolate: handing jose raw bytes re-imports them on every sign and verify. */
const importedKeys = new Map<string, Promise<CryptoKey>>();

/**
 * The HS256 key of a shared secret, as a CryptoKey for sign and verify. Rejects secrets shorter
 * than 32 bytes so a misconfigured deploy fails loudly.
 */
export function secretKey(secret: string, name: string): Promise<CryptoKey> {
  let key = importedKeys.get(secret);
  if (!key) {
    const bytes = encoder.encode(secret);
    if (bytes.byteLength < 32) throw new Error(`${name} must be at least 32 bytes`);
    key = crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    importedKeys.set(secret, key);
  }
  return key;
}

/** Signs a user token (HS256, `sub` = user id, `exp` set). Used by dev auth and tests. */
export async function signUserToken(
  secret: string,
  userId: string,
  ttlSeconds = DEV_TOKEN_TTL_SECONDS,
): Promise<{ token: string; expiresAt: Date }> {
  const issuedAt = Math.floor(Date.now() / 1000);
  const expiresAt = issuedAt + ttlSeconds;
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: USER_TOKEN_TYPE })
    .setSubject(userId)
    .setIssuedAt(issuedAt)
    .setExpirationTime(expiresAt)
    .sign(await secretKey(secret, 'AUTH_SECRET'));
  return { token, expiresAt: new Date(expiresAt * 1000) };
}

/**
 * Verifies a user token and returns its user id. HS256 only (so `alg: none` and key-confusion
 * tricks fail), `exp` and `sub` required, and the `typ` header must not be a queue token's. A
 * correctly signed `sub` is still held to the user-id rules ({@link isValidUserId}): it becomes a
 * Redis key, a Postgres value and a log field, and nothing downstream should have to bound it.
 */
export async function verifyUserToken(secret: string, token: string): Promise<string> {
  if (!isCanonicalToken(token)) throw unauthenticated('Token is invalid');
  try {
    const { payload } = await jwtVerify(token, await secretKey(secret, 'AUTH_SECRET'), {
      algorithms: ['HS256'],
      requiredClaims: ['exp', 'sub'],
      typ: USER_TOKEN_TYPE,
    });
    if (!isValidUserId(payload.sub)) throw unauthenticated('Token subject is not a valid user id');
    return payload.sub;
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) throw unauthenticated('Token has expired');
    if (error instanceof joseErrors.JOSEError) throw unauthenticated('Token is invalid');
    throw error;
  }
}

/** Extracts the credentials of an `Authorization: Bearer` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer +([^\s]+)\s*$/i);
  return match?.[1];
}
