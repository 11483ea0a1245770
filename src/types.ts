import type { OpenAPIHono } from '@hono/zod-openapi';
import type { HttpDb, Sql } from './db/http.ts';
import type { Deadline } from './lib/deadline.ts';
import type { IdempotencyClaim } from './lib/idempotency.ts';
import type { QueueClaims } from './lib/queue-token.ts';

/** Hono environment of the whole app: bindings from `wrangler types`, per-request variables. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    /** The request's Redis deadline, set when it starts (see src/lib/deadline.ts). */
    deadline: Deadline;
    /** Set by `requireUser`. */
    userId: string;
    /** Set by `requireUserOrAdmin`: the user id, or null for the admin token. */
    actor: string | null;
    /** Set by `requireQueueToken`. */
    queueClaims: QueueClaims;
    /**
     * Set by the idempotency middleware when the request carries an Idempotency-Key: what an effect
     * needs to record its response in the same transaction (see src/lib/idempotency.ts).
     */
    idempotency: IdempotencyClaim | undefined;
    /** True once the handler's effect recorded the response (`markRecorded`). */
    idempotencyRecorded: boolean;
    /** drizzle over Neon's HTTP query path, created on first use (see `requestDb`). */
    db: () => HttpDb;
    /** Neon's HTTP query function (`neon()`): one fetch per statement or batch. */
    sql: () => Sql;
  };
}

export type App = OpenAPIHono<AppEnv>;
