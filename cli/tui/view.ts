// The state of `tsbuild analyze -i` and what it looks like: which pane has the keys, the
// selected layer, the file cursor, open directories and filters; `key` changes the state,
// `render` draws it for a terminal of any size. Wide terminals (100 columns or more) show the
// layers and the files side by side, as dive does; narrower ones stack them, so that the file
// tree keeps the whole width. No I/O here: screen.ts owns the terminal.
import type { TreeEntry } from '../../src/analyze/imagetree.js';
import { humanSize } from '../format.js';
import { TreeRows, type FilterKind, type Row } from './rows.js';
import type { Key } from './screen.js';
import { cut, fit, right, safe, type Seg } from './text.js';

export interface LayerInfo {
  readonly size: number;
  readonly wastedBytes: number;
  /** The instruction that made the layer, as the layer list shows it. */
  readonly origin: string;
}

export interface ViewModel {
  /** The image: name and ID. */
  readonly title: string;
  readonly size: number;
  readonly wastedBytes: number;
  readonly layers: readonly LayerInfo[];
  /** The filesystem as of a layer. */
  tree(layer: number): TreeEntry;
}

export type KeyResult = 'quit' | 'interrupt' | undefined;

/** Terminals smaller than this get a message instead of the view. */
const MIN_COLS = 40;
const MIN_ROWS = 10;
const SIDE_BY_SIDE = 100;
const SIZE_COLS = 7;

const FILTER_KEYS: Readonly<Record<string, FilterKind>> = { a: 'added', m: 'modified', r: 'removed', w: 'wasted' };
const CHANGE_MARK = { added: ['A', '32'], modified: ['M', '33'], removed: ['R', '31'], unchanged: [' ', ''] } as const;

/** Where a pane goes: its title's row of the body, its width, the rows of its list. */
interface Pane {
  /** The title is on this row of the body, the column header below it, then the list. */
  readonly row: number;
  readonly cols: number;
  readonly height: number;
}

export class View {
  private focus: 'layers' | 'files' = 'layers';
  private layer = 0;
  private layerTop = 0;
  private readonly filters = new Set<FilterKind>();
  private readonly open = new Map<string, boolean>();
  private fileCursor = 0;
  private fileTop = 0;
  /** The path under the file cursor, kept when the rows change (another layer, a filter). */
  private cursorPath: string | undefined;
  private rowsCache: { key: unknown[]; rows: Row[] } | undefined;
  /** List heights of the last frame, for PageUp/PageDown. */
  private heights = { layers: 1, files: 1 };

  constructor(private readonly model: ViewModel) {}

  key(k: Key): KeyResult {
    if (k.ctrl && k.name === 'c') return 'interrupt';
    // Letters by what they type (`G` is not `g`), the other keys by readline's names.
    const typed = k.sequence !== undefined && /^[!-~]$/.test(k.sequence) ? k.sequence : k.name;
    const name = k.ctrl || k.meta ? undefined : typed;
    const filter = name !== undefined ? FILTER_KEYS[name] : undefined;
    if (filter) {
      if (!this.filters.delete(filter)) this.filters.add(filter);
      return undefined;
    }
    switch (name) {
      case 'q':
        return 'quit';
      case 'tab':
        this.focus = this.focus === 'layers' ? 'files' : 'layers';
        return undefined;
      case 'up':
      case 'k':
        return this.move(-1);
      case 'down':
      case 'j':
        return this.move(1);
      case 'pageup':
        return this.move(-this.heights[this.focus]);
      case 'pagedown':
        return this.move(this.heights[this.focus]);
      case 'home':
      case 'g':
        return this.move(-Infinity);
      case 'end':
      case 'G':
        return this.move(Infinity);
    }
    if (this.focus === 'layers') {
      if (name === 'return' || name === 'enter' || name === 'right' || name === 'l') this.focus = 'files';
      return undefined;
    }
    const row = this.rows()[this.fileCursor];
    if (!row) return undefined;
    const dir = row.entry.kind === 'dir';
    if ((name === 'return' || name === 'enter' || name === 'space') && dir) this.open.set(row.entry.path, !row.open);
    else if ((name === 'right' || name === 'l') && dir) this.open.set(row.entry.path, true);
    else if (name === 'left' || name === 'h') {
      if (dir && row.open) this.open.set(row.entry.path, false);
      else this.toParent(row.entry.path);
    }
    return undefined;
  }

