// Terminal formatting the way the docker CLI does it, so output reads the same.

export { humanSize } from '../src/units.js';

/** docker's units.HumanDuration, for "CREATED ... ago" columns. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(minutes / 60);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(hours / 24 / 365)} years`;
}

export function ago(iso: string | undefined): string {
  if (!iso) return 'N/A';
  return `${humanDuration(Date.now() - Date.parse(iso))} ago`;
}

/** Columns padded like docker's tabwriter (3 spaces between columns). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return tabwrite([header, ...rows], 0);
}

/**
 * Aligns rows of cells as docker's tabwriter (cli/command/formatter: minimum width 10, padding
 * 3): each column as wide as its widest cell plus 3, at least minWidth; a line's last cell is
 * not padded.
 */
export function tabwrite(rows: readonly (readonly string[])[], minWidth = 10): string {
  const widths: number[] = [];
  for (const row of rows) row.slice(0, -1).forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, minWidth, c.length + 3)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('')
      .trimEnd();
  return rows.map((r) => `${line(r)}\n`).join('');
}

/** Shortens to n characters with an ellipsis, as docker history does. */
export function ellipsis(s: string, n: number): string {
  return [...s].length <= n ? s : `${[...s].slice(0, n - 1).join('')}…`;
}
