import { afterEach, describe, expect, it } from 'vitest';
import { uniqueId, userToken } from '../helpers/api.ts';
import { balanceOf, charge, pay, use } from '../helpers/balance.ts';
import { admittedUser, createConcert, hold, joinOk, openConcert, patchQueue, type AdmittedUser } from '../helpers/concerts.ts';
import { clearFault, setFault } from '../helpers/faults.ts';
import { expectLedgerMatchesBalance } from '../helpers/invariants.ts';
import { directQuery } from '../helpers/postgres.ts';
import { expectProblem } from '../helpers/problem.ts';
import { idempotencyRedisKey, redisCommand } from '../helpers/redis.ts';

async function newUserWithId(userId: string) {
  return { userId, token: await userToken(userId) };
}

const newUser = () => newUserWithId(uniqueId('idem'));

const ledgerRows = (userId: string) => directQuery('SELECT delta FROM balance_ledger WHERE user_id = $1', [userId]);
const storedRecords = (userId: string, key: string) => directQuery('SELECT status_code FROM idempotency_keys WHERE user_id = $1 AND key = $2', [userId, key]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

afterEach(async () => {
  await clearFault('neon');
});

describe('Idempotency-Key', () => {
  it('replays the first response byte for byte, marked Idempotent-Replayed, with one effect', async () => {
    const { userId, token } = await newUser();
    const key = { 'Idempotency-Key': uniqueId('key') };
    const first = await charge(token, 70, key);
    expect(first.status).toBe(200);
    expect(first.headers.get('Idempotent-Replayed')).toBeNull();
    const firstBody = await first.text();
    expect(firstBody).toBe('{"balance":70}');
    for (let i = 0; i < 3; i++) {
      const again = await charge(token, 70, key);
      expect(again.status).toBe(200);
      expect(again.headers.get('Idempotent-Replayed')).toBe('true');
      expect(again.headers.get('Content-Type')).toMatch(/^application\/json/);
      expect(await again.text()).toBe(firstBody);
    }
    expect(await ledgerRows(userId)).toHaveLength(1);
    expect(await expectLedgerMatchesBalance(userId)).toBe(70);
  });

  it('replays from Postgres once Redis has forgotten the request', async () => {
    const { userId, token } = await newUser();
    const key = uniqueId('key');
    const first = await (await charge(token, 33, { 'Idempotency-Key': key })).text();
    expect(await redisCommand('DEL', idempotencyRedisKey(userId, key))).toBe(1);
    const again = await charge(token, 33, { 'Idempotency-Key': key });
    expect(again.status).toBe(200);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect(await again.text()).toBe(first);
    await redisCommand('DEL', idempotencyRedisKey(userId, key));
    await expectProblem(await charge(token, 34, { 'Idempotency-Key': key }), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await ledgerRows(userId)).toHaveLength(1);
  });

  it('treats a record older than 24 h as gone: the key runs again, and its new response replaces the old one', async () => {
    const { userId, token } = await newUser();
    const key = uniqueId('key');
    await directQuery(
      `INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, body, created_at)
       VALUES ($1, $2, 'old', 200, to_jsonb('{"balance":1}'::text), now() - interval '25 hours')`,
      [userId, key],
    );
    const fresh = await charge(token, 8, { 'Idempotency-Key': key });
    expect(fresh.headers.get('Idempotent-Replayed')).toBeNull();
    expect(await fresh.text()).toBe('{"balance":8}');
    expect(await directQuery('SELECT request_hash <> $3 AS replaced FROM idempotency_keys WHERE user_id = $1 AND key = $2', [userId, key, 'old'])).toEqual([
      { replaced: true },
    ]);
    await redisCommand('DEL', idempotencyRedisKey(userId, key));
    const replay = await charge(token, 8, { 'Idempotency-Key': key });
    expect(replay.headers.get('Idempotent-Replayed')).toBe('true');
    expect(await replay.text()).toBe('{"balance":8}');
    expect(await ledgerRows(userId)).toHaveLength(1);
  });

  it('records the response in the same statement as the effect', async () => {
    const { userId, token } = await newUser();
    const key = uniqueId('key');
    expect(await (await charge(token, 12, { 'Idempotency-Key': key })).text()).toBe('{"balance":12}');
    const [record] = await directQuery<{ status_code: number; body: string; same_tx: boolean }>(
      `SELECT k.status_code, k.body #>> '{}' AS body, k.xmin = l.xmin AS same_tx
         FROM idempotency_keys k JOIN balance_ledger l ON l.user_id = k.user_id
        WHERE k.user_id = $1 AND k.key = $2`,
      [userId, key],
    );
    expect(record).toEqual({ status_code: 200, body: '{"balance":12}', same_tx: true });
  });

  it('refuses the same key with another body (422) and keys longer than 255 characters (400)', async () => {
    const { userId, token } = await newUser();
    const key = { 'Idempotency-Key': uniqueId('key') };
    expect((await charge(token, 10, key)).status).toBe(200);
    await expectProblem(await charge(token, 11, key), 422, 'IDEMPOTENCY_KEY_REUSED');
    await expectProblem(await use(token, 10, key), 422, 'IDEMPOTENCY_KEY_REUSED'); // another path
    await expectProblem(await charge(token, 1, { 'Idempotency-Key': 'k'.repeat(256) }), 400, 'VALIDATION_FAILED');
    expect((await charge(token, 1, { 'Idempotency-Key': 'k'.repeat(255) })).status).toBe(200);
    expect(await expectLedgerMatchesBalance(userId)).toBe(11);
  });

  it('keeps keys per user', async () => {
    const alice = await newUser();
    const bob = await newUser();
    const key = { 'Idempotency-Key': uniqueId('shared') };
    expect(await (await charge(alice.token, 5, key)).text()).toBe('{"balance":5}');
    const bobs = await charge(bob.token, 5, key);
    expect(bobs.headers.get('Idempotent-Replayed')).toBeNull();
    expect(await bobs.text()).toBe('{"balance":5}');
    expect(await balanceOf(alice.token)).toBe(5);
    expect(await balanceOf(bob.token)).toBe(5);
  });

  it('stores a 4xx (no effect) and replays it, even once the request would succeed', async () => {
    const { userId, token } = await newUser();
    const key = { 'Idempotency-Key': uniqueId('key') };
    const refused = await use(token, 30, key);
    const problem = await expectProblem(refused, 402, 'INSUFFICIENT_BALANCE');
    expect((await charge(token, 100)).status).toBe(200);
    const replay = await use(token, 30, key);
    expect(replay.status).toBe(402);
    expect(replay.headers.get('Idempotent-Replayed')).toBe('true');
    expect(replay.headers.get('Content-Type')).toMatch(/^application\/problem\+json/);
    expect(await replay.json()).toEqual(problem);
    expect(await expectLedgerMatchesBalance(userId)).toBe(100);
  });

  it('stores nothing for a 5xx, so the retry runs the request', async () => {
    const { userId, token } = await newUser();
    const key = { 'Idempotency-Key': uniqueId('key') };
    await setFault('neon', 'refuse');
    await expectProblem(await charge(token, 40, key), 503, 'DEPENDENCY_UNAVAILABLE');
    await clearFault('neon');
    const retry = await charge(token, 40, key);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('Idempotent-Replayed')).toBeNull();
    expect(await retry.text()).toBe('{"balance":40}');
    expect(await ledgerRows(userId)).toHaveLength(1);
  });

  it('answers a duplicate in flight 409 REQUEST_IN_PROGRESS (422 with another body) from Redis alone', async () => {
    const { userId, token } = await newUser();
    const key = { 'Idempotency-Key': uniqueId('key') };
    // Postgres never answers: the first request sits in its query (until the 5 s query deadline),
    // holding its claim. The duplicates must be answered without waiting on Postgres.
    await setFault('neon', 'drop');
    let firstSettled = false;
    const first = charge(token, 25, key).finally(() => (firstSettled = true));
    // The first request's claim is in Redis before the duplicates are sent, however slow the box.
    while ((await redisCommand('EXISTS', idempotencyRedisKey(userId, key['Idempotency-Key']))) !== 1) await sleep(20);
    const duplicate = await charge(token, 25, key);
    const otherBody = await charge(token, 26, key);
    // Answered while the first still waits on Postgres: they did not wait on it.
    expect(firstSettled).toBe(false);
    await expectProblem(duplicate, 409, 'REQUEST_IN_PROGRESS');
    expect(Number(duplicate.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1);
    await expectProblem(otherBody, 422, 'IDEMPOTENCY_KEY_REUSED');
    await expectProblem(await first, 503, 'DEPENDENCY_UNAVAILABLE');
    await clearFault('neon');
    const retry = await charge(token, 25, key);
    expect(retry.status).toBe(200);
    expect(await retry.text()).toBe('{"balance":25}');
    expect(await ledgerRows(userId)).toHaveLength(1);
  });

  it('stores no 409 PAYMENT_IN_PROGRESS: once the other payment attempt lets go, the retry with the key pays', async () => {
    const concert = await openConcert({ seats: 3, price: 40 });
    const fan = await admittedUser(concert.id, 'idem-pay');
    const held = await hold(concert.id, fan, [1]);
    expect(held.status).toBe(201);
    const { reservationId } = await held.json<{ reservationId: string }>();
    expect((await charge(fan.userToken, 100)).status).toBe(200);
    // Another attempt (a second tab, say) holds the reservation's payment lock (kept under its owner's
    // balance lock, see WaitLock.acquireWith).
    const paymentLock = `lock:{balance:${fan.userId}}:with:payment:${reservationId}`;
    expect(await redisCommand('SET', paymentLock, 'another-attempt', 'PX', 60_000)).toBe('OK');
    const key = uniqueId('key');
    const busy = await pay(fan.userToken, reservationId, { 'Idempotency-Key': key });
    await expectProblem(busy, 409, 'PAYMENT_IN_PROGRESS');
    expect(Number(busy.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1);
    expect(await storedRecords(fan.userId, key)).toEqual([]);
    expect(await redisCommand('GET', idempotencyRedisKey(fan.userId, key))).toBeNull();

    await redisCommand('DEL', paymentLock);
    const retry = await pay(fan.userToken, reservationId, { 'Idempotency-Key': key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('Idempotent-Replayed')).toBeNull();
    expect(await retry.json()).toMatchObject({ reservationId, amount: 40, balance: 60, status: 'confirmed' });
    expect(await storedRecords(fan.userId, key)).toEqual([{ status_code: 201 }]);
    expect(await expectLedgerMatchesBalance(fan.userId)).toBe(60);
  });

  it('stores no 404 (the row may be written a moment later): the retry with the key runs again', async () => {
    const { userId, token } = await newUser();
    const key = uniqueId('key');
    const missing = crypto.randomUUID();
    await expectProblem(await pay(token, missing, { 'Idempotency-Key': key }), 404, 'RESERVATION_NOT_FOUND');
    expect(await storedRecords(userId, key)).toEqual([]);
    expect(await redisCommand('GET', idempotencyRedisKey(userId, key))).toBeNull();
    const again = await pay(token, missing, { 'Idempotency-Key': key });
    expect(again.headers.get('Idempotent-Replayed')).toBeNull();
    await expectProblem(again, 404, 'RESERVATION_NOT_FOUND');
  });

  it('stores no 403 NOT_ADMITTED: once admitted, the retry with the key holds the seat', async () => {
    const concert = await createConcert({ seats: 3, salesOpenAt: new Date(Date.now() - 60_000), queue: { paused: true } });
    const userId = uniqueId('idem-wait');
    const userToken = (await newUserWithId(userId)).token;
    const joined = await joinOk(concert.id, userId);
    expect(joined.status).toBe('waiting');
    const fan: AdmittedUser = { userId, userToken, queueToken: joined.token };
    const key = uniqueId('key');
    await expectProblem(await hold(concert.id, fan, [2], { 'Idempotency-Key': key }), 403, 'NOT_ADMITTED');
    expect(await storedRecords(userId, key)).toEqual([]);

    expect((await patchQueue(concert.id, { paused: false })).status).toBe(200);
    const retry = await hold(concert.id, fan, [2], { 'Idempotency-Key': key });
    expect(retry.status).toBe(201);
    expect(retry.headers.get('Idempotent-Replayed')).toBeNull();
    expect(await storedRecords(userId, key)).toEqual([{ status_code: 201 }]);
  });
});
