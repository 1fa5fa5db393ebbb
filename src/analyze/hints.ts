// Hints: what made bytes wasted or needless, naming the Dockerfile lines involved, and the fix.
// Every hint is derived from the replay's copies, so its bytes are exactly the bytes it is about
// (the renderer prints them; messages carry no sizes):
// hidden copies for deleted/rewritten/chown'd/re-stored files, visible copies for caches and
// duplicated content (these two are not "wasted" in the efficiency sense, but removable).
import { cacheFix, cacheOf, type CacheKind } from './caches.js';
import { describeOrigin, type LayerOrigin } from './origin.js';
import type { Copy, HiddenHow, LayerReplay } from './replay.js';
import type { Hint, HintKind } from './types.js';

const SAMPLE_PATHS = 5;

/** Copies grouped under one hint. */
class Group {
  bytes = 0;
  readonly copies: Copy[] = [];
  add(c: Copy): void {
    this.bytes += c.bytes;
    this.copies.push(c);
  }
  paths(): string[] {
    return [...this.copies]
      .sort((a, b) => b.bytes - a.bytes || a.path.localeCompare(b.path))
      .slice(0, SAMPLE_PATHS)
      .map((c) => `/${c.path}`);
  }
}

function grouped<K>(map: Map<string, { key: K; group: Group }>, id: string, key: K): Group {
  let g = map.get(id);
  if (!g) {
    g = { key, group: new Group() };
    map.set(id, g);
  }
  return g.group;
}

export interface HintInput {
  readonly layers: readonly LayerReplay[];
  readonly origins: readonly LayerOrigin[];
  /** Hints that save less are left out. */
  readonly minBytes: number;
}

