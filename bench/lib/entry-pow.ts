// A native solver for the proof of work at the entrance (issue 20): what a scripted attacker (or the
// bench's fans) would run. node:crypto's PBKDF2 on the same parameters altcha-lib's WebCrypto solver
// uses, one synchronous call per attempt, so its CPU time is the attacker's cost per place.
import { pbkdf2Sync } from 'node:crypto';

/** The parts of an ALTCHA v2 challenge a solver reads (GET /queue/challenge's `challenge`). */
export interface EntryChallenge {
  parameters: { algorithm: string; nonce: string; salt: string; cost: number; keyLength?: number; keyPrefix: string; [key: string]: unknown };
  signature?: string;
}

export interface EntrySolution {
  counter: number;
  derivedKey: string;
  /** Attempts made (counter + 1). */
  attempts: number;
}

/** Tries counters from 0 until the derived key starts with the challenge's prefix. */
export function solveEntryChallenge(challenge: EntryChallenge, maxAttempts = 2 ** 24): EntrySolution {
  const { algorithm, nonce, salt, cost, keyLength = 32, keyPrefix } = challenge.parameters;
  if (algorithm !== 'PBKDF2/SHA-256') throw new Error(`unsupported algorithm ${algorithm}`);
  const nonceBytes = Buffer.from(nonce, 'hex');
  const saltBytes = Buffer.from(salt, 'hex');
  const prefix = Buffer.from(keyPrefix, 'hex');
  const password = Buffer.alloc(nonceBytes.length + 4);
  nonceBytes.copy(password, 0);
  for (let counter = 0; counter < maxAttempts; counter++) {
    // ALTCHA v2's password: the nonce followed by the counter as a big-endian uint32.
    password.writeUInt32BE(counter, nonceBytes.length);
    const key = pbkdf2Sync(password, saltBytes, cost, keyLength, 'sha256');
    if (key.subarray(0, prefix.length).equals(prefix)) return { counter, derivedKey: key.toString('hex'), attempts: counter + 1 };
  }
  throw new Error(`no solution in ${maxAttempts} attempts`);
}

/** Milliseconds one attempt takes here (PBKDF2-SHA-256, `rounds` rounds), from `samples` attempts. */
export function attemptMs(rounds = 1_000, samples = 50): number {
  for (let i = 0; i < 10; i++) pbkdf2Sync(Buffer.from([i]), Buffer.alloc(16), rounds, 32, 'sha256'); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < samples; i++) pbkdf2Sync(Buffer.from([i]), Buffer.alloc(16), rounds, 32, 'sha256');
  return (performance.now() - t0) / samples;
}

/** The join's `altcha` field: base64 of ALTCHA's payload `{challenge, solution}`. */
export function entryProofField(challenge: EntryChallenge, solution: EntrySolution): string {
  return Buffer.from(JSON.stringify({ challenge, solution: { counter: solution.counter, derivedKey: solution.derivedKey } })).toString('base64');
}

// `node bench/lib/entry-pow.ts < challenge.json`: reads GET /queue/challenge's answer (or its
// `challenge`), prints the `altcha` field to send with POST /queue/token (docs/entry.md).
if (import.meta.url === `file://${process.argv[1]}`) {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { challenge?: EntryChallenge } & Partial<EntryChallenge>;
  const challenge = (input.challenge ?? input) as EntryChallenge;
  const started = process.cpuUsage();
  const solution = solveEntryChallenge(challenge);
  const cpu = process.cpuUsage(started);
  console.error(`solved in ${solution.attempts} attempts, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU`);
  console.log(entryProofField(challenge, solution));
}
