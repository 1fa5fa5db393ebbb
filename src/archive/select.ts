// Which images, under which tags, a `save IMAGE...` means. Docker's rules (image/tarexport):
//  - an image ID (full, `sha256:...`, or a unique prefix) saves the image with no tags;
//  - `name:tag` saves that image under that tag;
//  - a bare `name` saves every tag of that repository (an ID prefix when no repository matches);
//  - `name@sha256:...` saves the image it pins, without a tag (an archive records tags only).
// The same image named twice is saved once, with the union of its tags.
import { isDigest, type Digest } from '../digest.js';
import { NotFoundError } from '../errors.js';
import { familiarName, parseReference, type Reference } from '../image/reference.js';
import type { Platform } from '../image/platform.js';
import type { Store, StoredIndexRecord } from '../store/store.js';
import type { SaveTarget } from './save.js';

export interface SelectedImage {
  /** The image's ID, or a multi-platform image's index's. */
  readonly id: Digest;
  /** Tagged references the archive records for this image (RepoTags, index.json names). */
  readonly refs: readonly Reference[];
  /** A multi-platform image, saved with all its platforms (no `platform` asked). */
  readonly index?: StoredIndexRecord;
}

function sameRef(a: Reference, b: Reference): boolean {
  return a.domain === b.domain && a.path === b.path && a.tag === b.tag;
}

/**
 * `platform`: a multi-platform image gives that platform's image (`save --platform`); without,
 * it is saved whole.
 */
export async function selectImages(store: Store, names: readonly string[], platform?: Platform): Promise<SelectedImage[]> {
  const order: Digest[] = [];
  const refs = new Map<Digest, Reference[]>();
  const indexes = new Map<Digest, StoredIndexRecord>();
  const resolve = async (name: string): Promise<Digest> => {
    if (platform) return store.resolveImage(name, platform);
    const t = await store.resolveTarget(name);
    if (t.kind === 'image') return t.id;
    indexes.set(t.index.id, t.index);
    return t.index.id;
  };
  const add = (id: Digest, ref?: Reference): void => {
    if (!refs.has(id)) {
      order.push(id);
      refs.set(id, []);
    }
    const list = refs.get(id)!;
    if (ref && !list.some((r) => sameRef(r, ref))) list.push(ref);
  };

  const all = await store.allTags();
  for (const name of names) {
    const bareId = /^[0-9a-f]{64}$/.test(name) ? `sha256:${name}` : name;
    if (isDigest(bareId)) {
      add(await resolve(bareId));
      continue;
    }
    let ref: Reference | undefined;
    try {
      ref = parseReference(name);
    } catch {
      ref = undefined; // not a name: perhaps an ID prefix; resolveImage says what it is not
    }
    if (ref === undefined) {
      add(await resolve(name));
    } else if (ref.digest !== undefined) {
      add(await resolve(name));
    } else if (ref.tag !== undefined) {
      add(await resolve(name), ref);
    } else {
      const repo = familiarName(ref);
      const tagged = all.filter((t) => t.repository === repo && t.digest === undefined);
      if (tagged.length > 0) {
        for (const t of tagged) add(await resolve(t.imageId), parseReference(t.ref));
      } else {
        add(
          await resolve(name).catch((err: unknown) => {
            throw err instanceof NotFoundError ? new NotFoundError(`No such image: ${name}`) : err;
          }),
        );
      }
    }
  }
  return order.map((id) => ({ id, refs: refs.get(id)!, ...(indexes.has(id) ? { index: indexes.get(id)! } : {}) }));
}

/** The stored images `names` select, as save takes them. */
export async function saveTargets(store: Store, names: readonly string[], platform?: Platform): Promise<SaveTarget[]> {
  const selected = await selectImages(store, names, platform);
  return Promise.all(selected.map((s) => saveTarget(store, s)));
}

/** One selected image (or multi-platform image) as save takes it. */
export async function saveTarget(store: Store, s: SelectedImage): Promise<SaveTarget> {
  if (!s.index) return { image: await store.image(s.id), refs: s.refs };
  const platforms = await Promise.all(s.index.entries.map(async (e) => ({ platform: e.platform, image: await store.image(e.imageId) })));
  return { platforms, refs: s.refs };
}
