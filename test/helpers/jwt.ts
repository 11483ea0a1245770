import { env } from 'cloudflare:workers';
import { exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { USER_TOKEN_TYPE } from '../../src/lib/auth.ts';
import { QUEUE_TOKEN_TYPE } from '../../src/lib/queue-token.ts';

/*
 * Forged and malformed JWTs for the attack suites: every way a token can be wrong, each built the
 * way an attacker would (own keys, swapped algorithms, edited bytes, claims the server never issues).
 */

const encoder = new TextEncoder();

const base64url = (value: string | Uint8Array) => {
  const bytes = typeof value === 'string' ? encoder.encode(value) : value;
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
};

const now = () => Math.floor(Date.now() / 1000);

/** A token with any header and payload and the given (possibly empty) signature segment. */
export function unsignedToken(header: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string {
  return `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}.${signature}`;
}

/** HS-signs any header and payload with `secret` (no claim defaults are added). */
export function hsToken(
  secret: string | Uint8Array,
  payload: JWTPayload,
  header: { alg?: 'HS256' | 'HS384' | 'HS512'; typ?: string | undefined; [key: string]: unknown } = {},
): Promise<string> {
  const key = typeof secret === 'string' ? encoder.encode(secret) : secret;
  const { alg = 'HS256', ...rest } = header;
  return new SignJWT(payload).setProtectedHeader({ alg, ...rest }).sign(key);
}

/**
 * HS256 over any header and payload, signed by hand: for headers jose refuses to sign with
 * (unknown `crit` extensions, `b64: false`).
 */
export async function handSignedToken(secret: string, header: Record<string, unknown>, payload: Record<string, unknown>): Promise<string> {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return `${input}.${base64url(new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(input))))}`;
}

/** A user token's claims as the server issues them, for `userId`. */
export const userClaims = (userId: unknown): JWTPayload => ({ sub: userId as string, iat: now(), exp: now() + 3600 });

/** Flips one data bit of the character at `index` (negative counts from the end) of `token`. */
export function flipCharacter(token: string, index: number): string {
  const at = index < 0 ? token.length + index : index;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const original = token[at]!;
  if (original === '.') return token;
  // The top bit of a base64 character is always data (the low bits of the last one may be padding).
  const flipped = alphabet[alphabet.indexOf(original) ^ 32]!;
  return `${token.slice(0, at)}${flipped}${token.slice(at + 1)}`;
}

/** Positions worth flipping: in the header, the payload and the signature of `token`. */
export function flipPositions(token: string): number[] {
  const [header, payload] = token.split('.') as [string, string, string];
  return [1, Math.floor(header.length / 2), header.length + 2, header.length + 1 + Math.floor(payload.length / 2), -1, -5, -20];
}

/** A freshly generated key pair's signer for an asymmetric algorithm. */
export async function asymmetricToken(alg: 'RS256' | 'ES256' | 'PS256' | 'EdDSA', payload: JWTPayload, header: Record<string, unknown> = {}): Promise<{ token: string; publicPem: string }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const token = await new SignJWT(payload).setProtectedHeader({ alg, ...header }).sign(privateKey);
  return { token, publicPem: await exportSPKI(publicKey) };
}

/** A named forged token. */
export interface Forgery {
  name: string;
  token: string;
}

/** Subjects no user id may have: too long, control characters, JSON and path syntax, non-strings. */
export const HOSTILE_SUBJECTS: readonly { name: string; sub: unknown }[] = [
  { name: 'sub of 10 KB', sub: 'a'.repeat(10 * 1024) },
  { name: 'sub of 2,000 characters', sub: 'b'.repeat(2000) },
  { name: 'sub of 65 characters', sub: 'c'.repeat(65) },
  { name: 'sub with "{"', sub: 'user{1}' },
  { name: 'sub that is JSON', sub: '{"userId":"x"}' },
  { name: 'sub with NUL', sub: 'user\u0000x' },
  { name: 'sub with newline', sub: 'user\nx' },
  { name: 'sub with escape', sub: 'user\u001b[31mx' },
  { name: 'sub with DEL', sub: 'user\u007fx' },
  { name: 'sub with a space', sub: 'user x' },
  { name: 'sub with a slash', sub: '../../etc/passwd' },
  { name: 'sub with a star', sub: 'user*' },
  { name: 'sub with SQL', sub: "x' OR '1'='1" },
  { name: 'sub with non-ASCII', sub: 'usér' },
  { name: 'sub with a lone surrogate', sub: 'user\ud800' },
  { name: 'sub with right-to-left override', sub: 'user\u202ex' },
  { name: 'empty sub', sub: '' },
  { name: 'numeric sub', sub: 12345 },
  { name: 'object sub', sub: { id: 'x' } },
  { name: 'array sub', sub: ['x'] },
  { name: 'null sub', sub: null },
  { name: 'boolean sub', sub: true },
];

/** Every forged or malformed user token for `victim`, built against this test run's secrets. */
export async function userTokenForgeries(victim: string, queueToken: string): Promise<Forgery[]> {
  const claims = userClaims(victim);
  const good = await hsToken(env.AUTH_SECRET, claims, { typ: USER_TOKEN_TYPE });
  const forgeries: Forgery[] = [
    { name: 'alg none', token: unsignedToken({ alg: 'none', typ: 'JWT' }, claims) },
    { name: 'alg None', token: unsignedToken({ alg: 'None', typ: 'JWT' }, claims) },
    { name: 'alg NONE with a signature', token: unsignedToken({ alg: 'NONE', typ: 'JWT' }, claims, good.split('.')[2]) },
    { name: 'no alg', token: unsignedToken({ typ: 'JWT' }, claims, good.split('.')[2]) },
    { name: 'HS256 header, body edited', token: `${good.split('.')[0]}.${base64url(JSON.stringify(userClaims('admin')))}.${good.split('.')[2]}` },
    { name: 'HS512 with the right secret', token: await hsToken(env.AUTH_SECRET, claims, { alg: 'HS512', typ: 'JWT' }) },
    { name: 'HS384 with the right secret', token: await hsToken(env.AUTH_SECRET, claims, { alg: 'HS384', typ: 'JWT' }) },
    { name: 'RS256 with an attacker key', token: (await asymmetricToken('RS256', claims, { typ: 'JWT' })).token },
    { name: 'PS256 with an attacker key', token: (await asymmetricToken('PS256', claims, { typ: 'JWT' })).token },
    { name: 'ES256 with an attacker key', token: (await asymmetricToken('ES256', claims, { typ: 'JWT' })).token },
    { name: 'EdDSA with an attacker key', token: (await asymmetricToken('EdDSA', claims, { typ: 'JWT' })).token },
    {
      name: 'RS256 with the attacker key embedded as jwk',
      token: (await asymmetricToken('RS256', claims, { typ: 'JWT', jwk: { kty: 'RSA', n: 'AQAB', e: 'AQAB' } })).token,
    },
    { name: 'RS256 with a jku pointing elsewhere', token: (await asymmetricToken('RS256', claims, { typ: 'JWT', jku: 'https://attacker.example/jwks.json' })).token },
  ];
  const rsa = await asymmetricToken('RS256', claims);
  forgeries.push({ name: 'HS256 keyed with an RSA public key (key confusion)', token: await hsToken(rsa.publicPem, claims, { typ: 'JWT' }) });
  forgeries.push(
    { name: 'wrong key', token: await hsToken('another-secret-of-at-least-32-bytes!!', claims, { typ: 'JWT' }) },
    { name: 'the queue-token secret', token: await hsToken(env.QUEUE_TOKEN_SECRET, claims, { typ: 'JWT' }) },
    { name: 'the admin token as key', token: await hsToken(env.ADMIN_TOKEN.padEnd(32, 'x'), claims, { typ: 'JWT' }) },
    { name: 'an empty key', token: await hsToken(new Uint8Array(32), claims, { typ: 'JWT' }) },
  );
  for (const position of flipPositions(good)) forgeries.push({ name: `bit flipped at ${position}`, token: flipCharacter(good, position) });
  forgeries.push(
    { name: 'signature removed', token: `${good.split('.').slice(0, 2).join('.')}.` },
    { name: 'signature truncated', token: good.slice(0, -4) },
    { name: 'four segments', token: `${good}.AAAA` },
    { name: 'two segments', token: good.split('.').slice(0, 2).join('.') },
    { name: 'padding added', token: `${good}==` },
    { name: 'missing exp', token: await hsToken(env.AUTH_SECRET, { sub: victim, iat: now() }, { typ: 'JWT' }) },
    { name: 'missing sub', token: await hsToken(env.AUTH_SECRET, { iat: now(), exp: now() + 3600 }, { typ: 'JWT' }) },
    { name: 'expired', token: await hsToken(env.AUTH_SECRET, { ...claims, iat: now() - 7200, exp: now() - 3600 }, { typ: 'JWT' }) },
    { name: 'expired a second ago', token: await hsToken(env.AUTH_SECRET, { ...claims, exp: now() - 1 }, { typ: 'JWT' }) },
    { name: 'exp as a string', token: await hsToken(env.AUTH_SECRET, { ...claims, exp: String(now() + 3600) as unknown as number }, { typ: 'JWT' }) },
    { name: 'exp not finite', token: unsignedToken({ alg: 'HS256', typ: 'JWT' }, { ...claims, exp: 'Infinity' }) },
    { name: 'nbf in the future', token: await hsToken(env.AUTH_SECRET, { ...claims, nbf: now() + 3600 }, { typ: 'JWT' }) },
    { name: 'typ of a queue token', token: await hsToken(env.AUTH_SECRET, claims, { typ: QUEUE_TOKEN_TYPE }) },
    { name: 'no typ', token: await hsToken(env.AUTH_SECRET, claims, { typ: undefined }) },
    { name: 'typ at+jwt', token: await hsToken(env.AUTH_SECRET, claims, { typ: 'at+jwt' }) },
    { name: 'unknown crit header', token: await handSignedToken(env.AUTH_SECRET, { alg: 'HS256', typ: 'JWT', crit: ['x-frontrow'], 'x-frontrow': 1 }, claims) },
    { name: 'b64 false', token: await handSignedToken(env.AUTH_SECRET, { alg: 'HS256', typ: 'JWT', b64: false, crit: ['b64'] }, claims) },
    { name: 'hand-signed, alg HS256 but typ missing', token: await handSignedToken(env.AUTH_SECRET, { alg: 'HS256' }, claims) },
    { name: 'a queue token', token: queueToken },
    { name: 'empty string', token: '' },
    { name: 'a lone dot', token: '.' },
    { name: 'two dots', token: '..' },
    { name: 'garbage', token: 'not-a-jwt' },
    { name: 'a JSON object', token: JSON.stringify(claims) },
    { name: 'a huge token', token: `${good}${'A'.repeat(20_000)}` },
  );
  for (const { name, sub } of HOSTILE_SUBJECTS) {
    forgeries.push({ name: `correctly signed, ${name}`, token: await hsToken(env.AUTH_SECRET, userClaims(sub), { typ: USER_TOKEN_TYPE }) });
  }
  // The same bytes spelled in standard base64, or with a signature's padding bits set: only when
  // that spelling differs from the real token (a token without "-" or "_" reads the same both ways).
  const standard = good.replaceAll('-', '+').replaceAll('_', '/');
  if (standard !== good) forgeries.push({ name: 'standard base64 characters', token: standard });
  const last = good.at(-1)!;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  forgeries.push({ name: 'signature padding bits set', token: `${good.slice(0, -1)}${alphabet[alphabet.indexOf(last) | 3]!}` });
  return forgeries;
}

/** Queue-token claims as the server issues them. */
export function queueClaims(input: { userId: unknown; concertId: unknown; seq: unknown; jti: unknown }): JWTPayload {
  return { sub: input.userId as string, cid: input.concertId, seq: input.seq, jti: input.jti as string, iat: now(), exp: now() + 3600 };
}

/**
 * Every forged or malformed queue token for the place `(userId, concertId, seq, jti)`, plus the
 * victim's user token used as a queue token.
 */
export async function queueTokenForgeries(place: { userId: string; concertId: string; seq: number; jti: string }, userToken: string): Promise<Forgery[]> {
  const claims = queueClaims(place);
  const sign = (payload: JWTPayload, header: { alg?: 'HS256' | 'HS384' | 'HS512'; typ?: string | undefined; [key: string]: unknown } = { typ: QUEUE_TOKEN_TYPE }) =>
    hsToken(env.QUEUE_TOKEN_SECRET, payload, header);
  const good = await sign(claims);
  const without = (claim: string) => {
    const copy: Record<string, unknown> = { ...claims };
    delete copy[claim];
    return copy as JWTPayload;
  };
  const forgeries: Forgery[] = [
    { name: 'alg none', token: unsignedToken({ alg: 'none', typ: QUEUE_TOKEN_TYPE }, claims) },
    { name: 'alg none with the real signature', token: unsignedToken({ alg: 'none', typ: QUEUE_TOKEN_TYPE }, claims, good.split('.')[2]) },
    { name: 'HS512 with the right secret', token: await sign(claims, { alg: 'HS512', typ: QUEUE_TOKEN_TYPE }) },
    { name: 'HS384 with the right secret', token: await sign(claims, { alg: 'HS384', typ: QUEUE_TOKEN_TYPE }) },
    { name: 'RS256 with an attacker key', token: (await asymmetricToken('RS256', claims, { typ: QUEUE_TOKEN_TYPE })).token },
    { name: 'ES256 with an attacker key', token: (await asymmetricToken('ES256', claims, { typ: QUEUE_TOKEN_TYPE })).token },
    { name: 'wrong key', token: await hsToken('another-secret-of-at-least-32-bytes!!', claims, { typ: QUEUE_TOKEN_TYPE }) },
    { name: 'the user-token secret', token: await hsToken(env.AUTH_SECRET, claims, { typ: QUEUE_TOKEN_TYPE }) },
    { name: 'payload edited to another seq', token: `${good.split('.')[0]}.${base64url(JSON.stringify({ ...claims, seq: place.seq + 1 }))}.${good.split('.')[2]}` },
  ];
  for (const position of flipPositions(good)) forgeries.push({ name: `bit flipped at ${position}`, token: flipCharacter(good, position) });
  for (const claim of ['exp', 'jti', 'sub', 'seq', 'cid', 'iat']) forgeries.push({ name: `missing ${claim}`, token: await sign(without(claim)) });
  forgeries.push(
    { name: 'expired', token: await sign({ ...claims, iat: now() - 7200, exp: now() - 3600 }) },
    { name: 'nbf in the future', token: await sign({ ...claims, nbf: now() + 3600 }) },
    { name: 'typ of a user token', token: await sign(claims, { typ: USER_TOKEN_TYPE }) },
    { name: 'no typ', token: await sign(claims, { typ: undefined }) },
    { name: 'a user token', token: userToken },
    { name: 'seq as a string', token: await sign({ ...claims, seq: String(place.seq) }) },
    { name: 'seq 0', token: await sign({ ...claims, seq: 0 }) },
    { name: 'seq negative', token: await sign({ ...claims, seq: -1 }) },
    { name: 'seq fractional', token: await sign({ ...claims, seq: place.seq + 0.5 }) },
    { name: 'seq past 2^53', token: await sign({ ...claims, seq: 2 ** 53 + 2 }) },
    { name: 'seq 1e300', token: await sign({ ...claims, seq: 1e300 }) },
    { name: 'cid not a uuid', token: await sign({ ...claims, cid: `${place.concertId}' OR '1'='1` }) },
    { name: 'cid of 10 KB', token: await sign({ ...claims, cid: 'c'.repeat(10 * 1024) }) },
    { name: 'cid a number', token: await sign({ ...claims, cid: 7 }) },
    { name: 'jti not a uuid', token: await sign({ ...claims, jti: '{jti}' }) },
    { name: 'jti of 10 KB', token: await sign({ ...claims, jti: 'j'.repeat(10 * 1024) }) },
    { name: 'empty string', token: '' },
    { name: 'garbage', token: 'not-a-jwt' },
  );
  for (const { name, sub } of HOSTILE_SUBJECTS) forgeries.push({ name: `correctly signed, ${name}`, token: await sign({ ...claims, sub: sub as string }) });
  return forgeries;
}
