// What `tsbuild images` lists, chosen as the docker daemon chooses (daemon/images/images.go) and
// split into rows as the docker CLI splits them (cli/command/formatter/image.go): the filters
// (dangling, reference, before, since, label), intermediate images hidden without -a, one row
// per tag (and per repo digest with --digests), digest-only references as `REPO <none>`.
import { parseReference, familiarName, familiarString, type Reference } from '../src/image/reference.js';
import type { Digest } from '../src/digest.js';
import { formatPlatform, hostPlatform, platformMatches, type Platform } from '../src/image/platform.js';
import type { Store, StoredImage, TaggedRef } from '../src/store/store.js';
import { usageError } from './common.js';

export interface ImageRow {
  /** The row's image: for a multi-platform image, the platform's shown (this machine's, --platform's, or the first). */
  readonly image: StoredImage;
  /** A multi-platform image's row: its index ID, platforms, and the bytes of all its platforms' layers, each once. */
  readonly index?: { readonly id: Digest; readonly platforms: readonly string[]; readonly size: number };
  readonly repository: string;
  readonly tag: string;
  /** The repo digest, `<none>`, or empty for a digest-only row without --digests (as docker). */
  readonly digest: string;
}

export interface ImageFilters {
  dangling?: boolean;
  readonly references: string[];
  before?: string;
  since?: string;
  readonly labels: string[];
}

/** Parses docker's `--filter KEY=VALUE` list. */
export function parseFilters(values: readonly string[]): ImageFilters {
  const f: ImageFilters = { references: [], labels: [] };
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw usageError(`invalid filter "${v}": bad format of filter (expected name=value)`);
    const key = v.slice(0, eq).toLowerCase();
    const value = v.slice(eq + 1);
    if (key === 'dangling') {
      const b = value.toLowerCase();
      if (!['true', '1', 'false', '0'].includes(b)) throw usageError(`invalid filter 'dangling=${value}': want true or false`);
      f.dangling = b === 'true' || b === '1';
    } else if (key === 'reference') f.references.push(value);
    else if (key === 'before') f.before = value;
    else if (key === 'since') f.since = value;
    else if (key === 'label') f.labels.push(value);
    else throw usageError(`invalid filter '${key}': images take dangling, reference, before, since and label`);
  }
  return f;
}

/**
 * The rows `tsbuild images` shows, newest image first. A multi-platform image is one row per
 * tag, as docker's containerd image store lists it; `platform` keeps the rows that have an
 * image for it (and shows that image's).
 */
export async function imageRows(
  store: Store,
  filters: ImageFilters,
  opts: { all: boolean; digests: boolean; platform?: Platform },
): Promise<ImageRow[]> {
  const images = await store.images();
  const byId = new Map(images.map((i) => [i.id, i]));
  // Each tagged index's row goes where the image it shows comes in the newest-first order.
  const indexRows = new Map<Digest, { index: ImageRow['index'] & object; refs: TaggedRef[] }[]>();
  const allTags = await store.allTags();
  for (const ix of await store.indexes()) {
    const refs = allTags.filter((t) => t.imageId === ix.id);
    if (refs.length === 0) continue;
    const want = opts.platform ?? hostPlatform();
    const entry = ix.entries.find((e) => platformMatches(want, e.platform)) ?? (opts.platform ? undefined : ix.entries[0]);
    if (!entry || !byId.has(entry.imageId)) continue;
    const layers = new Map<string, number>();
    for (const e of ix.entries) for (const l of byId.get(e.imageId)?.layers ?? []) layers.set(l.record.chainId, l.record.size);
    const platforms = ix.entries.map((e) => formatPlatform(e.platform));
    // With --platform, the row is that platform's image: its ID and size.
    const index = opts.platform
      ? { id: entry.imageId, platforms, size: byId.get(entry.imageId)!.size }
      : { id: ix.id, platforms, size: [...layers.values()].reduce((a, b) => a + b, 0) };
    indexRows.set(entry.imageId, [...(indexRows.get(entry.imageId) ?? []), { index, refs }]);
  }
  const parents = new Set((await Promise.all(images.map((img) => store.parentOf(img.id)))).filter((p) => p !== undefined));
  const before = filters.before !== undefined ? await createdOf(store, filters.before) : undefined;
  const since = filters.since !== undefined ? await createdOf(store, filters.since) : undefined;
  const matchers = filters.references.map(referenceMatcher);
  const rows: ImageRow[] = [];
  for (const img of images) {
    const created = Date.parse(img.config.created ?? '');
    if (before !== undefined && !(created < before)) continue;
    if (since !== undefined && !(created > since)) continue;
    if (!labelsMatch(filters.labels, img.config.config?.Labels ?? {})) continue;
    for (const { index, refs: indexRefs } of indexRows.get(img.id) ?? []) {
      const refs = indexRefs
        .map((t) => parseReference(t.ref))
        .filter((r) => matchers.length === 0 || matchers.some((m) => m(r)))
        .sort((a, b) => compare(familiarString(a), familiarString(b)));
      if (filters.dangling === true || refs.length === 0) continue;
      rows.push(...rowsOf(img, refs, opts.digests).map((r) => ({ ...r, index })));
    }
    if (opts.platform && !platformMatches(opts.platform, img.config)) continue;
    // One platform of a multi-platform image: listed as its index's row (above), not on its own.
    const own = img.tags.filter((t) => t.imageId === img.id);
    if (own.length === 0 && img.tags.length > 0) continue;
    const refs = own
      .map((t) => parseReference(t.ref))
      .filter((r) => matchers.length === 0 || matchers.some((m) => m(r)))
      .sort((a, b) => compare(familiarString(a), familiarString(b)));
    if (refs.length === 0) {
      // Untagged: shown when nothing uses it as a parent (else it is an intermediate image,
      // shown by -a), never with dangling=true; dangling=true looks only at images without children.
      if (filters.dangling === false || matchers.length > 0) continue;
      if (parents.has(img.id) && (!opts.all || filters.dangling === true)) continue;
      rows.push({ image: img, repository: '<none>', tag: '<none>', digest: '<none>' });
      continue;
    }
    if (filters.dangling === true && refs.some((r) => r.tag !== undefined)) continue;
    rows.push(...rowsOf(img, refs, opts.digests));
  }
  return rows;
}

