import { inject } from 'vitest';

/** Adapter fault modes (see scripts/stack/faults.ts). */
export type FaultMode = 'none' | 'refuse' | 'drop' | 'delay' | 'cut-replies' | 'swallow-replies';

/** Extra settings of a fault. */
export interface FaultOptions {
  /** `delay` only: how long each request or chunk is held back. @default 1000 */
  delayMs?: number;
  /**
   * `cut-replies` and `swallow-replies` only: just the requests (HTTP) or connections (WebSocket, from
   * the message that contains it on) whose text contains this, e.g. "COMMIT". @default "" (every request)
   */
  match?: string;
}

/**
 * Flips a local adapter's fault switch (see scripts/stack). Use with `try/finally` + `clearFault`,
 * since the adapters are shared by every test in the run. The Neon adapter's switch governs both its
 * WebSocket proxy and its HTTP `/sql` endpoint.
 *
 * `cut-replies`: requests reach the server and run (a COMMIT commits) but the reply is lost, the
 * connection cut instead: the lost reply after COMMIT that idempotency must survive.
 * `swallow-replies`: the same, but the caller is left waiting (no cut), e.g. to reset it right there.
 */
export async function setFault(adapter: 'neon' | 'upstash', mode: FaultMode, options: number | FaultOptions = {}): Promise<void> {
  const { delayMs, match } = typeof options === 'number' ? { delayMs: options, match: undefined } : options;
  const faults = inject('faults');
  const response = await fetch(faults[adapter], {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Fault-Token': faults.token },
    body: JSON.stringify({ mode, delayMs, match }),
  });
  if (!response.ok) throw new Error(`setting ${adapter} fault failed: ${response.status}`);
  await response.body?.cancel();
}

export const clearFault = (adapter: 'neon' | 'upstash') => setFault(adapter, 'none');

/**
 * Switches the server behind an adapter (see scripts/stack/faults.ts): `stop`/`start` the throwaway
 * PostgreSQL behind the Neon adapter (same port, same data), `pause`/`resume` redis-server behind the
 * Upstash adapter. Resolves once the server has done it. Always undo it in a `finally`.
 */
export async function switchServer(adapter: 'neon' | 'upstash', action: 'stop' | 'start' | 'pause' | 'resume'): Promise<void> {
  const faults = inject('faults');
  const response = await fetch(faults[adapter].replace(/\/__fault$/, '/__server'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Fault-Token': faults.token },
    body: JSON.stringify({ action }),
  });
  if (!response.ok) throw new Error(`${action} behind the ${adapter} adapter failed: ${response.status} ${await response.text()}`);
  await response.body?.cancel();
}