  /** The frame for a terminal of `cols` × `lines`: one string per row, each exactly `cols` wide. */
  render(cols: number, lines: number): string[] {
    if (cols < MIN_COLS || lines < MIN_ROWS) {
      const msg = fit([{ text: `Too small (${cols}×${lines}; needs ${MIN_COLS}×${MIN_ROWS}): q quits` }], cols);
      return [msg, ...Array<string>(Math.max(0, lines - 1)).fill(' '.repeat(cols))];
    }
    const m = this.model;
    const frame: string[] = [];
    frame.push(
      fit(
        [
          { text: ` ${safe(m.title)} `, style: '1' },
          { text: ` size ${humanSize(m.size)}  wasted ${humanSize(m.wastedBytes)}  layers ${m.layers.length}` },
        ],
        cols,
      ),
    );
    const body = lines - 2;
    let layers: Pane;
    let files: Pane;
    if (cols >= SIDE_BY_SIDE) {
      const w = Math.min(60, Math.floor(cols * 0.4));
      layers = { row: 0, cols: w, height: body - 2 };
      files = { row: 0, cols: cols - w - 1, height: body - 2 };
    } else {
      const h = Math.min(m.layers.length, Math.max(3, Math.floor(body / 3) - 2));
      layers = { row: 0, cols, height: h };
      files = { row: h + 2, cols, height: body - h - 4 };
    }
    this.heights = { layers: Math.max(1, layers.height), files: Math.max(1, files.height) };
    const canvas = Array.from({ length: body }, () => [] as string[]);
    this.drawLayers(layers, canvas);
    this.drawFiles(files, canvas);
    for (const parts of canvas) frame.push(parts.join(cols >= SIDE_BY_SIDE ? '\x1b[2m│\x1b[0m' : ''));
    frame.push(fit(this.footer(), cols));
    return frame;
  }

  private drawLayers(p: Pane, canvas: string[][]): void {
    const m = this.model;
    const focused = this.focus === 'layers';
    const idxCols = String(m.layers.length - 1).length;
    canvas[p.row]!.push(fit(title(' Layers ', focused), p.cols));
    const head = `  ${right('#', idxCols)}  ${right('SIZE', SIZE_COLS)}  ${right('WASTED', SIZE_COLS)}  INSTRUCTION`;
    canvas[p.row + 1]!.push(fit([{ text: head, style: '2' }], p.cols));
    this.layerTop = scroll(this.layer, this.layerTop, p.height, m.layers.length);
    for (let i = 0; i < p.height; i++) {
      const n = this.layerTop + i;
      const l = m.layers[n];
      const line: Seg[] = l
        ? [
            { text: `${n === this.layer ? '>' : ' '} ${right(String(n), idxCols)}  ${right(humanSize(l.size), SIZE_COLS)}  ` },
            { text: right(humanSize(l.wastedBytes), SIZE_COLS), ...(l.wastedBytes > 0 ? { style: '35' } : {}) },
            { text: '  ' },
            { text: safe(l.origin) },
          ]
        : [];
      canvas[p.row + 2 + i]!.push(fit(n === this.layer ? selected(line, focused) : line, p.cols));
    }
  }

  private drawFiles(p: Pane, canvas: string[][]): void {
    const focused = this.focus === 'files';
    const rows = this.rows();
    const filter = this.filters.size > 0 ? [...this.filters].join('+') : 'none';
    const layerText = this.model.layers[this.layer]?.origin ?? '';
    canvas[p.row]!.push(fit(title(` Layer ${this.layer}: ${cut(safe(layerText), p.cols - 36)}  filter: ${filter} `, focused), p.cols));
    canvas[p.row + 1]!.push(fit([{ text: `      SIZE  NAME${rows.length === 0 ? '  (no entries)' : ''}`, style: '2' }], p.cols));
    this.fileTop = scroll(this.fileCursor, this.fileTop, p.height, rows.length);
    for (let i = 0; i < p.height; i++) {
      const n = this.fileTop + i;
      const row = rows[n];
      const line = row ? fileLine(row) : [];
      canvas[p.row + 2 + i]!.push(fit(n === this.fileCursor && row ? selected(line, focused) : line, p.cols));
    }
  }