export function layerHints({ layers, origins, minBytes }: HintInput): Hint[] {
  const hidden = new Map<string, { key: { store: number; by: number; how: HiddenHow }; group: Group }>();
  const caches = new Map<string, { key: { layer: number; cache: CacheKind }; group: Group }>();
  const firstLayerOf = new Map<string, number>();
  const duplicates = new Map<string, { key: { original: number; layer: number }; group: Group }>();

  for (const layer of layers) {
    for (const c of layer.copies) {
      if (c.hiddenBy) {
        const k = { store: c.layer, by: c.hiddenBy.layer, how: c.hiddenBy.how };
        grouped(hidden, `${k.store}/${k.by}/${k.how}`, k).add(c);
        continue;
      }
      const cache = cacheOf(c.path);
      if (cache) grouped(caches, `${c.layer}/${cache.what}`, { layer: c.layer, cache }).add(c);
      // Content another layer already shows (files only: symlinks are a few bytes).
      if (c.fingerprint === undefined || c.fingerprint.startsWith('->')) continue;
      const original = firstLayerOf.get(c.fingerprint);
      if (original === undefined) firstLayerOf.set(c.fingerprint, c.layer);
      else if (original !== c.layer) grouped(duplicates, `${original}/${c.layer}`, { original, layer: c.layer }).add(c);
    }
  }

  const at = (i: number) => describeOrigin(origins[i]!, i);
  const kindOf = (i: number) => origins[i]!.instruction;
  const hints: Hint[] = [];
  const push = (kind: HintKind, g: Group, layer: number, otherLayer: number | undefined, message: string, fix: string) => {
    if (g.bytes < minBytes) return;
    hints.push({
      kind,
      bytes: g.bytes,
      files: g.copies.length,
      layer,
      ...(otherLayer !== undefined ? { otherLayer } : {}),
      paths: g.paths(),
      message,
      // Bytes in the base image's layers: only another base helps (never .dockerignore, nor a
      // later step, which can hide files but not shrink the layers below it).
      fix: origins[layer]!.base ? baseFix(kind, at(layer)) : fix,
    });
  };

  for (const { key, group: g } of hidden.values()) {
    const { store, by } = key;
    const what = count(g.copies.length, 'file');
    const copied = kindOf(store) === 'COPY' || kindOf(store) === 'ADD';
    switch (key.how) {
      case 'deleted': {
        const allCache = g.copies.every((c) => cacheOf(c.path) !== undefined);
        const fix =
          allCache && kindOf(store) === 'RUN'
            ? `Keep the cache out of the layer of the RUN that fills it (${at(store)}): a later RUN cannot shrink an earlier layer. ${cacheFix(cacheOf(g.copies[0]!.path)!, g.copies[0]!)}`
            : copied
              ? `Fetch and delete in the same RUN: download or unpack the files inside the RUN that uses and deletes them, or do that work in a build stage and COPY --from=<stage> only the result.`
              : kindOf(store) === 'RUN'
                ? `Create and delete in the same RUN: move the removal into ${at(store)}.`
                : 'Delete the files in the step that creates them: a later step cannot shrink an earlier layer.';
        push(
          'deleted-later',
          g,
          store,
          by,
          `${at(store)} stores ${what} that ${at(by)} deletes; the deleted bytes still ship in the image.`,
          fix,
        );
        break;
      }
      case 'replaced':
        push(
          'rewritten-later',
          g,
          store,
          by,
          `${at(by)} stores again, changed, ${what} that ${at(store)} stored; both versions ship in the image.`,
          copied
            ? 'Every change stores the whole file again: change the files before they are copied, or fetch and change them in the same RUN (or in a build stage, then COPY --from only the result).'
            : 'Every change stores the whole file again: produce the final version in the step that creates the files.',
        );
        break;
      case 'metadata':
        push(
          'chown-chmod-later',
          g,
          store,
          by,
          `${at(by)} changes only the owner or mode of ${what} that ${at(store)} stored; each such change stores the whole file again.`,
          copied
            ? `Set owner and mode while copying: use COPY --chown=<user>:<group> and/or --chmod=<mode> on ${at(store)}, and drop the chown/chmod from ${at(by)}.`
            : `Run the chown/chmod inside the RUN that creates the files (${at(store)}).`,
        );
        break;
      case 'identical':
        push(
          'duplicate-content',
          g,
          store,
          by,
          `${at(by)} stores ${what} again, unchanged, at the same paths ${at(store)} already stored.`,
          kindOf(by) === 'RUN'
            ? `Leave the files alone in ${at(by)} (rewriting or touching a file stores it again), or do that work in ${at(store)}.`
            : `Drop the repeated copy: ${at(store)} already stores these files.`,
        );
        break;
    }
  }

  for (const { key, group: g } of caches.values()) {
    const { layer, cache } = key;
    push(
      'package-cache',
      g,
      layer,
      undefined,
      `${at(layer)} leaves ${cache.what} (${count(g.copies.length, 'file')}) in the image.`,
      kindOf(layer) === 'RUN'
        ? cacheFix(cache, g.copies[0]!)
        : `Do not copy the cache into the image (add it to .dockerignore, or copy a narrower source).`,
    );
  }

  for (const { key, group: g } of duplicates.values()) {
    const { original, layer } = key;
    push(
      'duplicate-content',
      g,
      layer,
      original,
      `${at(layer)} stores ${count(g.copies.length, 'file')} whose content ${at(original)} already stored at other paths.`,
      'Store the content once: copy it to one place and link to it (ln -s), or point the program at the existing copy.',
    );
  }

  return hints.sort((a, b) => b.bytes - a.bytes || (a.layer ?? -1) - (b.layer ?? -1) || a.kind.localeCompare(b.kind));
}

function baseFix(kind: HintKind, layer: string): string {
  const Layer = `${layer[0]!.toUpperCase()}${layer.slice(1)}`;
  if (kind === 'package-cache' || kind === 'duplicate-content') {
    const which =
      kind === 'package-cache' ? " (Debian's and Ubuntu's official images ship without apt's package lists and downloaded .deb files)" : '';
    return `${Layer} belongs to the base image: no step of this Dockerfile can shrink its layers. Choose a slimmer base image${which}, or rebuild the base without these files.`;
  }
  // A later step changed or deleted files of the base: the base's versions stay in its layers.
  return `${Layer} belongs to the base image: its versions of these files ship whatever a later step does. For a package manager's own records (dpkg's status, debconf's templates) that is the cost of installing packages on this base; otherwise use a base that already has the change, or rebuild the base with it.`;
}

export function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
