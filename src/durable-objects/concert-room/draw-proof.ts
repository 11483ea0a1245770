// The pre-queue's membership for anyone to audit (issue 20): built from the room's line once the
// draw has fixed P, kept in memory (places 1..P never change), and never written anywhere: the
// leaves are recomputed from the line and the room's secret whenever an instance needs them.
import { leafHash, MembershipTree, newMembershipSecret, placeSalt, userDigest } from '../../lib/draw-membership.ts';
import { rankOfPlace, type OpeningShuffle } from '../../lib/opening-shuffle.ts';
import { readMeta, writeMeta } from './meta.ts';

const SECRET_KEY = 'membershipSecret';

/** The room's secret for its places' salts, made the first time it is asked for (at load, before anyone joins). */
export function membershipSecret(sql: SqlStorage): string {
  let secret = readMeta<string>(sql, SECRET_KEY);
  if (secret === undefined) {
    secret = newMembershipSecret();
    writeMeta(sql, SECRET_KEY, secret);
  }
  return secret;
}

/** The drawn pre-queue's tree over places 1..prequeueSize (in place order). */
export function buildMembership(sql: SqlStorage, prequeueSize: number): MembershipTree {
  const secret = membershipSecret(sql);
  const rows = sql.exec<{ seq: number; user_id: string }>(`SELECT seq, user_id FROM line WHERE seq <= ? ORDER BY seq`, prequeueSize).toArray();
  if (rows.length !== prequeueSize || rows.some((row, i) => row.seq !== i + 1)) throw new Error('the line lacks places of its drawn pre-queue');
  return new MembershipTree(rows.map((row) => leafHash(row.seq, userDigest(placeSalt(secret, row.seq), row.user_id))));
}

/** One fan's proof that their place was drawn with the pre-queue, and the rank it was given. */
export interface InclusionProof {
  seq: number;
  rank: number;
  prequeueSize: number;
  root: string;
  /** The place's salt: with the fan's own user id it gives `userDigest`, and that with `seq` the leaf. */
  salt: string;
  userDigest: string;
  leaf: string;
  /** RFC 9162 audit path, bottom first. */
  path: string[];
}

export function inclusionProof(sql: SqlStorage, tree: MembershipTree, shuffle: OpeningShuffle, place: { seq: number; userId: string }): InclusionProof {
  const salt = placeSalt(membershipSecret(sql), place.seq);
  const digest = userDigest(salt, place.userId);
  return {
    seq: place.seq,
    rank: rankOfPlace(shuffle, place.seq),
    prequeueSize: tree.size,
    root: tree.root,
    salt,
    userDigest: digest,
    leaf: leafHash(place.seq, digest),
    path: tree.path(place.seq - 1),
  };
}
