// The room's key-value table (values are JSON) and its counters, both read on every request. Values
// are cached per SqlStorage after their first read, so a request parses nothing; writes go to SQLite
// and the cache together. A transaction that throws leaves the cache ahead of SQLite: whoever runs
// it calls `forgetCachedMeta` (the room's `change()` does) so the next read comes from SQLite.

const metaCache = new WeakMap<SqlStorage, Map<string, unknown>>();

function cacheOf(sql: SqlStorage): Map<string, unknown> {
  let cache = metaCache.get(sql);
  if (!cache) {
    cache = new Map();
    metaCache.set(sql, cache);
  }
  return cache;
}

/** Typed read of one meta value; callers must not mutate what they get (copy it first). */
export function readMeta<T>(sql: SqlStorage, key: string): T | undefined {
  const cache = cacheOf(sql);
  if (cache.has(key)) return cache.get(key) as T | undefined;
  const row = sql.exec<{ value: string }>(`SELECT value FROM room_meta WHERE key = ?`, key).toArray()[0];
  const value = row ? (JSON.parse(row.value) as T) : undefined;
  cache.set(key, value);
  return value;
}

export function writeMeta(sql: SqlStorage, key: string, value: unknown): void {
  sql.exec(
    `INSERT INTO room_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    key,
    JSON.stringify(value),
  );
  cacheOf(sql).set(key, value);
}

/** Drops every cached meta value of `sql` (after a rolled-back transaction, or in tests). */
export function forgetCachedMeta(sql: SqlStorage): void {
  metaCache.delete(sql);
}

export type CounterName =
  | 'line:waiting'
  | 'line:admitted'
  | 'line:completed'
  | 'line:expired'
  | 'seat:available'
  | 'seat:held'
  | 'seat:sold'
  | 'waitlist:waiting'
  | 'waitlist:offered'
  | 'waitlist:accepted'
  | 'waitlist:expired'
  | 'waitlist:left';

/** Current value of the trigger-kept counters (schema step 2): one primary-key read each. */
export function counter(sql: SqlStorage, name: CounterName): number {
  return sql.exec<{ n: number }>(`SELECT n FROM room_counts WHERE name = ?`, name).toArray()[0]?.n ?? 0;
}

/** Every counter at once (12 rows). */
export function counters(sql: SqlStorage): Record<CounterName, number> {
  const all = Object.fromEntries(sql.exec<{ name: CounterName; n: number }>(`SELECT name, n FROM room_counts`).toArray().map((r) => [r.name, r.n]));
  return {
    'line:waiting': all['line:waiting'] ?? 0,
    'line:admitted': all['line:admitted'] ?? 0,
    'line:completed': all['line:completed'] ?? 0,
    'line:expired': all['line:expired'] ?? 0,
    'seat:available': all['seat:available'] ?? 0,
    'seat:held': all['seat:held'] ?? 0,
    'seat:sold': all['seat:sold'] ?? 0,
    'waitlist:waiting': all['waitlist:waiting'] ?? 0,
    'waitlist:offered': all['waitlist:offered'] ?? 0,
    'waitlist:accepted': all['waitlist:accepted'] ?? 0,
    'waitlist:expired': all['waitlist:expired'] ?? 0,
    'waitlist:left': all['waitlist:left'] ?? 0,
  };
}
