/** Plain-text tables and number formats shared by the benchmarks, so their output reads the same. */
import type { Summary } from './stats.ts';

/** A column: its header, and which side its cells line up on. */
export interface Column {
  header: string;
  /** @default 'right' for columns whose cells are all numbers, else 'left' */
  align?: 'left' | 'right';
}

export type Cell = string | number;

/** Right-aligned columns with these headers, for columns of formatted figures. */
export function rightAligned(...headers: string[]): Column[] {
  return headers.map((header) => ({ header, align: 'right' }));
}

/** The latency columns, filled by {@link latencyCells}. */
export const LATENCY_COLUMNS: readonly Column[] = rightAligned('p50 ms', 'p95 ms', 'p99 ms', 'max ms');

/** The cells of {@link LATENCY_COLUMNS}. */
export function latencyCells(latencyMs: Summary): string[] {
  return [formatMs(latencyMs.p50), formatMs(latencyMs.p95), formatMs(latencyMs.p99), formatMs(latencyMs.max)];
}

/**
 * Prints `rows` under `columns` as an aligned text table headed by `title`. A column given as a plain
 * string is a header with the default alignment. Numbers are printed with `String()`: format them first
 * (see {@link formatMs}, {@link formatRatio}, {@link formatCount}) when that is not what you want.
 * @param write where lines go. @default console.log
 */
export function printTable(
  title: string,
  columns: readonly (string | Column)[],
  rows: readonly (readonly Cell[])[],
  write: (line: string) => void = console.log,
): void {
  const cols = columns.map((column, i): Required<Column> => {
    const { header, align } = typeof column === 'string' ? { header: column, align: undefined } : column;
    const numeric = rows.length > 0 && rows.every((row) => typeof row[i] === 'number');
    return { header, align: align ?? (numeric ? 'right' : 'left') };
  });
  const text = rows.map((row) => cols.map((_, i) => (row[i] === undefined ? '' : String(row[i]))));
  const widths = cols.map((col, i) => Math.max(col.header.length, ...text.map((cells) => (cells[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => {
        const width = widths[i] ?? 0;
        return cols[i]?.align === 'right' ? cell.padStart(width) : cell.padEnd(width);
      })
      .join(' │ ')
      .trimEnd();

  write('');
  write(title);
  write(line(cols.map((col) => col.header)));
  write(widths.map((width) => '─'.repeat(width)).join('─┼─'));
  for (const cells of text) write(line(cells));
}

/** Milliseconds with precision that suits the size: 26.82, 0.204, 0.0123. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 1) return ms.toFixed(2);
  if (ms >= 0.01) return ms.toFixed(3);
  return ms.toFixed(4);
}

/** A speed-up or other ratio: 134×, 12.4×, 1.07×. */
export function formatRatio(ratio: number): string {
  if (!Number.isFinite(ratio)) return '–';
  if (ratio >= 100) return `${ratio.toFixed(0)}×`;
  if (ratio >= 10) return `${ratio.toFixed(1)}×`;
  return `${ratio.toFixed(2)}×`;
}

/** An integer with thousands separators: 500,000. */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
