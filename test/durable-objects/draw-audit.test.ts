import { runDurableObjectAlarm } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { auditDraw, type FetchJson } from '../../src/lib/draw-audit.ts';
import { leafHash, merkleLeafHash, MembershipTree, rootFromPath, userDigest } from '../../src/lib/draw-membership.ts';
import { api, uniqueId } from '../helpers/api.ts';
import { createConcert, joinOk, room, type JoinBody } from '../helpers/concerts.ts';
import { expectProblem } from '../helpers/problem.ts';

/*
 * A draw anyone can check (issue 20): the commitment is there from the concert's creation; at the
 * draw the room publishes the pre-queue's salted membership (a Merkle tree, RFC 9162) with P, and
 * each fan can fetch the proof that their place was drawn. `auditDraw` (what `npm run verify-draw`
 * runs) recomputes everything from those public answers, and fails on any changed byte.
 */

// RFC 6962 / 9162 reference data (Certificate Transparency's test vectors): the leaf inputs, the
// root of each prefix of 1..8 leaves, and two audit paths in the tree of 8.
const CT_INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const CT_PATHS = [
  {
    index: 0,
    path: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    path: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];
const bytes = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (byte) => Number.parseInt(byte, 16));
/** The same hex with its first digit changed: one byte of the data differs. */
const flip = (hex: string) => (hex[0] === '0' ? '1' : '0') + hex.slice(1);

describe('the membership tree', () => {
  it('matches the RFC 6962 reference roots and audit paths', () => {
    const leaves = CT_INPUTS.map((input) => merkleLeafHash(bytes(input)));
    for (let n = 1; n <= 8; n++) expect(new MembershipTree(leaves.slice(0, n)).root).toBe(CT_ROOTS[n - 1]);
    const tree = new MembershipTree(leaves);
    for (const { index, path } of CT_PATHS) {
      expect(tree.path(index)).toEqual(path);
      expect(rootFromPath(leaves[index]!, index, 8, path)).toBe(CT_ROOTS[7]);
    }
  });

  it('gives the salted leaves, root and path docs/fairness.md lists for checking an implementation', () => {
    const salt = '00'.repeat(32);
    expect(userDigest(salt, 'fan-1')).toBe('b3b6675397d0ab6261c22c5e9f7b9fec5eab276d2f8b082499d642b9b811ae2b');
    const leaves = [1, 2, 3].map((seq) => leafHash(seq, userDigest(salt, `fan-${seq}`)));
    expect(leaves).toEqual([
      '24748ecd39a833084e5a4b40895c52476b34b6c23f7ce8f6afe00337bb644e2f',
      '72c8a0b4e7f3d751de45468b1c3071eb51e3d16460ee129692408ee487b47af5',
      '23a8b7fdfbed0baa4ce8af70973a5af9ffe707e44130c40f8c1eb95c105b9a6f',
    ]);
    const tree = new MembershipTree(leaves);
    expect(tree.root).toBe('8177040278ee81acb34b79801ca8e0ff52bd3a81be2f5c7db76d7b870ecb0e59');
    expect(tree.path(1)).toEqual([leaves[0], leaves[2]]);
  });

  it('proves every leaf of every size up to 40, and nothing with a changed leaf, sibling or index', () => {
    for (let size = 1; size <= 40; size++) {
      const leaves = Array.from({ length: size }, (_, i) => merkleLeafHash(Uint8Array.of(size, i)));
      const tree = new MembershipTree(leaves);
      for (let i = 0; i < size; i++) {
        const path = tree.path(i);
        expect(rootFromPath(leaves[i]!, i, size, path)).toBe(tree.root);
        expect(rootFromPath(flip(leaves[i]!), i, size, path)).not.toBe(tree.root);
        if (path.length > 0) expect(rootFromPath(leaves[i]!, i, size, [flip(path[0]!), ...path.slice(1)])).not.toBe(tree.root);
        if (size > 1) expect(rootFromPath(leaves[i]!, (i + 1) % size, size, path)).not.toBe(tree.root);
      }
    }
  });
});

/** GET through the Worker, as verify-draw does over HTTP; `tamper` may change an answer on its way. */
const workerGet =
  (tamper: (path: string, body: Record<string, unknown>) => void = () => undefined): FetchJson =>
  async (path, headers = {}) => {
    const response = await api(path, { headers });
    const body = (await response.json().catch(() => null)) as Record<string, unknown> | null;
    if (body) tamper(path, body);
    return { status: response.status, body };
  };

