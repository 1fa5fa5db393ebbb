// Which images, under which tags, a `save IMAGE...` means. Docker's rules (image/tarexport):
//  - an image ID (full, `sha256:...`, or a unique prefix) saves the image with no tags;
//  - `name:tag` saves that image under that tag;
//  - a bare `name` saves every tag of that repository (an ID prefix when no repository matches);
//  - `name@sha256:...` saves the image it pins, without a tag (an archive records tags only).
// The same image named twice is saved once, with the union of its tags.
import { isDigest, type Digest } from '../digest.js';
import { NotFoundError } from '../errors.js';
import { familiarName, parseReference, type Reference } from '../image/reference.js';
import type { Store } from '../store/store.js';
import type { SaveTarget } from './save.js';

export interface SelectedImage {
  readonly id: Digest;
  /** Tagged references the archive records for this image (RepoTags, index.json names). */
  readonly refs: readonly Reference[];
}

function sameRef(a: Reference, b: Reference): boolean {
  return a.domain === b.domain && a.path === b.path && a.tag === b.tag;
}

export async function selectImages(store: Store, names: readonly string[]): Promise<SelectedImage[]> {
  const order: Digest[] = [];
  const refs = new Map<Digest, Reference[]>();
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
      add(await store.resolveImage(bareId));
      continue;
    }
    let ref: Reference | undefined;
    try {
      ref = parseReference(name);
    } catch {
      ref = undefined; // not a name: perhaps an ID prefix; resolveImage says what it is not
    }
    if (ref === undefined) {
      add(await store.resolveImage(name));
    } else if (ref.digest !== undefined) {
      add(await store.resolveImage(name));
    } else if (ref.tag !== undefined) {
      add(await store.resolveImage(name), ref);
    } else {
      const repo = familiarName(ref);
      const tagged = all.filter((t) => t.repository === repo && t.digest === undefined);
      if (tagged.length > 0) {
        for (const t of tagged) add(t.imageId, parseReference(t.ref));
      } else {
        add(
          await store.resolveImage(name).catch((err: unknown) => {
            throw err instanceof NotFoundError ? new NotFoundError(`No such image: ${name}`) : err;
          }),
        );
      }
    }
  }
  return order.map((id) => ({ id, refs: refs.get(id)! }));
}

/** The stored images `names` select, as save takes them. */
export async function saveTargets(store: Store, names: readonly string[]): Promise<SaveTarget[]> {
  const selected = await selectImages(store, names);
  return Promise.all(selected.map(async (s) => ({ image: await store.image(s.id), refs: s.refs })));
}
