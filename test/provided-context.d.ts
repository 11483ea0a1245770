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
    adminToken: string;
  }
}
export {};
