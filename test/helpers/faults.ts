import { inject } from 'vitest';

/** Adapter fault modes (see scripts/stack/faults.ts). */
export type FaultMode = 'none' | 'refuse' | 'drop' | 'delay' | 'cut-replies';

/** Extra settings of a fault. */
export interface FaultOptions {
  /** `delay` only: how long each request or chunk is held back. @default 1000 */
  delayMs?: number;
  /**
   * `cut-replies` only: cut just the requests (HTTP) or connections (WebSocket, from the message that
   * contains it on) whose text contains this, e.g. "COMMIT". @default "" (every request)
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
