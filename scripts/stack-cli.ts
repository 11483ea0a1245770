/**
 * `npm run stack`: starts the local stack (DESIGN.md §7), prints its fields as JSON on stdout and keeps
 * it up until SIGINT/SIGTERM. Handy for benchmarks and for poking at the adapters by hand.
 * Progress messages go to stderr so stdout stays machine-readable.
 */
import { startStack } from './stack/index.ts';

const stack = await startStack({
  allowPglite: process.argv.includes('--allow-pglite'),
  log: (msg) => console.error(`[stack] ${msg}`),
});
// stop() is a function, so JSON.stringify leaves it out.
console.log(JSON.stringify(stack, null, 2));
console.error('[stack] running; Ctrl-C to stop');

let stopping = false;
const shutdown = (signal: NodeJS.Signals): void => {
  if (stopping) return;
  stopping = true;
  console.error(`[stack] ${signal}: stopping`);
  stack.stop().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
process.on('SIGHUP', shutdown);
