// `--build-context NAME=oci-layout://DIR`: an image from an OCI image layout directory (what
// `skopeo copy … oci:DIR`, `buildx --output type=oci,tar=false` and umoci write) stands in for
// NAME. The layout is fed to `load`'s reader as the tar it would be inside an OCI archive, the
// index first, so each layer is verified and unpacked once, straight from its blob; the image
// is stored without the layout's tags, since it serves this build, not the store's names. A
// layout of several images is narrowed to one as BuildKit's `oci-layout://DIR:TAG` and
// `DIR@DIGEST` do: by the index entry's `org.opencontainers.image.ref.name`, or by its digest.
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadArchive } from '../archive/load.js';
import { tarChunks, type ArchiveEntry } from '../archive/tar.js';
import type { Digest } from '../digest.js';
import { InvalidInputError } from '../errors.js';
import type { Store } from '../store/store.js';

/** Which image of a layout: the one entry of its index, or the one with this tag or digest. */
export interface LayoutSelector {
  readonly tag?: string;
  readonly digest?: string;
}

/** Stores the one image of the layout at `dir` (or the one `select` names); returns its ID. */
export async function loadOciLayout(store: Store, dir: string, signal?: AbortSignal, select: LayoutSelector = {}): Promise<Digest> {
  const what = `--build-context oci-layout://${dir}${select.tag ? `:${select.tag}` : ''}${select.digest ? `@${select.digest}` : ''}`;
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new InvalidInputError(`${what}: not a directory`);
  const index = select.tag || select.digest ? await selectedIndex(dir, select, what) : undefined;
  const images = await loadArchive(store, tarChunks(layoutEntries(dir, index)), { tag: false, ...(signal ? { signal } : {}) });
  if (images.length !== 1) {
    throw new InvalidInputError(`${what} holds ${images.length} images: name one as oci-layout://DIR:TAG or oci-layout://DIR@DIGEST`);
  }
  return images[0]!.id;
}

/** index.json with the entries `select` names only; none is an error naming what the index has. */
async function selectedIndex(dir: string, select: LayoutSelector, what: string): Promise<Buffer> {
  let index: { manifests?: { digest?: string; annotations?: Record<string, string> }[] };
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as typeof index;
  } catch (err) {
    throw new InvalidInputError(`${what}: index.json cannot be read: ${(err as Error).message}`, { cause: err });
  }
  const all = index.manifests ?? [];
  const chosen = all.filter(
    (m) =>
      (select.tag === undefined || m.annotations?.['org.opencontainers.image.ref.name'] === select.tag) &&
      (select.digest === undefined || m.digest === select.digest),
  );
  if (chosen.length === 0) {
    const tags = all.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter((t) => t !== undefined);
    throw new InvalidInputError(`${what}: no such image in the layout (its tags: ${tags.length ? tags.join(', ') : 'none'})`);
  }
  return Buffer.from(JSON.stringify({ ...index, manifests: chosen }));
}

/** The layout's files as archive entries: `oci-layout` and `index.json` (or `index`), then every blob. */
async function* layoutEntries(dir: string, index?: Buffer): AsyncGenerator<ArchiveEntry> {
  const layout = await fileEntry(dir, 'oci-layout');
  if (layout) yield layout; // a missing one is the reader's to name
  if (index) yield { kind: 'file', name: 'index.json', mtime: 0, data: index };
  else {
    const entry = await fileEntry(dir, 'index.json');
    if (entry) yield entry;
  }
  const blobs = join(dir, 'blobs');
  for (const algorithm of (await readdir(blobs).catch(() => [])).sort()) {
    for (const name of (await readdir(join(blobs, algorithm)).catch(() => [])).sort()) {
      const entry = await fileEntry(dir, `blobs/${algorithm}/${name}`);
      if (entry) yield entry;
    }
  }
}

async function fileEntry(dir: string, name: string): Promise<ArchiveEntry | undefined> {
  const path = join(dir, name);
  const st = await lstat(path).catch(() => undefined);
  if (!st?.isFile()) return undefined;
  return { kind: 'stream', name, mtime: 0, size: st.size, open: () => createReadStream(path) as AsyncIterable<Buffer> };
}
