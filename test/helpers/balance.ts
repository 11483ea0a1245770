import { api } from './api.ts';

export const authed = (token: string, extra: Record<string, string> = {}) => ({ Authorization: `Bearer ${token}`, ...extra });

export function charge(token: string, amount: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return api('/balance/charge', { method: 'POST', headers: authed(token, headers), json: { amount } });
}

export function use(token: string, amount: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return api('/balance/use', { method: 'POST', headers: authed(token, headers), json: { amount } });
}

export function pay(token: string, reservationId: string, headers: Record<string, string> = {}, path = '/payment'): Promise<Response> {
  return api(path, { method: 'POST', headers: authed(token, headers), json: { reservationId } });
}

export async function balanceOf(token: string): Promise<number> {
  const response = await api('/balance', { headers: authed(token) });
  if (response.status !== 200) throw new Error(`balance failed: ${response.status}`);
  return (await response.json<{ balance: number }>()).balance;
}

/** Counts responses by status code after draining their bodies. */
export async function statusCounts(responses: Response[]): Promise<Record<number, number>> {
  const counts: Record<number, number> = {};
  for (const response of responses) {
    await response.arrayBuffer();
    counts[response.status] = (counts[response.status] ?? 0) + 1;
  }
  return counts;
}
