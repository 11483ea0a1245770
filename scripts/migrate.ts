// Applies migrations/*.sql to DATABASE_URL in file-name order, each once, each in its own transaction.
// `npm run db:migrate`; also imported by `npm run dev` and the test setup.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'migrations');
// Any constant works; it only has to be the same for every migrator so two never interleave.
const MIGRATION_LOCK_ID = 7_205_611;

/**
 * Brings the database at `databaseUrl` up to date. Re-runnable: applied files are recorded in
 * `schema_migrations` and skipped; a file that fails rolls back whole and stops the run.
 * @returns the names of the files applied by this call.
 */
export async function migrate(databaseUrl: string, log: (message: string) => void = () => {}): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      name text PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const applied = new Set(
      (await client.query<{ name: string }>('SELECT name FROM schema_migrations')).rows.map((row) => row.name),
    );
    const files = (await readdir(MIGRATIONS_DIR)).filter((name) => name.endsWith('.sql')).sort();
    const appliedNow: string[] = [];
    for (const name of files) {
      if (applied.has(name)) continue;
      const sql = await readFile(path.join(MIGRATIONS_DIR, name), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [name]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${name} failed: ${(error as Error).message}`, { cause: error });
      }
      appliedNow.push(name);
      log(`applied ${name}`);
    }
    return appliedNow;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
    await client.end();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    console.error('db:migrate: set DATABASE_URL (npm run dev sets it for its own throwaway database)');
    process.exit(2);
  }
  const applied = await migrate(databaseUrl, console.log);
  console.log(applied.length ? `db:migrate: ${applied.length} applied` : 'db:migrate: up to date');
}
