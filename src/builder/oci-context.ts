// `--build-context NAME=oci-layout://DIR`: an image from an OCI image layout directory (what
// `skopeo copy … oci:DIR`, `buildx --output type=oci,tar=false` and umoci write) stands in for
// NAME. The layout is fed to `load`'s reader as the tar it would be inside an OCI archive, the
// index first, so each layer is verified and unpacked once, straight from its blob; the image
// is stored without the layout's tags, since it serves this build, not the store's names.
import { createReadStream } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadArchive } from '../archive/load.js';
import { tarChunks, type ArchiveEntry } from '../archive/tar.js';
import type { Digest } from '../digest.js';
import { InvalidInputError } from '../errors.js';
import type { Store } from '../store/store.js';

/** Stores the one image of the layout at `dir`; returns its ID. */
export async function loadOciLayout(store: Store, dir: string, signal?: AbortSignal): Promise<Digest> {
  const st = await lstat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new InvalidInputError(`--build-context oci-layout://${dir}: not a directory`);
  const images = await loadArchive(store, tarChunks(layoutEntries(dir)), { tag: false, ...(signal ? { signal } : {}) });
  if (images.length !== 1) {
    throw new InvalidInputError(`--build-context oci-layout://${dir} holds ${images.length} images: the layout must hold exactly one`);
  }
  return images[0]!.id;
}

/** The layout's files as archive entries: `oci-layout` and `index.json`, then every blob. */
async function* layoutEntries(dir: string): AsyncGenerator<ArchiveEntry> {
  for (const name of ['oci-layout', 'index.json']) {
    const entry = await fileEntry(dir, name);
    if (entry) yield entry; // a missing one is the reader's to name
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
