import type { OpenAPIHono } from '@hono/zod-openapi';
import type { Db, Pool } from './db/client.ts';
import type { QueueClaims } from './lib/queue-token.ts';

/** Hono environment of the whole app: bindings from `wrangler types`, per-request variables. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    /** Set by `requireUser`. */
    userId: string;
    /** Set by `requireQueueToken`. */
    queueClaims: QueueClaims;
    /** This request's drizzle client, created on first use (see `requestDb`). */
    db: () => Db;
    /** This request's raw Neon pool, created on first use. */
    pool: () => Pool;
  };
}

export type App = OpenAPIHono<AppEnv>;