  private footer(): Seg[] {
    const keys: [string, string][] = [
      ['q', 'quit'],
      ['Tab', 'pane'],
      ['↑↓', 'move'],
      ['←→', 'fold'],
      ['a', 'added'],
      ['m', 'modified'],
      ['r', 'removed'],
      ['w', 'wasted'],
      ['PgUp/PgDn', 'page'],
    ];
    // A filter that is on shows its key inverted.
    return keys.flatMap(([k, what]) => {
      const on = FILTER_KEYS[k] !== undefined && this.filters.has(FILTER_KEYS[k]!);
      return [{ text: ` ${k}`, style: on ? '7;1' : '1' }, { text: ` ${what} ` }];
    });
  }

  /** The rows of the selected layer's tree, the file cursor moved to where its path went. */
  private rows(): Row[] {
    const tree = this.model.tree(this.layer);
    const key = [tree, [...this.filters].sort().join(), [...this.open].join()];
    if (!this.rowsCache || this.rowsCache.key.some((k, i) => k !== key[i])) {
      const rows = new TreeRows(this.filters, this.open).rows(tree);
      this.rowsCache = { key, rows };
      this.fileCursor = this.cursorPath !== undefined ? nearest(rows, this.cursorPath, this.fileCursor) : 0;
    }
    const rows = this.rowsCache.rows;
    this.fileCursor = Math.max(0, Math.min(this.fileCursor, rows.length - 1));
    this.cursorPath = rows[this.fileCursor]?.entry.path;
    return rows;
  }

  private move(by: number): undefined {
    if (this.focus === 'layers') {
      this.layer = clamp(this.layer + by, this.model.layers.length);
    } else {
      this.fileCursor = clamp(this.fileCursor + by, this.rows().length);
      this.cursorPath = this.rows()[this.fileCursor]?.entry.path;
    }
    return undefined;
  }

  private toParent(path: string): void {
    const parent = path.slice(0, path.lastIndexOf('/'));
    const i = this.rows().findIndex((r) => r.entry.path === parent);
    if (i >= 0) this.move(i - this.fileCursor);
  }
}

function clamp(n: number, count: number): number {
  return Math.max(0, Math.min(count - 1, n));
}

/** The first row shown, so that the cursor is in sight. */
function scroll(cursor: number, top: number, height: number, count: number): number {
  let t = Math.min(top, cursor);
  if (cursor >= t + height) t = cursor - height + 1;
  return Math.max(0, Math.min(t, count - height));
}

/** Where `path` is among `rows`, else its nearest ancestor that is, else the old position. */
function nearest(rows: readonly Row[], path: string, fallback: number): number {
  for (let p = path; p.length > 0; p = p.slice(0, p.lastIndexOf('/'))) {
    const i = rows.findIndex((r) => r.entry.path === p);
    if (i >= 0) return i;
  }
  return fallback;
}

function title(text: string, focused: boolean): Seg[] {
  return [{ text, style: focused ? '7;1' : '1' }];
}

/** The cursor's row: inverse in the pane that has the keys, underlined in the other. */
function selected(line: readonly Seg[], focused: boolean): Seg[] {
  return line.map((s) => ({ text: s.text, style: `${focused ? '7' : '4'}${s.style ? `;${s.style}` : ''}` }));
}

function fileLine(row: Row): Seg[] {
  const e = row.entry;
  const [mark, color] = CHANGE_MARK[e.change];
  const name = safe(e.name) + (e.kind === 'dir' ? '/' : '');
  return [
    { text: ' ' },
    { text: mark, ...(color ? { style: color } : {}) },
    { text: e.wastedBytes > 0 ? 'W' : ' ', style: '35' },
    { text: ` ${right(humanSize(e.bytes), SIZE_COLS)}  ` },
    { text: row.prefix, style: '2' },
    { text: e.kind === 'dir' ? (row.open ? '▾ ' : '▸ ') : '' },
    { text: name, ...(e.change !== 'unchanged' ? { style: color } : e.kind === 'dir' ? { style: '34' } : {}) },
    ...(e.linkTarget !== undefined ? [{ text: ' → ', style: '2' }, { text: safe(e.linkTarget) }] : []),
  ];
}
