import { randomUUID } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { expectText, expectVisible, launchChromium, screenshot } from './browser.ts';

const webUrl = inject('webUrl');
const adminToken = inject('adminToken');

let browser: Browser;
const contexts: BrowserContext[] = [];

/** A page in a context of its own: its own storage, so each is a different visitor. */
async function newVisitor(): Promise<Page> {
  const context = await browser.newContext({ baseURL: webUrl, viewport: { width: 1100, height: 800 } });
  contexts.push(context);
  return context.newPage();
}

async function signInFan(page: Page, userId: string): Promise<void> {
  await page.goto('/');
  await page.getByLabel('User id').fill(userId);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expectText(page.getByTestId('user'), new RegExp(userId));
}

async function joinLine(page: Page, title: string): Promise<void> {
  await page.getByRole('button', { name: 'Find concerts' }).click();
  await page.getByRole('button', { name: `Join the line for ${title}` }).click();
  await expectVisible(page.getByTestId('position'));
}

/** The operator's live-view tile for `name` (Waiting, Sold, Revenue (points), …). */
const tile = (page: Page, name: string) => page.locator(`[data-stat="${name}"] dd`);

beforeAll(async () => {
  browser = await launchChromium();
});

afterAll(async () => {
  for (const context of contexts) await context.close();
  await browser?.close();
});

