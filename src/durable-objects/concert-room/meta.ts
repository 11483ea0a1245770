/** Typed access to the room's key-value table; values are JSON. */
export function readMeta<T>(sql: SqlStorage, key: string): T | undefined {
  const row = sql.exec<{ value: string }>(`SELECT value FROM room_meta WHERE key = ?`, key).toArray()[0];
  return row ? (JSON.parse(row.value) as T) : undefined;
}

export function writeMeta(sql: SqlStorage, key: string, value: unknown): void {
  sql.exec(
    `INSERT INTO room_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
    key,
    JSON.stringify(value),
  );
}