async function drawnConcert(prequeue: number) {
  const concert = await createConcert({ queue: { openingOrder: 'shuffle', admitPerWindow: 5 } });
  // Published from creation, before anyone can join, and never changed by the draw.
  const created = await (await api(`/concerts/${concert.id}/opening`)).json<{ commitment: string; membershipRoot: string | null }>();
  expect(created.commitment).toMatch(/^[0-9a-f]{64}$/);
  expect(created.membershipRoot).toBeNull();
  const prefix = uniqueId('drawn');
  const early: JoinBody[] = [];
  for (let i = 0; i < prequeue; i++) early.push(await joinOk(concert.id, `${prefix}-${i}`));
  await expectProblem(await api(`/concerts/${concert.id}/opening/membership`), 409, 'DRAW_PENDING');
  await expectProblem(await api('/queue/opening-proof', { headers: { 'Queue-Token': early[0]!.token } }), 409, 'DRAW_PENDING');
  const pending = await auditDraw(workerGet(), { concertId: concert.id });
  expect(pending).toMatchObject({ ok: true, pending: true });

  expect(await runDurableObjectAlarm(room(concert.id))).toBe(true); // sales open: the draw
  const late = await joinOk(concert.id, `${prefix}-late`);
  const opened = await (await api(`/concerts/${concert.id}/opening`)).json<{ commitment: string; membershipRoot: string }>();
  expect(opened.commitment).toBe(created.commitment);
  return { concert, early, late };
}

describe('verify-draw (auditDraw) against the Worker', () => {
  it('checks the commitment, the membership, every rank and a fan’s own place, from public answers only', async () => {
    const { concert, early, late } = await drawnConcert(13);
    const audit = await auditDraw(workerGet(), { concertId: concert.id, queueToken: early[6]!.token });
    expect(audit.checks.filter((check) => !check.ok)).toEqual([]);
    expect(audit).toMatchObject({ ok: true, pending: false });
    expect(audit.rankTableDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(audit.checks.map((check) => check.name)).toEqual(
      expect.arrayContaining(['seed matches the commitment', 'leaves hash to the published root', 'your inclusion path leads to the root']),
    );
    // A fan who joined after opening was not drawn, and the proof says so.
    const lateAudit = await auditDraw(workerGet(), { concertId: concert.id, queueToken: late.token });
    expect(lateAudit.ok).toBe(true);
    const proof = await (await api('/queue/opening-proof', { headers: { 'Queue-Token': late.token } })).json<{ inPrequeue: boolean; seq: number; rank: number }>();
    expect(proof).toMatchObject({ inPrequeue: false, seq: 14, rank: 14 });
    // The published leaves name nobody: no user id appears anywhere in them.
    const membership = await (await api(`/concerts/${concert.id}/opening/membership`)).text();
    expect(membership).not.toContain('drawn-');
  });

  it('fails when one byte of anything revealed is changed', async () => {
    const { concert, early } = await drawnConcert(9);
    const fan = early[3]!.token;
    const tampered: Record<string, (path: string, body: Record<string, unknown>) => void> = {
      seed: (path, body) => {
        if (path.endsWith('/opening')) body.seed = flip(body.seed as string);
      },
      commitment: (path, body) => {
        if (path.endsWith('/opening')) body.commitment = flip(body.commitment as string);
      },
      'a leaf': (path, body) => {
        if (path.endsWith('/membership')) (body.leaves as string[])[5] = flip((body.leaves as string[])[5]!);
      },
      'a missing leaf': (path, body) => {
        if (path.endsWith('/membership')) (body.leaves as string[]).pop();
      },
      'the root': (path, body) => {
        if (path.endsWith('/membership')) body.root = flip(body.root as string);
      },
      'the proof’s path': (path, body) => {
        if (path === '/queue/opening-proof') (body.path as string[])[0] = flip((body.path as string[])[0]!);
      },
      'the proof’s salt': (path, body) => {
        if (path === '/queue/opening-proof') body.salt = flip(body.salt as string);
      },
      'the proof’s rank': (path, body) => {
        if (path === '/queue/opening-proof') body.rank = (body.rank as number) === 1 ? 2 : 1;
      },
    };
    expect((await auditDraw(workerGet(), { concertId: concert.id, queueToken: fan })).ok).toBe(true);
    for (const [what, tamper] of Object.entries(tampered)) {
      const audit = await auditDraw(workerGet(tamper), { concertId: concert.id, queueToken: fan });
      expect(audit.ok, `${what} changed: ${JSON.stringify(audit.checks.filter((c) => !c.ok))}`).toBe(false);
    }
  });

  it('answers a proof only to the place’s own token', async () => {
    await expectProblem(await api('/queue/opening-proof'), 401, 'INVALID_QUEUE_TOKEN');
    await expectProblem(await api('/queue/opening-proof', { headers: { 'Queue-Token': 'not.a.token' } }), 401, 'INVALID_QUEUE_TOKEN');
  });
});
