import { runInDurableObject } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { ENTRY_CHALLENGE_TTL_SECONDS } from '../../src/lib/entry-proof.ts';
import { api, uniqueId } from '../helpers/api.ts';
import { adminHeaders, createConcert, joinOk, patchQueue, room, stats } from '../helpers/concerts.ts';
import { fetchChallenge, joinWithProof, solve, solvedProof, type ChallengeBody } from '../helpers/entry-proof.ts';
import { expectProblem } from '../helpers/problem.ts';
import { advanceRoomClock } from '../helpers/room-time.ts';

// Small costs: each attempt is a PBKDF2 of 1,000 rounds, and the tests check the rules, not the work.
const gated = (cost = 3, queue: Record<string, unknown> = {}) =>
  createConcert({ queue: { entry: { proofOfWork: { cost, surgeJoinsPerSecond: 200 } }, ...queue } });

/** Rows of the room's spent set: a refused proof must add none. */
async function spentRows(concertId: string): Promise<number> {
  return runInDurableObject(room(concertId), (_room, state) => state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM entry_spent`).one().n);
}

describe('proof of work at the entrance', () => {
  it('joins without a proof, and says none is required, when the concert asks for none', async () => {
    const concert = await createConcert();
    const challenge = await fetchChallenge(concert.id, uniqueId('fan'));
    expect(challenge.status).toBe(200);
    expect(await challenge.json<ChallengeBody>()).toEqual({ required: false });
    await joinOk(concert.id, uniqueId('fan'));
  });

  it('refuses a join without a proof with 403 POW_REQUIRED, writing nothing, when the concert asks for one', async () => {
    const concert = await gated();
    await expectProblem(await joinWithProof(concert.id, uniqueId('fan'), undefined), 403, 'POW_REQUIRED');
    expect((await stats(concert.id)).waiting).toBe(0);
    expect(await spentRows(concert.id)).toBe(0);
  });

  it('places a fan with a valid proof (201), and refuses the same proof again with 403 POW_REUSED', async () => {
    const concert = await gated();
    const fan = uniqueId('fan');
    const altcha = await solvedProof(concert.id, fan);
    const first = await joinWithProof(concert.id, fan, altcha);
    expect(first.status).toBe(201);
    await expectProblem(await joinWithProof(concert.id, fan, altcha), 403, 'POW_REUSED');
    expect((await stats(concert.id)).waiting).toBe(1);
    expect(await spentRows(concert.id)).toBe(1);
    // A fresh proof re-joins as always: the same place.
    const again = await joinWithProof(concert.id, fan, await solvedProof(concert.id, fan));
    expect(again.status).toBe(201);
    expect((await again.json<{ position: number }>()).position).toBe((await first.json<{ position: number }>()).position);
  });

  it('refuses another concert’s proof (POW_WRONG_CONCERT) and another user’s (POW_WRONG_USER), writing nothing', async () => {
    const [concert, other] = await Promise.all([gated(), gated()]);
    const fan = uniqueId('fan');
    await expectProblem(await joinWithProof(concert.id, fan, await solvedProof(other.id, fan)), 403, 'POW_WRONG_CONCERT');
    await expectProblem(await joinWithProof(concert.id, fan, await solvedProof(concert.id, uniqueId('someone-else'))), 403, 'POW_WRONG_USER');
    expect((await stats(concert.id)).waiting).toBe(0);
    expect(await spentRows(concert.id)).toBe(0);
  });

  it('refuses a solution that does not solve its challenge, or a changed challenge, with 403 POW_INVALID', async () => {
    const concert = await gated();
    const fan = uniqueId('fan');
    const payload = JSON.parse(atob(await solvedProof(concert.id, fan))) as {
      challenge: { parameters: { data: Record<string, unknown> } };
      solution: { counter: number; derivedKey: string };
    };
    const wrongKey = structuredClone(payload);
    wrongKey.solution.derivedKey = wrongKey.solution.derivedKey.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    await expectProblem(await joinWithProof(concert.id, fan, btoa(JSON.stringify(wrongKey))), 403, 'POW_INVALID');
    const cheaper = structuredClone(payload);
    cheaper.challenge.parameters.data.cost = 1_000;
    await expectProblem(await joinWithProof(concert.id, fan, btoa(JSON.stringify(cheaper))), 403, 'POW_INVALID');
    await expectProblem(await joinWithProof(concert.id, fan, 'not base64 json'), 400, 'VALIDATION_FAILED');
    expect((await stats(concert.id)).waiting).toBe(0);
  });

  it('refuses a proof cheaper than the concert now asks with 403 POW_TOO_CHEAP', async () => {
    const concert = await gated(2);
    const fan = uniqueId('fan');
    const altcha = await solvedProof(concert.id, fan);
    expect((await patchQueue(concert.id, { entry: { proofOfWork: { cost: 4, surgeJoinsPerSecond: 200 } } })).status).toBe(200);
    const problem = await expectProblem(await joinWithProof(concert.id, fan, altcha), 403, 'POW_TOO_CHEAP');
    expect(problem.detail).toContain('(4)');
    expect(await spentRows(concert.id)).toBe(0);
    // Turning the gate off lets the same fan in without one.
    expect((await patchQueue(concert.id, { entry: { proofOfWork: null } })).status).toBe(200);
    expect((await joinWithProof(concert.id, fan, undefined)).status).toBe(201);
  });

  it('takes entry.proofOfWork at creation (top level) and shows it in the settings, with the surge default', async () => {
    const date = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    const response = await api('/admin/concerts', {
      method: 'POST',
      headers: adminHeaders(),
      json: {
        title: uniqueId('gated'),
        venue: 'Hall',
        date,
        startsAt: `${date}T20:00:00Z`,
        salesOpenAt: new Date(Date.now() + 3_600_000).toISOString(),
        seats: { count: 5, price: 100 },
        entry: { proofOfWork: { cost: 7 } },
      },
    });
    expect(response.status).toBe(201);
    const concert = await response.json<{ id: string; queue: { entry: unknown } }>();
    expect(concert.queue.entry).toEqual({ proofOfWork: { cost: 7, surgeJoinsPerSecond: 200 } });
    expect((await stats(concert.id)).queue.entry).toEqual({ proofOfWork: { cost: 7, surgeJoinsPerSecond: 200 } });
    const challenge = await (await fetchChallenge(concert.id, uniqueId('fan'))).json<ChallengeBody>();
    expect(challenge.required).toBe(true);
    expect(challenge.cost).toBe(7);
  });

  it('checks the proof at the lobby shards too: valid → 201, reused → POW_REUSED', async () => {
    const concert = await gated(3, { lobbyShards: 2 });
    const fan = uniqueId('fan');
    const altcha = await solvedProof(concert.id, fan);
    expect((await joinWithProof(concert.id, fan, altcha)).status).toBe(201);
    await expectProblem(await joinWithProof(concert.id, fan, altcha), 403, 'POW_REUSED');
    await expectProblem(await joinWithProof(concert.id, uniqueId('fan'), undefined), 403, 'POW_REQUIRED');
  });

  // Last: it moves this file's clock forward.
  it('refuses a proof whose challenge expired with 403 POW_EXPIRED, writing nothing', async () => {
    const concert = await gated();
    const fan = uniqueId('fan');
    const body = await (await fetchChallenge(concert.id, fan)).json<ChallengeBody>();
    const altcha = await solve(body.challenge!);
    await advanceRoomClock((ENTRY_CHALLENGE_TTL_SECONDS + 1) * 1000);
    await expectProblem(await joinWithProof(concert.id, fan, altcha), 403, 'POW_EXPIRED');
    expect((await stats(concert.id)).waiting).toBe(0);
    expect(await spentRows(concert.id)).toBe(0);
  });
});
