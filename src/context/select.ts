// COPY/ADD --exclude and COPY --parents: which entries of a source are copied. BuildKit hands
// both to fsutil's copier as pattern lists (dockerfile2llb's dispatchCopy; fsutil copy.go, with
// moby/patternmatcher, the .dockerignore matcher):
//  - --exclude=PATTERN (repeatable) is matched against each entry's path relative to the source
//    being copied (after wildcards: each match is a source of its own), so `--exclude=*.txt dir`
//    leaves out dir/a.txt but not dir/sub/b.txt, and a source named or matched directly is never
//    excluded. An excluded directory is left out whole, unless a `!` pattern re-includes
//    something inside it: then it is copied holding just that.
//  - --parents copies, instead of a source, the directory above it with only that path
//    included: `COPY --parents a/b/c.txt /d/` writes /d/a/b/c.txt. A `/./` in the source is the
//    pivot: what is before it is the directory copied (wildcards allowed), what is after it the
//    path kept (`a/./b/c.txt` writes /d/b/c.txt). Without a pivot the directory is the root.
//    A path is included when it or a parent matches; a directory on the way to a match is
//    copied (with its own metadata) only if something below it is. A path without wildcards
//    must exist (`"/a/b/c.txt": not found`, BuildKit's RequiredPaths); with wildcards, nothing
//    matching is fine.
// Both are views over the source (TreeSource), used alike by the cache key's walk
// (builder/checksum.ts) and by the copy, so an excluded file neither busts the cache nor lands.
import { posix } from 'node:path';
import type { NamedEntry, TreeEntry, TreeSource } from '../fs/copytree.js';
import type { BuildContext, ContextSource } from './context.js';
import { parseIgnoreRules, type IgnoreRules } from './ignore.js';
import { compileMatch, hasWildcards } from './pattern.js';

export interface SelectOptions {
  /** --exclude patterns, as written. */
  readonly exclude?: readonly string[];
  /** COPY --parents. */
  readonly parents?: boolean;
}

/**
 * Only the options a COPY/ADD uses, from its instruction or its work: the same selection is the
 * same object shape (what the checksum is given, and what checksums-ahead.ts keys on).
 */
export function selectionOf(x: SelectOptions): SelectOptions {
  return { ...(x.exclude ? { exclude: x.exclude } : {}), ...(x.parents ? { parents: true } : {}) };
}

/** A source to copy, and the view of its tree to walk (the context itself when nothing is filtered). */
export interface SelectedSource {
  readonly source: ContextSource;
  readonly tree: TreeSource;
  /** True when the view leaves entries out (a walk of it does not see every file below). */
  readonly filtered: boolean;
}

/** Resolve one COPY/ADD source as written, with --exclude and --parents applied. */
export async function resolveSelected(context: BuildContext, source: string, opts: SelectOptions): Promise<SelectedSource[]> {
  const exclude = opts.exclude?.length ? parseIgnoreRules(opts.exclude.join('\n'), undefined) : undefined;
  if (!opts.parents) {
    const matches = await context.resolveSource(source);
    if (!exclude) return matches.map((m) => ({ source: m, tree: context, filtered: false }));
    return matches.map((m) => ({ source: m, tree: new SelectedTree(context, m, exclude, undefined), filtered: true }));
  }
  const pivot = source.indexOf('/./');
  const dir = pivot < 0 ? '/' : source.slice(0, pivot);
  const kept = posix.normalize(`/${pivot < 0 ? source : source.slice(pivot + 3)}`).replace(/^\/+|\/+$/g, '');
  if (!hasWildcards(dir) && !hasWildcards(kept)) {
    // Throws BuildKit's `"/dir/kept": not found` when it does not exist.
    await context.resolveSource(posix.join(dir, kept));
  }
  const include = kept === '' ? undefined : new IncludePattern(kept);
  return (await context.resolveSource(dir)).map((root) => ({
    // A directory's contents go to the destination; a file (a wildcard matched one) keeps its name.
    source: root.stats.isDirectory() ? { ...root, name: '' } : root,
    tree: include || exclude ? new SelectedTree(context, root, exclude, include) : context,
    filtered: include !== undefined || exclude !== undefined,
  }));
}

/** --parents' one include pattern: matches a path or any of its parents. */
class IncludePattern {
  private readonly rules: IgnoreRules;
  private readonly components: readonly string[];

  constructor(pattern: string) {
    this.rules = parseIgnoreRules(pattern, undefined);
    this.components = pattern.split('/');
  }

  /** The path or one of its parents matches. */
  includes(rel: string): boolean {
    return this.rules.excludes(rel);
  }

  /** Could something below this directory match? Component by component, `**` matching anything. */
  mayHoldMatches(rel: string): boolean {
    const parts = rel.split('/');
    for (let i = 0; i < parts.length; i++) {
      const p = this.components[i];
      if (p === undefined) return false;
      if (p.includes('**')) return true;
      if (!(compileMatch(p)?.(parts[i]!) ?? false)) return false;
    }
    return parts.length < this.components.length;
  }
}

/** A source's tree seen through --exclude and --parents' include pattern, paths relative to `top`. */
class SelectedTree implements TreeSource {
  /** Directories not selected themselves: whether they hold something that is. */
  private readonly holds = new Map<string, Promise<boolean>>();

  constructor(
    private readonly inner: TreeSource,
    private readonly top: TreeEntry,
    private readonly exclude: IgnoreRules | undefined,
    private readonly include: IncludePattern | undefined,
  ) {}

  async readDir(dir: TreeEntry): Promise<NamedEntry[]> {
    const out: NamedEntry[] = [];
    for (const child of await this.inner.readDir(dir)) {
      if (await this.isVisible(child)) out.push(child);
    }
    return out;
  }

  private async isVisible(e: NamedEntry): Promise<boolean> {
    const rel = this.top.path === '' ? e.path : e.path.slice(this.top.path.length + 1);
    const included = this.include ? this.include.includes(rel) : true;
    const excluded = this.exclude ? this.exclude.excludes(rel) : false;
    if (included && !excluded) return true;
    if (!e.stats.isDirectory()) return false;
    // Worth looking inside only if a match could be there.
    const lookInside = excluded
      ? this.exclude!.hasExceptions && (included || this.include!.mayHoldMatches(rel))
      : this.include!.mayHoldMatches(rel);
    if (!lookInside) return false;
    let holds = this.holds.get(e.path);
    if (!holds) {
      holds = this.readDir(e).then((children) => children.length > 0);
      this.holds.set(e.path, holds);
    }
    return holds;
  }
}
