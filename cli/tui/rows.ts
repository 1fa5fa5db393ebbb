// The file tree as the rows the view shows: the entries below open directories, in name order,
// with the branch lines dive draws (`├── `, `│   `). A filter keeps the entries whose change (or
// waste) it names, and the directories on the way to them; under a filter, directories are open
// unless the user closed them, so that what the filter found is in sight.
import type { Change, TreeEntry } from '../../src/analyze/imagetree.js';

export type FilterKind = Exclude<Change, 'unchanged'> | 'wasted';

export interface Row {
  readonly entry: TreeEntry;
  /** Branch lines before the name. */
  readonly prefix: string;
  /** Directories: whether its entries are shown below it. */
  readonly open: boolean;
}

/** Which directories the user opened or closed (by path); the rest follow the default. */
export type OpenState = ReadonlyMap<string, boolean>;

export class TreeRows {
  private readonly memo = new WeakMap<TreeEntry, boolean>();

  constructor(
    private readonly filters: ReadonlySet<FilterKind>,
    private readonly open: OpenState,
  ) {}

  /** Whether a directory shows its entries: the user's choice, else open under a filter. */
  isOpen(e: TreeEntry): boolean {
    return e.kind === 'dir' && (this.open.get(e.path) ?? this.filters.size > 0);
  }

  /** The rows below `root` (itself not shown). */
  rows(root: TreeEntry): Row[] {
    const out: Row[] = [];
    this.walk(root, '', out);
    return out;
  }

  private walk(dir: TreeEntry, indent: string, out: Row[]): void {
    const shown = dir.children.filter((c) => this.keeps(c));
    shown.forEach((e, i) => {
      const last = i === shown.length - 1;
      const open = this.isOpen(e);
      out.push({ entry: e, prefix: `${indent}${last ? '└── ' : '├── '}`, open });
      if (open) this.walk(e, `${indent}${last ? '    ' : '│   '}`, out);
    });
  }

  /** Whether the filter keeps an entry: it matches, or something below it does. */
  private keeps(e: TreeEntry): boolean {
    if (this.filters.size === 0) return true;
    const known = this.memo.get(e);
    if (known !== undefined) return known;
    const keep = this.matches(e) || e.children.some((c) => this.keeps(c));
    this.memo.set(e, keep);
    return keep;
  }

  private matches(e: TreeEntry): boolean {
    if (e.change !== 'unchanged' && this.filters.has(e.change)) return true;
    // A directory's wasted bytes are those of the files below it, which match themselves.
    return this.filters.has('wasted') && e.kind !== 'dir' && e.wastedBytes > 0;
  }
}
