// Lines of the full-screen view: styled pieces cut or padded to exactly the width of the
// terminal. Widths are counted in terminal columns (a CJK character takes two, a combining mark
// none), because a line one column too long would move everything after it; the view also turns
// the terminal's line wrapping off (screen.ts), so a width this misjudges costs the end of one
// line, never the layout. Everything that comes from the image (file names, Dockerfile text)
// goes through `safe` first: an escape sequence in a file name is shown escaped, never sent.
import { oneLine } from '../terminal.js';

/** A piece of a line: its text and its SGR attributes (`1` bold, `7` inverse, `32` green ...). */
export interface Seg {
  readonly text: string;
  readonly style?: string;
}

/** Text from the image as one line the terminal shows and cannot act on. */
export function safe(text: string): string {
  return oneLine(text);
}

const ZERO_WIDTH = /^(?:\p{Mn}|\p{Me}|[\u200b-\u200d]|[\ufe00-\ufe0f])$/u;

/** Columns a character takes: 0, 1 or 2 (East Asian wide and fullwidth ranges, emoji). */
function charWidth(c: string): number {
  const cp = c.codePointAt(0)!;
  if (cp < 0x300) return 1;
  if (ZERO_WIDTH.test(c)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf && cp !== 0x303f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

/** Columns a string takes. */
export function width(s: string): number {
  let n = 0;
  for (const c of s) n += charWidth(c);
  return n;
}

/** `s` cut to at most `cols` columns, with `…` where it was cut. */
export function cut(s: string, cols: number): string {
  if (width(s) <= cols) return s;
  if (cols <= 0) return '';
  let out = '';
  let n = 0;
  for (const c of s) {
    const w = charWidth(c);
    if (n + w > cols - 1) break;
    out += c;
    n += w;
  }
  return `${out}…`;
}

/** The pieces as exactly `cols` columns: cut at the edge, padded with spaces in the last piece's style. */
export function fit(segs: readonly Seg[], cols: number): string {
  let out = '';
  let left = cols;
  let style: string | undefined;
  for (const seg of segs) {
    if (left <= 0) break;
    const text = width(seg.text) > left ? cut(seg.text, left) : seg.text;
    style = seg.style;
    out += style ? `\x1b[${style}m${text}\x1b[0m` : text;
    left -= width(text);
  }
  if (left > 0) out += style ? `\x1b[${style}m${' '.repeat(left)}\x1b[0m` : ' '.repeat(left);
  return out;
}

/** Right-aligned in `cols` columns (sizes, indexes). */
export function right(s: string, cols: number): string {
  return ' '.repeat(Math.max(0, cols - width(s))) + s;
}
