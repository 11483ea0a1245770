/** Command-line flags and the optional `--json <file>` report every benchmark supports. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The value of `--name value` or `--name=value` in `argv`, or undefined when the flag is absent.
 * Throws when the flag is present without a value.
 * @param argv @default process.argv.slice(2)
 */
export function flagValue(name: string, argv: readonly string[] = process.argv.slice(2)): string | undefined {
  const flag = `--${name}`;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1);
    if (arg === flag) {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new Error(`${flag} needs a value`);
      return value;
    }
  }
  return undefined;
}

/**
 * A positive integer flag (`--runs 50`), or `fallback` when absent.
 * @param opts.min smallest value allowed. @default 1
 * @param argv @default process.argv.slice(2)
 */
export function intFlag(name: string, fallback: number, opts: { min?: number } = {}, argv: readonly string[] = process.argv.slice(2)): number {
  const raw = flagValue(name, argv);
  if (raw === undefined) return fallback;
  const value = Number(raw.replace(/_/g, ''));
  const min = opts.min ?? 1;
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer ≥ ${min}, got "${raw}"`);
  return value;
}

/**
 * Writes `report` as indented JSON to the `--json <file>` path when that flag was given; does nothing
 * otherwise. Creates missing directories.
 * @returns the absolute path written, or undefined.
 * @param argv @default process.argv.slice(2)
 */
export async function writeJsonReport(
  report: unknown,
  argv: readonly string[] = process.argv.slice(2),
): Promise<string | undefined> {
  const file = flagValue('json', argv);
  if (file === undefined) return undefined;
  const absolute = path.resolve(file);
  await mkdir(path.dirname(absolute), { recursive: true });
  await writeFile(absolute, `${JSON.stringify(report, null, 2)}\n`);
  return absolute;
}

/**
 * A comma-separated list of integers (`--clients 50,200`), or `fallback` when absent.
 * @param opts.min smallest value allowed. @default 1
 * @param argv @default process.argv.slice(2)
 */
export function intListFlag(name: string, fallback: readonly number[], opts: { min?: number } = {}, argv: readonly string[] = process.argv.slice(2)): number[] {
  const raw = flagValue(name, argv);
  if (raw === undefined) return [...fallback];
  const min = opts.min ?? 1;
  return raw.split(',').map((part) => {
    const value = Number(part.replace(/_/g, ''));
    if (part.trim() === '' || !Number.isInteger(value) || value < min) {
      throw new Error(`--${name} must be integers ≥ ${min} separated by commas, got "${raw}"`);
    }
    return value;
  });
}
