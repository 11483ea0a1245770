// What `npm run verify-draw` checks (issue 20), from public data only: the seed against the
// commitment published at creation, the drawn membership against its root, every rank the draw gives,
// and, given a fan's queue token, that fan's own place, leaf, inclusion path and rank. The same
// function runs in Node (the script) and in the test suite (against the Worker), so a check the
// tests make is the check an outsider makes.
import { isDigestHex, leafHash, MembershipTree, rootFromPath, sha256Hex, userDigest } from './draw-membership.ts';
import { isShuffleSeed, placeOfRank, rankOfPlace, type OpeningShuffle } from './opening-shuffle.ts';

/** A GET returning its status and parsed JSON body. */
export type FetchJson = (path: string, headers?: Record<string, string>) => Promise<{ status: number; body: unknown }>;

export interface AuditCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface DrawAudit {
  ok: boolean;
  /** The draw has not happened yet (nothing to check beyond the commitment's form). */
  pending: boolean;
  checks: AuditCheck[];
  /** Hex SHA-256 of the ranks of places 1..P as 4-byte big-endian numbers: two auditors compare this. */
  rankTableDigest: string | null;
}

interface Opening {
  order: string;
  commitment: string;
  seed: string | null;
  prequeueSize: number | null;
  membershipRoot: string | null;
}

interface Membership {
  prequeueSize: number;
  root: string;
  leaves: string[];
}

interface Proof {
  seq: number;
  rank: number;
  inPrequeue: boolean;
  root?: string;
  salt?: string;
  userDigest?: string;
  leaf?: string;
  path?: string[];
}

const hexBytes = (hex: string) => Uint8Array.from(hex.match(/../g)!.map((byte) => Number.parseInt(byte, 16)));

/** The queue token's own claims (unverified: the auditor checks the room's answers, not the token's signature). */
function queueTokenClaims(token: string): { userId: string; seq: number } | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown; seq?: unknown };
    return typeof payload.sub === 'string' && typeof payload.seq === 'number' ? { userId: payload.sub, seq: payload.seq } : undefined;
  } catch {
    return undefined;
  }
}

export async function auditDraw(get: FetchJson, options: { concertId: string; queueToken?: string }): Promise<DrawAudit> {
  const checks: AuditCheck[] = [];
  const check = (name: string, ok: boolean, detail: string) => {
    checks.push({ name, ok, detail });
    return ok;
  };
  const done = (pending = false, rankTableDigest: string | null = null): DrawAudit => ({ ok: checks.every((c) => c.ok), pending, checks, rankTableDigest });

  const openingRead = await get(`/concerts/${options.concertId}/opening`);
  if (!check('opening published', openingRead.status === 200, `GET /concerts/${options.concertId}/opening → ${openingRead.status}`)) return done();
  const opening = openingRead.body as Opening;
  check('commitment is a SHA-256', isDigestHex(opening.commitment), opening.commitment);
  if (opening.seed === null || opening.prequeueSize === null) {
    check('draw pending', true, 'sales have not opened: the seed is still secret; run again after opening');
    return done(true);
  }
  if (!check('seed is 32 bytes of hex', isShuffleSeed(opening.seed), String(opening.seed))) return done();
  check('seed matches the commitment', sha256Hex(hexBytes(opening.seed)) === opening.commitment, `SHA-256(seed) = ${sha256Hex(hexBytes(opening.seed))}`);

  const size = opening.order === 'shuffle' ? opening.prequeueSize : 0;
  const shuffle: OpeningShuffle = { seed: opening.seed, prequeueSize: size };
  let leaves: string[] = [];
  if (size > 0) {
    const membershipRead = await get(`/concerts/${options.concertId}/opening/membership`);
    if (!check('membership published', membershipRead.status === 200, `GET …/opening/membership → ${membershipRead.status}`)) return done();
    const membership = membershipRead.body as Membership;
    leaves = Array.isArray(membership.leaves) ? membership.leaves : [];
    check('one leaf per drawn place', leaves.length === size && membership.prequeueSize === size, `${leaves.length} leaves, P = ${size}`);
    if (check('every leaf is a SHA-256', leaves.length > 0 && leaves.every(isDigestHex), `${leaves.filter((leaf) => !isDigestHex(leaf)).length} malformed`)) {
      const root = new MembershipTree(leaves).root;
      check('leaves hash to the published root', root === membership.root && root === opening.membershipRoot, `computed ${root}`);
    }
  } else {
    check('nothing drawn', opening.membershipRoot === null, opening.order === 'fifo' ? 'arrival order: rank = place' : 'nobody joined before opening');
  }

  // Every rank: the draw is a permutation of 1..P, and its inverse agrees.
  const ranks = new Uint8Array(size * 4);
  const seen = new Uint8Array(size + 1);
  let permutation = true;
  for (let seq = 1; seq <= size; seq++) {
    const rank = rankOfPlace(shuffle, seq);
    if (rank < 1 || rank > size || seen[rank] || placeOfRank(shuffle, rank) !== seq) permutation = false;
    else seen[rank] = 1;
    new DataView(ranks.buffer).setUint32((seq - 1) * 4, rank);
  }
  check('ranks are a permutation of 1..P', permutation, `P = ${size}`);
  const rankTableDigest = sha256Hex(ranks);

  if (options.queueToken) {
    const claims = queueTokenClaims(options.queueToken);
    if (!check('queue token readable', claims !== undefined, 'a JWT with sub and seq')) return done(false, rankTableDigest);
    const proofRead = await get('/queue/opening-proof', { 'Queue-Token': options.queueToken });
    if (!check('proof published', proofRead.status === 200, `GET /queue/opening-proof → ${proofRead.status}`)) return done(false, rankTableDigest);
    const proof = proofRead.body as Proof;
    check('proof is for your place', proof.seq === claims!.seq, `place ${proof.seq}, token ${claims!.seq}`);
    check('your rank is the draw’s', proof.rank === rankOfPlace(shuffle, claims!.seq), `rank ${proof.rank} of ${size || 'no pre-queue'}`);
    const drawn = claims!.seq <= size;
    check('drawn with the pre-queue as it should be', proof.inPrequeue === drawn, drawn ? `place ${claims!.seq} ≤ P` : `place ${claims!.seq} > P: after the draw`);
    if (drawn && proof.inPrequeue) {
      const ownDigest = isDigestHex(proof.salt) ? userDigest(proof.salt, claims!.userId) : '';
      check('your salted hash is you', ownDigest === proof.userDigest, 'SHA-256(salt ‖ your user id)');
      const ownLeaf = leafHash(claims!.seq, ownDigest);
      check('your leaf is published at your place', ownLeaf === proof.leaf && leaves[claims!.seq - 1] === ownLeaf, ownLeaf);
      const path = Array.isArray(proof.path) && proof.path.every(isDigestHex) ? proof.path : [];
      const root = rootFromPath(ownLeaf, claims!.seq - 1, size, path);
      check('your inclusion path leads to the root', root !== undefined && root === opening.membershipRoot, `computed ${root ?? 'nothing'}`);
    }
  }
  return done(false, rankTableDigest);
}
