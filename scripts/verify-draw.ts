// `npm run verify-draw -- --base-url URL --concert ID [--queue-token TOKEN]`: checks a concert's
// pre-queue draw from public data only (src/lib/draw-audit.ts) and prints each check; exit 0 when all
// hold, 1 when one fails, 2 while the draw is still pending.
import { parseArgs } from 'node:util';
import { auditDraw } from '../src/lib/draw-audit.ts';

const { values } = parseArgs({
  options: { 'base-url': { type: 'string' }, concert: { type: 'string' }, 'queue-token': { type: 'string' } },
});
const baseUrl = values['base-url'];
const concertId = values.concert;
if (!baseUrl || !concertId) {
  console.error('usage: npm run verify-draw -- --base-url http://127.0.0.1:8787 --concert <id> [--queue-token <your queue token>]');
  process.exit(64);
}

const audit = await auditDraw(
  async (path, headers = {}) => {
    const response = await fetch(new URL(path, baseUrl), { headers });
    return { status: response.status, body: await response.json().catch(() => null) };
  },
  { concertId, ...(values['queue-token'] ? { queueToken: values['queue-token'] } : {}) },
);
for (const check of audit.checks) console.log(`${check.ok ? 'ok  ' : 'FAIL'} ${check.name}: ${check.detail}`);
if (audit.rankTableDigest) console.log(`rank table digest: ${audit.rankTableDigest}`);
console.log(audit.pending ? 'PENDING: the draw has not been made yet' : audit.ok ? 'OK' : 'FAILED');
process.exit(audit.pending ? 2 : audit.ok ? 0 : 1);
