/**
 * Embedded fallback when no PostgreSQL server binaries are installed: an in-memory PGlite (Postgres
 * compiled to WASM) served over the Postgres wire protocol by @electric-sql/pglite-socket.
 * It runs queries one at a time, so it is fine for `npm run dev`, not for load tests.
 */
import { DATABASE_NAME } from './postgres.ts';
import type { LocalPostgres } from './postgres.ts';

/** Starts PGlite on 127.0.0.1:<free port>. `stop()` closes the server and the database. */
export async function startPglite(log: (msg: string) => void): Promise<LocalPostgres> {
  const t0 = Date.now();
  // Imported lazily: loading the WASM costs ~1 s and is only needed when there is no real PostgreSQL.
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create();
  // PGlite has a single database whatever name the client asks for; connecting as `frontrow` just works.
  // maxConnections defaults to 1, which would reject the Worker's second connection.
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 100 });
  await server.start();
  const conn = server.getServerConn(); // "127.0.0.1:PORT", with the real port after listen
  const port = Number(conn.slice(conn.lastIndexOf(':') + 1));
  log(`pglite: ready on 127.0.0.1:${port} in ${Date.now() - t0} ms`);
  let stopping: Promise<void> | undefined;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/${DATABASE_NAME}`,
    host: '127.0.0.1',
    port,
    stop: () =>
      (stopping ??= (async () => {
        await server.stop();
        await db.close();
      })()),
  };
}