/** docker's imageFormatTaggedAndDigest: a row per tag (times each repo digest with --digests), then digest-only repositories. */
function rowsOf(image: StoredImage, refs: readonly Reference[], digests: boolean): ImageRow[] {
  const tags = new Map<string, string[]>();
  const repoDigests = new Map<string, string[]>();
  for (const r of refs) {
    if (r.tag !== undefined) push(tags, familiarName(r), r.tag);
    if (r.digest !== undefined) push(repoDigests, familiarName(r), r.digest);
  }
  const rows: ImageRow[] = [];
  for (const [repository, names] of tags) {
    const ds = digests ? (repoDigests.get(repository) ?? []) : [];
    repoDigests.delete(repository);
    for (const tag of names) {
      if (ds.length === 0) rows.push({ image, repository, tag, digest: '<none>' });
      for (const digest of ds) rows.push({ image, repository, tag, digest });
    }
  }
  for (const [repository, ds] of repoDigests) {
    if (digests) for (const digest of ds) rows.push({ image, repository, tag: '<none>', digest });
    else rows.push({ image, repository, tag: '<none>', digest: '' });
  }
  return rows;
}

function push(m: Map<string, string[]>, key: string, value: string): void {
  m.set(key, [...(m.get(key) ?? []), value]);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function createdOf(store: Store, name: string): Promise<number> {
  const img = await store.image(await store.resolveImage(name));
  return Date.parse(img.config.created ?? '');
}

/** docker's filters.MatchKVList: every `KEY` must be a label, every `KEY=VALUE` one with that value. */
function labelsMatch(wanted: readonly string[], labels: Readonly<Record<string, string>>): boolean {
  return wanted.every((w) => {
    const eq = w.indexOf('=');
    const key = eq < 0 ? w : w.slice(0, eq);
    return Object.hasOwn(labels, key) && (eq < 0 || labels[key] === w.slice(eq + 1));
  });
}

/**
 * docker's reference.FamiliarMatch: Go's path.Match of the pattern against `name:tag` (or
 * `name@digest`), else against the name alone; `*` stops at `/`, as in path.Match.
 */
export function referenceMatcher(pattern: string): (r: Reference) => boolean {
  const re = pathMatchRegExp(pattern);
  return (r) => re.test(familiarString(r)) || re.test(familiarName(r));
}

function pathMatchRegExp(pattern: string): RegExp {
  let re = '';
  const bad = (): never => {
    throw usageError(`invalid reference pattern "${pattern}": syntax error in pattern`);
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      if (++i >= pattern.length) bad();
      re += escapeRe(pattern[i]!);
    } else if (c === '[') {
      let cls = '';
      i++;
      if (pattern[i] === '^') {
        cls += '^';
        i++;
      }
      const start = i;
      while (i < pattern.length && (pattern[i] !== ']' || i === start)) {
        let ch = pattern[i]!;
        if (ch === '\\') ch = pattern[++i] ?? bad();
        cls += ch === '-' && i !== start && pattern[i + 1] !== ']' ? '-' : escapeRe(ch);
        i++;
      }
      if (i >= pattern.length || cls === '' || cls === '^') bad();
      re += `[${cls}]`;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, 's');
}

function escapeRe(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c;
}
