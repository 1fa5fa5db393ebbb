// `build --output type=local` and `type=tar`: the built image's filesystem rather than an image,
// as BuildKit's local and tar exporters write it: the files of the final stage, no config, no
// layers. Both read one read-only view of the image's top layer (container/runner.ts), so what
// leaves is exactly the merged filesystem a container of the image would start with.
//  - local: the tree is copied into a directory (created if missing) with fs/copytree.ts, keeping
//    each entry's owner, mode and times as root. Rootless, every file is the user's (root of our
//    namespace), as BuildKit's rootless client writes them: kept owners would be subordinate IDs
//    on the host, files the user could then not remove;
//  - tar: the tree is written as a single layer tar on an empty base (layer/write.ts), so its
//    headers follow the same conventions as every layer tsbuild writes.
import { lstat, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { inView } from '../container/runner.js';
import { openRootfsSource } from '../context/index.js';
import { copyTree } from '../fs/copytree.js';
import { Limiter } from '../fs/limit.js';
import { treeChanges } from '../layer/changes.js';
import { rootlessNamespace } from '../runtime/userns.js';
import { writeLayer } from '../layer/write.js';
import type { LayerRecord, Store } from '../store/store.js';

/** Copies in flight while a tree is written out: the same bound COPY uses. */
const EXPORT_CONCURRENCY = 16;

export type FilesystemOutput =
  | { readonly type: 'local'; readonly dir: string }
  /** The tar bytes go to `sink`, which is not ended: the caller owns it. */
  | { readonly type: 'tar'; readonly sink: NodeJS.WritableStream };

/** Writes the filesystem whose top layer is `top` (none: empty) to `out`. */
export async function exportFilesystem(store: Store, top: LayerRecord | undefined, out: FilesystemOutput): Promise<void> {
  await inView(store, top, async (rootfs) => {
    if (out.type === 'local') {
      await mkdir(out.dir, { recursive: true });
      const source = await openRootfsSource(rootfs);
      const root = { path: '', hostPath: source.root, stats: await lstat(source.root) };
      await copyTree(source, root, out.dir, {
        root: out.dir,
        limiter: new Limiter(EXPORT_CONCURRENCY),
        ...(rootlessNamespace() ? { owner: { uid: 0, gid: 0 } } : {}),
      });
      return;
    }
    // writeLayer always leaves a tar-split behind; this one has no use, so it goes with its directory.
    const scratch = await store.tempDir('export');
    try {
      await writeLayer(treeChanges(undefined, rootfs), { tarSplitPath: join(scratch, 'tar-split.json.gz'), tarSink: out.sink });
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
}
