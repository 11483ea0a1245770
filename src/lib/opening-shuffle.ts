// The pre-queue shuffle (issue 13): the order in which fans who joined before sales opened are
// admitted, derived from a seed the room commits to before opening and reveals after, so anyone can
// recompute it. Pure and synchronous: the room admits by it inside a SQLite transaction, and the edge
// answers a waiting poll from it without asking the room. No Workers APIs, so Node can audit with it.
//
// The order is a keyed permutation of places 1..P (P = fans in the pre-queue at opening): an 8-round
// Feistel network over the smallest even power of two ≥ P (and ≥ 256), walked until it lands inside 1..P. That
// is a bijection computable for one place in O(1) (both ways), so the room never materialises a
// shuffled list and the edge needs only (seed, P) to turn a token's place into its rank.

/** Rounds of the Feistel network; each uses one 32-bit word of the 256-bit seed. */
const ROUNDS = 8;

/**
 * Half-width floor: a domain of at least 2^8 values. Over 4 or 16 values (halves of 1 or 2 bits) the
 * network reaches too few permutations, unevenly: with P = 5 the last to join was drawn last 2.3 %
 * more often than 1 in 5 (300,000 seeds; test/unit/opening-shuffle.test.ts checks every rank).
 * The cost is a longer walk for a small P (about 256 / P steps), which is still nothing.
 */
const MIN_HALF_BITS = 4;

export interface OpeningShuffle {
  /** 64 hex digits (32 bytes). */
  seed: string;
  /** Fans in the pre-queue when sales opened: places 1..prequeueSize are shuffled, later ones are not. */
  prequeueSize: number;
}

/** A fresh random seed (64 hex digits). */
export function newShuffleSeed(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** What the room publishes before opening: hex SHA-256 of the seed's 32 bytes. */
export async function shuffleCommitment(seed: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', seedBytes(seed));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export const isShuffleSeed = (value: unknown): value is string => typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);

function seedBytes(seed: string): Uint8Array<ArrayBuffer> {
  if (!isShuffleSeed(seed)) throw new TypeError('a shuffle seed is 64 lowercase hex digits');
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = Number.parseInt(seed.slice(i * 2, i * 2 + 2), 16);
  return bytes;
}

/** The seed's eight big-endian 32-bit words: one round key each. */
const keyCache = new Map<string, Uint32Array>();
function roundKeys(seed: string): Uint32Array {
  let keys = keyCache.get(seed);
  if (!keys) {
    const bytes = seedBytes(seed);
    const view = new DataView(bytes.buffer);
    keys = new Uint32Array(ROUNDS);
    for (let i = 0; i < ROUNDS; i++) keys[i] = view.getUint32(i * 4);
    if (keyCache.size > 64) keyCache.clear();
    keyCache.set(seed, keys);
  }
  return keys;
}

/** MurmurHash3's 32-bit finaliser: every input bit affects every output bit. */
function mix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const roundFunction = (keys: Uint32Array, round: number, half: number) => mix32(half ^ keys[round]! ^ Math.imul(round + 1, 0x9e3779b9));

/**
 * Half-width in bits of the Feistel domain for `size` places: the smallest h ≥ MIN_HALF_BITS with
 * 4^h ≥ size. The halves go through 32-bit operations, so up to 2^32 places (a line is far shorter).
 */
function halfBits(size: number): number {
  let h = MIN_HALF_BITS;
  while (2 ** (2 * h) < size) h++;
  return h;
}

function feistel(keys: Uint32Array, h: number, x: number, inverse: boolean): number {
  const mask = 2 ** h - 1;
  let left = Math.floor(x / 2 ** h);
  let right = x & mask;
  if (!inverse) {
    for (let round = 0; round < ROUNDS; round++) [left, right] = [right, (left ^ roundFunction(keys, round, right)) & mask];
  } else {
    for (let round = ROUNDS - 1; round >= 0; round--) [left, right] = [(right ^ roundFunction(keys, round, left)) & mask, left];
  }
  return left * 2 ** h + right;
}

function walk(shuffle: OpeningShuffle, place: number, inverse: boolean): number {
  const size = shuffle.prequeueSize;
  if (place > size || size <= 1) return place;
  const keys = roundKeys(shuffle.seed);
  const h = halfBits(size);
  // Cycle-walking: a permutation of [0, 4^h) restricted to [0, size) by applying it again until the
  // value falls inside; terminates because the cycle through `place - 1` returns to it.
  let x = place - 1;
  do x = feistel(keys, h, x, inverse);
  while (x >= size);
  return x + 1;
}

/** The admission rank of line place `seq`: shuffled within the pre-queue, arrival order after it. */
export const rankOfPlace = (shuffle: OpeningShuffle, seq: number): number => walk(shuffle, seq, false);

/** The line place admitted at `rank` (the inverse of rankOfPlace). */
export const placeOfRank = (shuffle: OpeningShuffle, rank: number): number => walk(shuffle, rank, true);
