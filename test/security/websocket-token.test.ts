import { describe, expect, it } from 'vitest';
import { WS_PROTOCOL, WS_TOKEN_PROTOCOL_PREFIX } from '../../src/routes/queue.ts';
import { api, uniqueId } from '../helpers/api.ts';
import { createConcert, joinOk } from '../helpers/concerts.ts';
import { expectProblem } from '../helpers/problem.ts';

/*
 * The queue token travels in the Sec-WebSocket-Protocol header, not in a URL that proxies and
 * logs record (issue 10): `new WebSocket(url, ['frontrow.v1', 'token.<queue token>'])`. The server
 * echoes only `frontrow.v1`. `?token=` is still accepted (DESIGN.md §2 lists it) but deprecated.
 */

const upgrade = (protocols?: string) => ({ Upgrade: 'websocket', ...(protocols === undefined ? {} : { 'Sec-WebSocket-Protocol': protocols }) });

/** The first message of an accepted socket, then closes it. */
async function firstMessage(ws: WebSocket): Promise<{ status: string; position: number }> {
  const message = new Promise<string>((resolve) => ws.addEventListener('message', (event) => resolve(event.data as string), { once: true }));
  ws.accept();
  const data = await message;
  ws.close(1000, 'done');
  return JSON.parse(data) as { status: string; position: number };
}

describe('queue WebSocket credentials', () => {
  it('accepts the queue token as a subprotocol and echoes back only frontrow.v1', async () => {
    const concert = await createConcert();
    const { token } = await joinOk(concert.id, uniqueId('ws-proto'));
    const response = await api('/queue/ws', { headers: upgrade(`${WS_PROTOCOL}, ${WS_TOKEN_PROTOCOL_PREFIX}${token}`) });
    expect(response.status).toBe(101);
    expect(response.headers.get('Sec-WebSocket-Protocol')).toBe(WS_PROTOCOL);
    expect(response.headers.get('Deprecation')).toBeNull();
    expect(await firstMessage(response.webSocket!)).toMatchObject({ status: 'waiting', position: 1 });
  });

  it('takes the token whichever order the subprotocols come in', async () => {
    const concert = await createConcert();
    const { token } = await joinOk(concert.id, uniqueId('ws-order'));
    const response = await api('/queue/ws', { headers: upgrade(`${WS_TOKEN_PROTOCOL_PREFIX}${token},${WS_PROTOCOL}`) });
    expect(response.status).toBe(101);
    expect(response.headers.get('Sec-WebSocket-Protocol')).toBe(WS_PROTOCOL);
    await firstMessage(response.webSocket!);
  });

  it('still accepts the deprecated ?token=, marked with a Deprecation header', async () => {
    const concert = await createConcert();
    const { token } = await joinOk(concert.id, uniqueId('ws-query'));
    const response = await api(`/queue/ws?token=${encodeURIComponent(token)}`, { headers: upgrade() });
    expect(response.status).toBe(101);
    expect(response.headers.get('Deprecation')).toMatch(/^@\d+$/);
    expect(response.headers.get('Sec-WebSocket-Protocol')).toBeNull();
    await firstMessage(response.webSocket!);
  });

  it('refuses subprotocols without frontrow.v1 (400), without exactly one token (401), or no token at all (401)', async () => {
    const concert = await createConcert();
    const { token } = await joinOk(concert.id, uniqueId('ws-bad'));
    await expectProblem(await api('/queue/ws', { headers: upgrade(`${WS_TOKEN_PROTOCOL_PREFIX}${token}`) }), 400, 'VALIDATION_FAILED');
    await expectProblem(await api('/queue/ws', { headers: upgrade(`chat, ${WS_TOKEN_PROTOCOL_PREFIX}${token}`) }), 400, 'VALIDATION_FAILED');
    await expectProblem(await api('/queue/ws', { headers: upgrade(WS_PROTOCOL) }), 401, 'INVALID_QUEUE_TOKEN');
    await expectProblem(
      await api('/queue/ws', { headers: upgrade(`${WS_PROTOCOL}, ${WS_TOKEN_PROTOCOL_PREFIX}${token}, ${WS_TOKEN_PROTOCOL_PREFIX}${token}`) }),
      401,
      'INVALID_QUEUE_TOKEN',
    );
    await expectProblem(await api('/queue/ws', { headers: upgrade() }), 401, 'INVALID_QUEUE_TOKEN');
    // The subprotocol wins over the query: a bad header token is not rescued by a good ?token=.
    await expectProblem(
      await api(`/queue/ws?token=${encodeURIComponent(token)}`, { headers: upgrade(`${WS_PROTOCOL}, ${WS_TOKEN_PROTOCOL_PREFIX}x`) }),
      401,
      'INVALID_QUEUE_TOKEN',
    );
  });
});
