// `tsbuild import`: a root filesystem tarball becomes a one-layer image, as `docker import`
// makes it. The tar's exact bytes define the layer (its tar-split is kept), so the diffID is the
// sha256 of what the user gave us, decompressed.
import type { Digest } from '../digest.js';
import { hostArchitecture, rfc3339, serializeConfig, type ImageConfig, type RuntimeConfig } from '../image/config.js';
import type { Platform } from '../image/platform.js';
import { parseReference } from '../image/reference.js';
import type { Store } from '../store/store.js';

export interface ImportOptions {
  /** Tag for the new image. */
  readonly ref?: string;
  /** What the history comment names as the source (`-` for stdin, or the file name). */
  readonly source: string;
  /** Runtime config to start from (e.g. Cmd for a base image). */
  readonly config?: RuntimeConfig;
  readonly created?: Date;
  /** The platform the files are for (docker import --platform); default this machine's. */
  readonly platform?: Platform;
}

export async function importRootfs(store: Store, tar: NodeJS.ReadableStream, opts: ImportOptions): Promise<Digest> {
  const ref = opts.ref !== undefined ? parseReference(opts.ref) : undefined; // validate before work
  const layer = await store.applyLayer(tar);
  const created = rfc3339(opts.created ?? new Date());
  const config: ImageConfig = {
    architecture: opts.platform?.architecture ?? hostArchitecture(),
    ...(opts.platform?.variant ? { variant: opts.platform.variant } : {}),
    os: opts.platform?.os ?? 'linux',
    created,
    config: opts.config ?? {},
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created, comment: `Imported from ${opts.source}` }],
  };
  let id: Digest;
  try {
    id = await store.putImage(serializeConfig(config));
  } catch (err) {
    await store.rollBack({ chains: [layer.chainId] });
    throw err;
  }
  if (ref) await store.tag(ref, id);
  return id;
}
