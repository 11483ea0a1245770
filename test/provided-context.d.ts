// What test/global-setup.ts provides to the config and to tests (`inject('databaseUrl')`).
declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    neonWsProxy: string;
    upstashUrl: string;
    upstashToken: string;
    faults: { neon: string; upstash: string; token: string };
    authSecret: string;
    queueTokenSecret: string;
    entryPowSecret: string;
    adminToken: string;
    /** Sequences the model-based run tries (MODEL_RUNS; 200 by default). */
    modelRuns: number;
    /** fast-check seed (MODEL_SEED) and path (MODEL_PATH) to replay a model run's failure. */
    modelSeed: number | undefined;
    modelPath: string | undefined;
    /** How far ahead of the host clock the suite runs (TEST_TODAY; test/helpers/clock-shift.ts); 0 normally. */
    clockOffsetMs: number;
    /** Origin of the `wrangler dev` the browser tests drive (test/browser/global-setup.ts). */
    webUrl: string;
  }
}
export {};
