// Who was in the pre-queue when it was drawn (issue 20), published so that anyone can check the draw
// covered exactly places 1..P and each fan can prove their own place is among them, without user ids
// leaking. Pure and synchronous (node:crypto, which workerd provides under nodejs_compat), so the room,
// the Worker and `npm run verify-draw` compute the very same bytes.
//
// Each place's user is hidden behind a salted hash: salt = HMAC-SHA-256(room secret, "place:" seq),
// the secret never leaves the room and a fan is told only their own place's salt. The leaves, in
// place order, form a Merkle tree as RFC 9162 (Certificate Transparency 2.0) §2.1 defines it: a leaf
// hash is SHA-256(0x00 || data), an inner node SHA-256(0x01 || left || right), the split at the
// largest power of two below the size, so inclusion proofs are the RFC's audit paths.
import { createHash, createHmac } from 'node:crypto';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const fromHex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'));

/** 32 bytes as 64 lowercase hex digits (the form every hash here is published in). */
export const isDigestHex = (value: unknown): value is string => typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);

/** A place's salt: what hides its user in the published digest. Only the room (holding `secret`) can make it. */
export function placeSalt(secretHex: string, seq: number): string {
  return createHmac('sha256', fromHex(secretHex)).update(`place:${seq}`).digest('hex');
}

/** The salted hash of a place's user, as published. */
export function userDigest(saltHex: string, userId: string): string {
  return createHash('sha256').update(fromHex(saltHex)).update(userId, 'utf8').digest('hex');
}

/** RFC 9162's leaf hash of `data`: SHA-256(0x00 || data). */
export function merkleLeafHash(data: Uint8Array): string {
  return createHash('sha256').update(Uint8Array.of(0x00)).update(data).digest('hex');
}

/** The Merkle leaf of place `seq` (a 32-bit big-endian number) and its user's digest. */
export function leafHash(seq: number, userDigestHex: string): string {
  const data = new Uint8Array(36);
  new DataView(data.buffer).setUint32(0, seq);
  data.set(fromHex(userDigestHex), 4);
  return merkleLeafHash(data);
}

/** Hex SHA-256 of `data` (the seed's commitment, the rank table's digest). */
export const sha256Hex = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

function nodeHash(leftHex: string, rightHex: string): string {
  return createHash('sha256').update(Uint8Array.of(0x01)).update(fromHex(leftHex)).update(fromHex(rightHex)).digest('hex');
}

/** The largest power of two strictly below n (n ≥ 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * A Merkle tree over leaf hashes in place order, its subtree hashes kept (about 2 × leaves) so a
 * room answers every fan's proof without hashing the whole pre-queue again.
 */
export class MembershipTree {
  readonly size: number;
  private readonly leaves_: readonly string[];
  private readonly subtrees = new Map<string, string>();

  constructor(leaves: readonly string[]) {
    if (leaves.length === 0) throw new RangeError('a membership tree has at least one leaf');
    this.leaves_ = leaves;
    this.size = leaves.length;
  }

  /** The leaf hashes, in place order. */
  leaves(): string[] {
    return [...this.leaves_];
  }

  get root(): string {
    return this.hashOf(0, this.size);
  }

  /** The audit path of leaf `index` (0-based), bottom first (RFC 9162 §2.1.3.1). */
  path(index: number): string[] {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) throw new RangeError(`no leaf ${index} in a tree of ${this.size}`);
    const path: string[] = [];
    let [start, n, m] = [0, this.size, index];
    const siblings: string[] = [];
    while (n > 1) {
      const k = split(n);
      if (m < k) {
        siblings.push(this.hashOf(start + k, n - k));
        n = k;
      } else {
        siblings.push(this.hashOf(start, k));
        start += k;
        m -= k;
        n -= k;
      }
    }
    for (let i = siblings.length - 1; i >= 0; i--) path.push(siblings[i]!);
    return path;
  }

  private hashOf(start: number, n: number): string {
    if (n === 1) return this.leaves_[start]!;
    const key = `${start}:${n}`;
    let hash = this.subtrees.get(key);
    if (hash === undefined) {
      const k = split(n);
      hash = nodeHash(this.hashOf(start, k), this.hashOf(start + k, n - k));
      this.subtrees.set(key, hash);
    }
    return hash;
  }
}

/** The root a leaf and its audit path lead to (RFC 9162 §2.1.3.2); undefined when the path's length is wrong for the size. */
export function rootFromPath(leafHex: string, index: number, size: number, path: readonly string[]): string | undefined {
  if (!Number.isInteger(index) || index < 0 || index >= size) return undefined;
  const walk = (m: number, n: number, depth: number): string | undefined => {
    if (n === 1) return depth === path.length ? leafHex : undefined;
    const sibling = path[path.length - 1 - depth];
    if (sibling === undefined) return undefined;
    const k = split(n);
    if (m < k) {
      const left = walk(m, k, depth + 1);
      return left === undefined ? undefined : nodeHash(left, sibling);
    }
    const right = walk(m - k, n - k, depth + 1);
    return right === undefined ? undefined : nodeHash(sibling, right);
  };
  return walk(index, size, 0);
}

/** A fresh secret for a room's place salts. */
export const newMembershipSecret = (): string => hex(crypto.getRandomValues(new Uint8Array(32)));
