import fs from 'node:fs';
import path from 'node:path';

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Directories listed in $PATH, in order. */
function pathDirs(): string[] {
  return (process.env.PATH ?? '').split(path.delimiter).filter((dir) => dir !== '');
}

/**
 * Expands a pattern with exactly one `*` in a single path segment (e.g. `/usr/lib/postgresql/*\/bin`)
 * into existing directories, highest version number first (so postgresql@17 beats postgresql@9).
 */
function globVersionedDirs(pattern: string): string[] {
  const star = pattern.indexOf('*');
  if (star < 0) return [pattern];
  const parent = path.dirname(pattern.slice(0, star + 1));
  const segment = pattern.slice(parent.length + 1).split('/')[0] ?? '';
  const rest = pattern.slice(parent.length + 1 + segment.length);
  const [prefix = '', suffix = ''] = segment.split('*');
  let entries: string[];
  try {
    entries = fs.readdirSync(parent);
  } catch {
    return [];
  }
  const version = (name: string): number[] => (name.match(/\d+/g) ?? []).map(Number);
  return entries
    .filter((name) => name.startsWith(prefix) && name.endsWith(suffix))
    .sort((a, b) => {
      const va = version(a);
      const vb = version(b);
      for (let i = 0; i < Math.max(va.length, vb.length); i++) {
        const diff = (vb[i] ?? -1) - (va[i] ?? -1);
        if (diff !== 0) return diff;
      }
      return a.localeCompare(b);
    })
    .map((name) => path.join(parent, name) + rest);
}

/**
 * Finds a directory that holds all of `names` as executables: first via $PATH (following symlinks,
 * because e.g. Debian links only some binaries onto PATH while postgres needs its real install dir),
 * then the given fallback patterns (a `*` matches a version, highest first).
 */
export function findBinaryDir(names: readonly string[], fallbackPatterns: readonly string[]): string | undefined {
  const [first] = names;
  if (first === undefined) return undefined;
  const hasAll = (dir: string): boolean => names.every((name) => isExecutable(path.join(dir, name)));
  for (const dir of pathDirs()) {
    const candidate = path.join(dir, first);
    if (!isExecutable(candidate)) continue;
    const realDir = path.dirname(fs.realpathSync(candidate));
    if (hasAll(realDir)) return realDir;
    if (hasAll(dir)) return dir;
  }
  for (const pattern of fallbackPatterns) {
    for (const dir of globVersionedDirs(pattern)) {
      if (hasAll(dir)) return dir;
    }
  }
  return undefined;
}

/** Finds one executable on $PATH or in the fallback directories; returns its full path. */
export function findBinary(name: string, fallbackDirs: readonly string[]): string | undefined {
  const dir = findBinaryDir([name], fallbackDirs);
  return dir === undefined ? undefined : path.join(dir, name);
}
