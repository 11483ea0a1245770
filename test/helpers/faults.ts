import { inject } from 'vitest';

export type FaultMode = 'none' | 'refuse' | 'drop' | 'delay';

/**
 * Flips a local adapter's fault switch (see scripts/stack). Use with `try/finally` + `clearFault`,
 * since the adapters are shared by every test in the run.
 */
export async function setFault(adapter: 'neon' | 'upstash', mode: FaultMode, delayMs?: number): Promise<void> {
  const faults = inject('faults');
  const response = await fetch(faults[adapter], {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Fault-Token': faults.token },
    body: JSON.stringify({ mode, delayMs }),
  });
  if (!response.ok) throw new Error(`setting ${adapter} fault failed: ${response.status}`);
  await response.body?.cancel();
}

export const clearFault = (adapter: 'neon' | 'upstash') => setFault(adapter, 'none');
