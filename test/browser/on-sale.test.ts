import { randomUUID } from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { checkState, DESKTOP, expectText, expectVisible, launchChromium, screenshot } from './browser.ts';

const webUrl = inject('webUrl');
const adminToken = inject('adminToken');

let browser: Browser;
const contexts: BrowserContext[] = [];

/** A page in a context of its own: its own storage, so each is a different visitor. */
async function newVisitor(): Promise<Page> {
  const context = await browser.newContext({ baseURL: webUrl, viewport: DESKTOP });
  contexts.push(context);
  return context.newPage();
}

/** Signs in on the form the page shows when an action needs it. */
async function signIn(page: Page, userId: string): Promise<void> {
  await page.getByLabel('User id').fill(userId);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expectText(page.getByTestId('user'), new RegExp(userId));
}

/** Landing → the concert's page (by its link) → Join the line → sign in → a place in line. */
async function joinLine(page: Page, title: string, userId: string): Promise<void> {
  await page.goto('/');
  await page.getByRole('link', { name: title, exact: true }).click();
  await expectVisible(page.getByRole('heading', { name: title, level: 2 }));
  await page.getByRole('button', { name: 'Join the line' }).click();
  await signIn(page, userId);
  await expectVisible(page.getByTestId('position'));
}

/** A date `days` from today (UTC): tests never depend on the calendar. */
const dayFromNow = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);

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
  it('lists the upcoming concerts on / with no sign-in and no click, and serves /docs with no request leaving the origin', async () => {
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
    // The seed's concerts start at 20:00 UTC on consecutive days from today: today's is listed until it starts.
    const first = Date.now() < Date.parse(`${dayFromNow(0)}T20:00:00Z`) ? 'Frontrow Live #1' : 'Frontrow Live #2';
    await expectVisible(page.getByRole('link', { name: first, exact: true }));
    expect(await page.getByLabel('User id').count()).toBe(0);
    await expectText(page.locator(`li:has(a:text-is("${first}")) .pill`), /^On sale · \d+ left$/);
    await checkState(page, 'landing');

    // A concert whose sales open in two days shows the countdown to its opening.
    const later = `Opening later ${randomUUID().slice(0, 8)}`;
    await send('/admin/concerts', adminToken, {
      title: later,
      venue: 'Hall L',
      date: dayFromNow(5),
      startsAt: `${dayFromNow(5)}T20:00:00Z`,
      salesOpenAt: new Date(Date.now() + 2 * 86_400_000 + 3_600_000).toISOString(),
      seats: { count: 4, price: 10 },
    });
    await page.reload();
    await expectText(page.locator(`li:has(a:text-is("${later}")) .pill`), /^Sales open in 2 d \d\d:\d\d:\d\d$/);

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
    // Three days ahead: its refunds (closing 24 h before the show) stay open whatever the hour.
    await operator.getByLabel('Date').fill(dayFromNow(3));
    await operator.getByLabel('Seats').fill('8');
    await operator.getByLabel('Refund fee (points)').fill('10');
    await operator.getByLabel('Price (points)').fill('100');
    await operator.getByLabel('Admit per window').fill('10');
    await operator.getByLabel('Window (s)').fill('1');
    await operator.getByLabel('Max active (optional)').fill('1');
    await operator.getByLabel('Start paused').check();
    await operator.getByRole('button', { name: 'Create concert' }).click();
    await expectText(operator.getByTestId('admission'), /^paused$/);
    await screenshot(operator, 'operator-created-paused');

    // Both join while paused: A is first, B second, and both are told the line is paused.
    // A goes step by step, each state checked: the concert's page, then sign-in only on joining.
    await fanA.goto('/');
    await fanA.getByRole('link', { name: title, exact: true }).click();
    await expectVisible(fanA.getByRole('heading', { name: title, level: 2 }));
    await checkState(fanA, 'concert-page');
    await fanA.getByRole('button', { name: 'Join the line' }).press('Enter');
    await expectVisible(fanA.getByLabel('User id'));
    await checkState(fanA, 'sign-in-to-join');
    await signIn(fanA, `fan-a-${randomUUID()}`);
    await expectVisible(fanA.getByTestId('position'));
    await joinLine(fanB, title, `fan-b-${randomUUID()}`);
    await expectText(fanA.getByTestId('position'), /^1$/);
    await expectText(fanB.getByTestId('position'), /^2$/);
    for (const fan of [fanA, fanB]) {
      await expectText(fan.getByTestId('connection'), /Live/);
      await expectVisible(fan.getByTestId('paused'));
    }
    await checkState(fanB, 'waiting-paused');
    await expectText(tile(operator, 'Waiting'), /^2$/);

    // Resume: A is admitted and B moves up, both without a reload.
    await operator.getByRole('button', { name: 'Resume admission' }).click();
    await expectVisible(fanA.getByRole('heading', { name: /Choose up to 4 seats/ }));
    await expectText(fanB.getByTestId('position'), /^1$/);
    await expectVisible(fanB.getByTestId('paused'), false);
    await checkState(fanA, 'seat-map');
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
    await checkState(fanA, 'checkout');

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
    await checkState(fanB, 'seat-map-held');

    // B holds seat 3 and pays with no points: the API's problem is shown, title and detail.
    await fanB.locator('[data-seat="3"]').click();
    await fanB.getByRole('button', { name: 'Hold 1 seat' }).click();
    await fanB.getByRole('button', { name: 'Pay 100 points' }).click();
    await expectText(fanB.getByRole('alert'), /Insufficient balance — Balance 0 is less than 100/);
    await checkState(fanB, 'payment-declined');

    // A charges points and pays: confirmed.
    await fanA.getByLabel('Charge points').fill('1000');
    await fanA.getByRole('button', { name: 'Charge', exact: true }).click();
    await expectText(fanA.getByTestId('balance'), /^1000$/);
    await fanA.getByRole('button', { name: 'Pay 200 points' }).click();
    await expectVisible(fanA.getByRole('heading', { name: 'Payment confirmed' }));
    await expectText(fanA.getByRole('status').filter({ hasText: 'are yours' }), /Seats 1, 2 for .* are yours/);
    await checkState(fanA, 'confirmed');

    // The operator's live view has caught up with all of it.
    await expectText(tile(operator, 'Sold'), /^2$/);
    await expectText(tile(operator, 'Held'), /^1$/);
    await expectText(tile(operator, 'Revenue (points)'), /^200$/);
    await expectText(tile(operator, 'Admitted'), /^2$/);
    // The draw's commitment (the operator's view of what fans can audit), then a reconciliation that finds nothing to repair.
    await expectText(operator.getByTestId('operator-commitment'), /^[0-9a-f]{64}$/);
    await operator.getByRole('button', { name: 'Reconcile now' }).click();
    await expectText(operator.getByTestId('reconcile-report'), /No differences/);
    await checkState(operator, 'operator-live-view');

    // My tickets: A's paid seats, and a refund whose fee and cut-off are shown before it is confirmed.
    await fanA.getByRole('link', { name: 'See My tickets' }).click();
    const ticket = fanA.locator('li.ticket').first();
    await expectText(ticket.getByTestId('ticket-status'), /^Paid$/);
    await expectText(ticket.getByTestId('ticket-seats'), /^1, 2$/);
    await expectText(ticket.getByTestId('ticket-amount'), /^200 points$/);
    await checkState(fanA, 'my-tickets');
    await ticket.getByRole('button', { name: 'Refund…' }).press('Enter');
    await expectText(ticket.getByTestId('refund-terms'), /you get 190 points back \(the concert keeps a fee of 10 points\)\. Refunds close /);
    await checkState(fanA, 'refund-confirm');
    await ticket.getByRole('button', { name: 'Confirm refund' }).press('Enter');
    await expectText(fanA.getByTestId('tickets-note'), /Refunded 190 points \(fee 10\); your balance is 990 points/);
    await expectText(ticket.getByTestId('ticket-status'), /^Refunded$/);
    await checkState(fanA, 'refunded');
    await expectText(tile(operator, 'Sold'), /^0$/);
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
    await joinLine(fan, title, `fan-c-${randomUUID()}`);
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
    await joinLine(fan, title, `fan-r-${randomUUID()}`);
    await expectText(fan.getByTestId('connection'), /another tab/);
    // The page's reconnect delay is 0.5–10 s: a page that reconnected would have opened again by then.
    await fan.waitForTimeout(3_000);
    expect(opened).toBe(1);
    await expectVisible(fan.getByTestId('paused'));
  });

  it('shows a fan whose line sold out the waitlist offer pushed on its socket, and takes it to a paid seat', async () => {
    const title = `Waitlist ${randomUUID().slice(0, 8)}`;
    const date = dayFromNow(1);
    // One admission per hour: the buyer, first in line, is in at once; the fan after waits.
    const id = await createConcert({ title, date, seats: 2, price: 50, queue: { admitPerWindow: 1, windowSeconds: 3600 } });
    const buyer = await devToken(`buyer-${randomUUID()}`);
    const { token: buyerQueue } = await send<{ token: string; status: string }>('/queue/token', buyer, { concertId: id });

    const fan = await newVisitor();
    await joinLine(fan, title, `fan-w-${randomUUID()}`);
    await expectText(fan.getByTestId('connection'), /Live/);

    // The buyer takes both seats: the line sells out, and the waiting fan is offered the waitlist in its place.
    const bought = await buyBoth(id, buyer, buyerQueue);
    await expectText(fan.getByTestId('queue-status'), /Sold out/);
    await fan.getByLabel('Seats').selectOption('2');
    await fan.getByLabel('Side by side').check();
    await fan.getByRole('button', { name: 'Join the waitlist' }).click();
    await expectText(fan.getByTestId('waitlist-position'), /You are number 1 on the waitlist/);
    await checkState(fan, 'line-sold-out-waitlist');

    // The buyer refunds: the seats are offered to the fan, whose page shows it at once (the socket's push).
    await send(`/reservations/${bought}/refund`, buyer);
    await expectText(fan.getByTestId('waitlist-offer'), /Seats came back for you from the waitlist: 1, 2 for 100 points/);
    await checkState(fan, 'waitlist-offer-pushed');
    await fan.getByRole('button', { name: 'Pay for them' }).click();
    await payWithNewPoints(fan, 100);
    await screenshot(fan, 'fan-w-waitlist-paid');
  });

  it('takes a fan from a sold-out concert page through the waitlist to a paid seat, and refunds it less the fee from My tickets', async () => {
    const title = `Sold out ${randomUUID().slice(0, 8)}`;
    const id = await createConcert({ title, date: dayFromNow(1), seats: 2, price: 50, refunds: { fee: 5, cutoffHours: 0 } });
    const buyer = await devToken(`buyer-${randomUUID()}`);
    const { token: buyerQueue } = await send<{ token: string }>('/queue/token', buyer, { concertId: id });
    const bought = await buyBoth(id, buyer, buyerQueue);

    // Sold out: the page offers the waitlist, not the line; signing in comes with joining it.
    const fan = await newVisitor();
    await fan.goto('/');
    await expectText(fan.locator(`li:has(a:text-is("${title}")) .pill`), /^Sold out$/);
    await fan.getByRole('link', { name: title, exact: true }).click();
    await expectVisible(fan.getByRole('heading', { name: 'Sold out' }));
    expect(await fan.getByRole('button', { name: 'Join the line' }).count()).toBe(0);
    await checkState(fan, 'sold-out');
    await fan.getByLabel('Seats').selectOption('2');
    await fan.getByRole('button', { name: 'Join the waitlist' }).press('Enter');
    await signIn(fan, `fan-s-${randomUUID()}`);
    await expectText(fan.getByTestId('waitlist-position'), /You are number 1 on the waitlist/);
    await checkState(fan, 'waitlist-waiting');

    // The operator refunds the buyer in full from the operator page: the seats come back and are offered to the fan.
    const operator = await newVisitor();
    await operator.goto('/operator');
    await operator.getByLabel('Admin token').fill(adminToken);
    await operator.getByRole('button', { name: 'Continue' }).click();
    await operator.getByLabel('Or watch concert id').fill(id);
    await operator.getByRole('button', { name: 'Watch' }).click();
    await expectText(operator.locator('[data-waitlist-stat="Waiting"] dd'), /^1$/);
    await operator.getByLabel('Reservation id').fill(bought);
    await operator.getByRole('button', { name: 'Refund in full' }).click();
    await expectText(operator.getByRole('status').filter({ hasText: 'Refunded' }), /Refunded 100 points/);
    await expectText(operator.locator('[data-waitlist-stat="Offered"] dd'), /^1$/);
    await checkState(operator, 'operator-waitlist-refund');

    // The fan sees the offer, with its countdown, and Pay.
    await expectText(fan.getByTestId('waitlist-entry-offer'), /Seats came back for you: 1, 2 for 100 points/);
    await expectText(fan.getByTestId('offer-countdown'), /^\d+:\d\d$/);
    await checkState(fan, 'waitlist-offer');
    await fan.getByRole('button', { name: 'Pay for the offered seats' }).press('Enter');
    await payWithNewPoints(fan, 100);

    await fan.getByRole('link', { name: 'See My tickets' }).click();
    const ticket = fan.locator('li.ticket').first();
    await expectText(ticket.getByTestId('ticket-status'), /^Paid$/);
    await ticket.getByRole('button', { name: 'Refund…' }).click();
    await expectText(ticket.getByTestId('refund-terms'), /you get 95 points back \(the concert keeps a fee of 5 points\)/);
    await ticket.getByRole('button', { name: 'Confirm refund' }).click();
    await expectText(ticket.getByTestId('ticket-status'), /^Refunded$/);
  });
});

