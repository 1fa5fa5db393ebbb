// Turning a finished snapshot into a stored layer: its change set becomes a tar (only streamed
// through sha256, never kept) while the tar-split is recorded, and the store publishes it under
// its chainID (dropping the snapshot when an identical chain exists).
import { writeLayer } from '../layer/write.js';
import type { LayerRecord } from '../store/layerdb.js';
import type { Store } from '../store/store.js';

export interface CommitOptions {
  readonly sourceDateEpoch?: number;
}

export function commitSnapshot(store: Store, snapshotId: string, parent: LayerRecord | undefined, opts: CommitOptions = {}): Promise<LayerRecord> {
  return store.publishSnapshot(snapshotId, parent, (tarSplitPath) =>
    writeLayer(
      store.snapshotter.changes(snapshotId),
      { tarSplitPath },
      opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {},
    ),
  );
}
