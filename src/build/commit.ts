// Turning a finished snapshot into a stored layer: its change set becomes a tar (only streamed
// through sha256, never kept), the tar-split is recorded, and the layer is published under its
// chainID. When that chain already exists, the new snapshot is identical to a stored one and
// is dropped: this is how layers are shared.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeLayer } from '../layer/index.js';
import type { LayerRecord } from '../store/layerdb.js';
import type { Store } from '../store/store.js';

export interface CommitOptions {
  readonly sourceDateEpoch?: number;
}

export async function commitSnapshot(
  store: Store,
  snapshotId: string,
  parent: LayerRecord | undefined,
  opts: CommitOptions = {},
): Promise<LayerRecord> {
  const tmp = await store.tempDir('commit');
  try {
    const tarSplitPath = join(tmp, 'tar-split.json.gz');
    const desc = await writeLayer(
      store.snapshotter.changes(snapshotId),
      { tarSplitPath },
      opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {},
    );
    const { record, created } = await store.layers.create({
      ...(parent ? { parent: parent.chainId } : {}),
      diffId: desc.diffId,
      size: desc.size,
      cacheId: snapshotId,
      tarSplitFile: tarSplitPath,
    });
    if (!created) await store.snapshotter.remove(snapshotId);
    return record;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