describe('web front', () => {
  it('serves the fan page at / and the API docs with no request leaving the origin', async () => {
    const page = await newVisitor();
    const elsewhere: string[] = [];
    await page.context().route(
      (url) => url.origin !== new URL(webUrl).origin,
      (route) => {
        elsewhere.push(route.request().url());
        return route.abort();
      },
    );
    await page.goto('/');
    await expectVisible(page.getByRole('heading', { name: 'Sign in as' }));
    await page.goto('/docs');
    await expectText(page.locator('#swagger-ui .info .title'), /Frontrow API/);
    await screenshot(page, 'docs-offline');
    expect(elsewhere).toEqual([]);
  });

  it('takes two fans through the line to a paid seat while the operator runs the on-sale', async () => {
    const title = `On-sale ${randomUUID().slice(0, 8)}`;
    const operator = await newVisitor();
    const fanA = await newVisitor();
    const fanB = await newVisitor();

    // The operator opens a small, paused on-sale: one fan at a time (maxActive 1).
    await operator.goto('/operator');
    await operator.getByLabel('Admin token').fill(adminToken);
    await operator.getByRole('button', { name: 'Continue' }).click();
    await operator.getByLabel('Title').fill(title);
    await operator.getByLabel('Seats').fill('8');
    await operator.getByLabel('Price (points)').fill('100');
    await operator.getByLabel('Admit per window').fill('10');
    await operator.getByLabel('Window (s)').fill('1');
    await operator.getByLabel('Max active (optional)').fill('1');
    await operator.getByLabel('Start paused').check();
    await operator.getByRole('button', { name: 'Create concert' }).click();
    await expectText(operator.getByTestId('admission'), /^paused$/);
    await screenshot(operator, 'operator-created-paused');

    // Both join while paused: A is first, B second, and both are told the line is paused.
    await signInFan(fanA, `fan-a-${randomUUID()}`);
    await joinLine(fanA, title);
    await signInFan(fanB, `fan-b-${randomUUID()}`);
    await joinLine(fanB, title);
    await expectText(fanA.getByTestId('position'), /^1$/);
    await expectText(fanB.getByTestId('position'), /^2$/);
    for (const fan of [fanA, fanB]) {
      await expectText(fan.getByTestId('connection'), /Live/);
      await expectVisible(fan.getByTestId('paused'));
    }
    await screenshot(fanB, 'fan-b-waiting-paused');
    await expectText(tile(operator, 'Waiting'), /^2$/);

    // Resume: A is admitted and B moves up, both without a reload.
    await operator.getByRole('button', { name: 'Resume admission' }).click();
    await expectVisible(fanA.getByRole('heading', { name: /Choose up to 4 seats/ }));
    await expectText(fanB.getByTestId('position'), /^1$/);
    await expectVisible(fanB.getByTestId('paused'), false);
    await screenshot(fanA, 'fan-a-admitted-seat-map');
    await screenshot(fanB, 'fan-b-moved-up');

    // A picks seats 1 and 2 with the keyboard and holds them.
    await fanA.locator('[data-seat="1"]').focus();
    await fanA.keyboard.press('Enter');
    await fanA.keyboard.press('Tab');
    await fanA.keyboard.press('Space');
    await expectText(fanA.getByText(/of 4 chosen/), /2 of 4 chosen: 1, 2/);
    await fanA.getByRole('button', { name: 'Hold 2 seats' }).click();
    await expectText(fanA.getByTestId('countdown'), /Seats held for \d+:\d\d/);
    await expectText(fanA.getByTestId('amount'), /^200$/);
    await screenshot(fanA, 'fan-a-checkout');

    // The operator pauses; B, still waiting, sees it.
    await operator.getByRole('button', { name: 'Pause admission' }).click();
    await expectVisible(fanB.getByTestId('paused'));
    await screenshot(fanB, 'fan-b-sees-pause');

    // Room for two at a time, and admission resumes: B is in and sees A's seats held.
    await operator.getByLabel('Max active').fill('2');
    await operator.getByRole('button', { name: 'Save settings' }).click();
    await operator.getByRole('button', { name: 'Resume admission' }).click();
    await expectVisible(fanB.getByRole('heading', { name: /Choose up to 4 seats/ }));
    for (const seat of ['1', '2']) {
      await expectText(fanB.locator(`[data-seat="${seat}"] .state`), /^held$/);
    }
    await expectText(fanB.locator('[data-seat="3"] .state'), /^free$/);
    await screenshot(fanB, 'fan-b-sees-seats-held');

    // B holds seat 3 and pays with no points: the API's problem is shown, title and detail.
    await fanB.locator('[data-seat="3"]').click();
    await fanB.getByRole('button', { name: 'Hold 1 seat' }).click();
    await fanB.getByRole('button', { name: 'Pay 100 points' }).click();
    await expectText(fanB.getByRole('alert'), /Insufficient balance — Balance 0 is less than 100/);
    await screenshot(fanB, 'fan-b-payment-declined');

    // A charges points and pays: confirmed.
    await fanA.getByLabel('Charge points').fill('1000');
    await fanA.getByRole('button', { name: 'Charge', exact: true }).click();
    await expectText(fanA.getByTestId('balance'), /^1000$/);
    await fanA.getByRole('button', { name: 'Pay 200 points' }).click();
    await expectVisible(fanA.getByRole('heading', { name: 'Payment confirmed' }));
    await expectText(fanA.getByRole('status'), /Seats 1, 2 for .* are yours/);
    await screenshot(fanA, 'fan-a-confirmed');

    // The operator's live view has caught up with all of it.
    await expectText(tile(operator, 'Sold'), /^2$/);
    await expectText(tile(operator, 'Held'), /^1$/);
    await expectText(tile(operator, 'Revenue (points)'), /^200$/);
    await expectText(tile(operator, 'Admitted'), /^2$/);
    await screenshot(operator, 'operator-live-view');
  });

  it('keeps a fan moving by polling when the queue WebSocket cannot stay up', async () => {
    const title = `No-socket ${randomUUID().slice(0, 8)}`;
    // Tomorrow: a show later today would be refused as started after 23:00 UTC.
    const date = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const admin = { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' };
    const created = await fetch(`${webUrl}/admin/concerts`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({
        title,
        venue: 'Hall B',
        date,
        startsAt: `${date}T23:00:00Z`,
        salesOpenAt: new Date(Date.now() - 60_000).toISOString(),
        seats: { count: 4, price: 10 },
        queue: { paused: true },
      }),
    });
    expect(created.status).toBe(201);
    const { id }: { id: string } = await created.json();

    const fan = await newVisitor();
    // Every socket the page opens is accepted and closed at once, as a flaky network would.
    await fan.routeWebSocket(/\/queue\/ws$/, (socket) => socket.close({ code: 1011, reason: 'test: no sockets' }));
    await signInFan(fan, `fan-c-${randomUUID()}`);
    await fan.getByLabel('Date').fill(date);
    await joinLine(fan, title);
    await expectText(fan.getByTestId('connection'), /Reconnecting/);
    await expectVisible(fan.getByTestId('paused'));
    await screenshot(fan, 'fan-c-polling');

    const resumed = await fetch(`${webUrl}/admin/concerts/${id}/queue`, { method: 'PATCH', headers: admin, body: JSON.stringify({ paused: false }) });
    expect(resumed.status).toBe(200);
    await expectVisible(fan.getByRole('heading', { name: /Choose up to 4 seats/ }));
  });

  it('does not reconnect a queue socket the room replaced (close code 4008), and keeps the fan informed by polling', async () => {
    const title = `Replaced ${randomUUID().slice(0, 8)}`;
    const date = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const created = await fetch(`${webUrl}/admin/concerts`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        title,
        venue: 'Hall R',
        date,
        startsAt: `${date}T23:00:00Z`,
        salesOpenAt: new Date(Date.now() - 60_000).toISOString(),
        seats: { count: 4, price: 10 },
        queue: { paused: true },
      }),
    });
    expect(created.status).toBe(201);

    const fan = await newVisitor();
    let opened = 0;
    // As the room does when the same place opens a fifth socket elsewhere.
    await fan.routeWebSocket(/\/queue\/ws$/, (socket) => {
      opened++;
      void socket.close({ code: 4008, reason: 'replaced' });
    });
    await signInFan(fan, `fan-r-${randomUUID()}`);
    await fan.getByLabel('Date').fill(date);
    await joinLine(fan, title);
    await expectText(fan.getByTestId('connection'), /another tab/);
    // The page's reconnect delay is 0.5–10 s: a page that reconnected would have opened again by then.
    await fan.waitForTimeout(3_000);
    expect(opened).toBe(1);
    await expectVisible(fan.getByTestId('paused'));
  });

  it('shows a sold-out fan the waitlist offer pushed on its socket, and takes it to a paid seat', async () => {
    const title = `Waitlist ${randomUUID().slice(0, 8)}`;
    const date = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const send = async <T,>(path: string, token: string | undefined, body?: unknown): Promise<T> => {
      const response = await fetch(`${webUrl}${path}`, {
        method: 'POST',
        headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      expect(response.status, `${path}: ${response.status}`).toBeLessThan(300);
      const parsed: T = await response.json();
      return parsed;
    };
    const devToken = async (userId: string) => (await send<{ token: string }>('/auth/dev-token', undefined, { userId })).token;
    const { id } = await send<{ id: string }>('/admin/concerts', adminToken, {
      title,
      venue: 'Hall W',
      date,
      startsAt: `${date}T20:00:00Z`,
      salesOpenAt: new Date(Date.now() - 60_000).toISOString(),
      seats: { count: 2, price: 50 },
      refunds: { cutoffHours: 0 },
    });
    // Someone buys both seats.
    const buyer = await devToken(`buyer-${randomUUID()}`);
    const { token: buyerQueue } = await send<{ token: string }>('/queue/token', buyer, { concertId: id });
    const holdResponse = await fetch(`${webUrl}/reservations`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${buyer}`, 'Queue-Token': buyerQueue, 'Content-Type': 'application/json' },
      body: JSON.stringify({ concertId: id, seatNumbers: [1, 2] }),
    });
    expect(holdResponse.status).toBe(201);
    const { reservationId: bought }: { reservationId: string } = await holdResponse.json();
    await send('/balance/charge', buyer, { amount: 100 });
    await send('/payment', buyer, { reservationId: bought });

    // A fan finds the line sold out and joins the waitlist (through the API: the page has no form for it).
    const userId = `fan-w-${randomUUID()}`;
    const fan = await newVisitor();
    await signInFan(fan, userId);
    await fan.getByLabel('Date').fill(date);
    await fan.getByRole('button', { name: 'Find concerts' }).click();
    await fan.getByRole('button', { name: `Join the line for ${title}` }).click();
    await expectText(fan.getByTestId('queue-status'), /Sold out/);
    await expectText(fan.getByTestId('connection'), /Live/);
    await send(`/concerts/${id}/waitlist`, await devToken(userId), { seats: 2, together: true });

    // The buyer refunds: the seats are offered to the fan, whose page shows it at once.
    await send(`/reservations/${bought}/refund`, buyer);
    await expectText(fan.getByTestId('waitlist-offer'), /Seats came back for you from the waitlist: 1, 2 for 100 points/);
    await screenshot(fan, 'fan-w-waitlist-offer');
    await fan.getByRole('button', { name: 'Pay for them' }).click();
    await expectText(fan.getByTestId('amount'), /^100$/);
    await fan.getByLabel('Charge points').fill('100');
    await fan.getByRole('button', { name: 'Charge', exact: true }).click();
    await expectText(fan.getByTestId('balance'), /^100$/);
    await fan.getByRole('button', { name: 'Pay 100 points' }).click();
    await expectVisible(fan.getByRole('heading', { name: 'Payment confirmed' }));
    await screenshot(fan, 'fan-w-waitlist-paid');
  });
});
