import { describe, expect, it } from 'vitest';
import { isShuffleSeed, newShuffleSeed, placeOfRank, rankOfPlace, shuffleCommitment } from '../../src/lib/opening-shuffle.ts';

/** Seeds from a fixed generator, so the statistical checks below are the same every run. */
function seeds(count: number): string[] {
  let state = 0x2545f491;
  const next = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0).toString(16).padStart(8, '0');
  };
  return Array.from({ length: count }, () => Array.from({ length: 8 }, next).join(''));
}

describe('the pre-queue draw (src/lib/opening-shuffle.ts)', () => {
  it('is a permutation of 1..P, with placeOfRank its inverse, for every size up to 300 and some large ones', () => {
    const [seed] = seeds(1);
    for (const size of [...Array.from({ length: 300 }, (_, i) => i + 1), 1_000, 4_097, 65_537]) {
      const shuffle = { seed: seed!, prequeueSize: size };
      const ranks = new Set<number>();
      const wrong: string[] = [];
      for (let place = 1; place <= size; place++) {
        const rank = rankOfPlace(shuffle, place);
        if (rank < 1 || rank > size || placeOfRank(shuffle, rank) !== place) wrong.push(`P=${size}: place ${place} → rank ${rank}`);
        ranks.add(rank);
      }
      expect(wrong).toEqual([]);
      expect(ranks.size).toBe(size);
    }
  });

  it('leaves places after the pre-queue in arrival order', () => {
    const shuffle = { seed: seeds(1)[0]!, prequeueSize: 50 };
    for (const place of [51, 52, 1_000, 2 ** 40]) {
      expect(rankOfPlace(shuffle, place)).toBe(place);
      expect(placeOfRank(shuffle, place)).toBe(place);
    }
  });

  it('gives the same order for the same seed and different orders for different seeds', () => {
    const [a, b] = seeds(2);
    const order = (seed: string) => Array.from({ length: 100 }, (_, i) => rankOfPlace({ seed, prequeueSize: 100 }, i + 1));
    expect(order(a!)).toEqual(order(a!));
    expect(order(a!)).not.toEqual(order(b!));
    expect(order(a!)).not.toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  });

  it('puts the first and the last to join at every rank about equally often (6 places, 6,000 seeds)', () => {
    const size = 6;
    const firstAt = new Array<number>(size).fill(0);
    const lastAt = new Array<number>(size).fill(0);
    for (const seed of seeds(6_000)) {
      firstAt[rankOfPlace({ seed, prequeueSize: size }, 1) - 1]!++;
      lastAt[rankOfPlace({ seed, prequeueSize: size }, size) - 1]!++;
    }
    // Each count is Binomial(6000, 1/6): mean 1,000, standard deviation about 29.
    for (const count of [...firstAt, ...lastAt]) expect(Math.abs(count - 1_000)).toBeLessThan(150);
  });

  it('commits to the seed with SHA-256 of its 32 bytes', async () => {
    const zero = '0'.repeat(64);
    expect(await shuffleCommitment(zero)).toBe('66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925');
    const fresh = newShuffleSeed();
    expect(isShuffleSeed(fresh)).toBe(true);
    expect(await shuffleCommitment(fresh)).toMatch(/^[0-9a-f]{64}$/);
    await expect(shuffleCommitment('not hex')).rejects.toThrow(TypeError);
  });
});
