import { describe, expect, it } from 'vitest';
import { JoinRate } from '../../src/durable-objects/concert-room/entry.ts';
import { surgeCost } from '../../src/lib/entry-proof.ts';

describe('surgeCost', () => {
  const config = { cost: 100, surgeJoinsPerSecond: 200 };

  it('keeps the concert’s cost below the surge rate', () => {
    expect(surgeCost(config, 0)).toBe(100);
    expect(surgeCost(config, 199)).toBe(100);
  });

  it('doubles the cost for each doubling of the join rate past it, at most 8×', () => {
    expect(surgeCost(config, 200)).toBe(200);
    expect(surgeCost(config, 399)).toBe(200);
    expect(surgeCost(config, 400)).toBe(400);
    expect(surgeCost(config, 799)).toBe(400);
    expect(surgeCost(config, 800)).toBe(800);
    expect(surgeCost(config, 1_000_000)).toBe(800);
  });
});

describe('JoinRate', () => {
  it('counts the current second and the last whole one, and forgets older ones', () => {
    const rate = new JoinRate();
    const t = 1_800_000_000_000;
    rate.record(5, t);
    rate.record(3, t + 999);
    expect(rate.perSecond(t + 999)).toBe(8);
    // The next second: the last whole second still counts.
    rate.record(2, t + 1_000);
    expect(rate.perSecond(t + 1_500)).toBe(8);
    // Two seconds on: only the second before.
    expect(rate.perSecond(t + 2_000)).toBe(2);
    expect(rate.perSecond(t + 5_000)).toBe(0);
  });
});