/** POSTs `body` to the API as `token` (a user's or the admin's) and returns the parsed 2xx body. */
async function send<T>(path: string, token: string | undefined, body?: unknown): Promise<T> {
  const response = await fetch(`${webUrl}${path}`, {
    method: 'POST',
    headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  expect(response.status, `${path}: ${response.status}`).toBeLessThan(300);
  const parsed: T = await response.json();
  return parsed;
}

const devToken = async (userId: string) => (await send<{ token: string }>('/auth/dev-token', undefined, { userId })).token;

/** A concert on sale since a minute ago, starting at 20:00 UTC on `date`; returns its id. */
async function createConcert(options: { title: string; date: string; seats: number; price: number; queue?: object; refunds?: object }): Promise<string> {
  const { id } = await send<{ id: string }>('/admin/concerts', adminToken, {
    title: options.title,
    venue: 'Hall W',
    date: options.date,
    startsAt: `${options.date}T20:00:00Z`,
    salesOpenAt: new Date(Date.now() - 60_000).toISOString(),
    seats: { count: options.seats, price: options.price },
    ...(options.queue ? { queue: options.queue } : {}),
    ...(options.refunds ? { refunds: options.refunds } : {}),
  });
  return id;
}

/** The buyer (admitted) holds and pays seats 1 and 2; returns the reservation id. */
async function buyBoth(concertId: string, buyer: string, buyerQueue: string): Promise<string> {
  const holdResponse = await fetch(`${webUrl}/reservations`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${buyer}`, 'Queue-Token': buyerQueue, 'Content-Type': 'application/json' },
    body: JSON.stringify({ concertId, seatNumbers: [1, 2] }),
  });
  expect(holdResponse.status).toBe(201);
  const { reservationId, amount }: { reservationId: string; amount: number } = await holdResponse.json();
  await send('/balance/charge', buyer, { amount });
  await send('/payment', buyer, { reservationId });
  return reservationId;
}

/** At checkout: charges exactly `amount` points and pays, up to the confirmation. */
async function payWithNewPoints(fan: Page, amount: number): Promise<void> {
  await expectText(fan.getByTestId('amount'), new RegExp(`^${amount}$`));
  await fan.getByLabel('Charge points').fill(String(amount));
  await fan.getByRole('button', { name: 'Charge', exact: true }).click();
  await expectText(fan.getByTestId('balance'), new RegExp(`^${amount}$`));
  await fan.getByRole('button', { name: `Pay ${amount} points` }).click();
  await expectVisible(fan.getByRole('heading', { name: 'Payment confirmed' }));
}
