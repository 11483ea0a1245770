import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { budgetUnderLoad, countInFlight, MAX_BUDGET_MS } from '../../src/lib/in-flight.ts';

/** An app whose `/wait` requests stay in flight until `release()`, and whose `/budget` reports the budget of 800 ms. */
function appWithGate() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const app = new Hono();
  app.use(countInFlight);
  app.get('/wait', async (c) => {
    await gate;
    return c.text('done');
  });
  app.get('/budget', (c) => c.json(budgetUnderLoad(800)));
  return { app, release };
}

const budget = async (app: Hono) => (await app.request('/budget')).json<number>();

describe('Redis budgets under load (src/lib/in-flight.ts)', () => {
  it('is the plain budget on an idle isolate, so a Redis that is away still fails closed on time', async () => {
    const { app } = appWithGate();
    expect(await budget(app)).toBe(800);
  });

  it('grows with the other requests in flight, and shrinks back when they finish', async () => {
    const { app, release } = appWithGate();
    const waiting = Array.from({ length: 40 }, () => Promise.resolve(app.request('/wait')));
    expect(await budget(app)).toBe(800 + 40 * 10);
    release();
    await Promise.all(waiting);
    expect(await budget(app)).toBe(800);
  });

  it('never passes its ceiling however many are in flight', async () => {
    const { app, release } = appWithGate();
    const waiting = Array.from({ length: 2_000 }, () => Promise.resolve(app.request('/wait')));
    expect(await budget(app)).toBe(MAX_BUDGET_MS);
    release();
    await Promise.all(waiting);
  });
});
