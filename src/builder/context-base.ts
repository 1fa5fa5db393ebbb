// FROM a --build-context directory: a stage that starts from a directory's files, as BuildKit
// starts one on a local named context (an empty config, the files as the filesystem). The
// directory is copied onto scratch as `COPY . /` would copy it (its .dockerignore applied, owners
// reset to root), in one layer that the build cache keeps like any COPY's, keyed by the files'
// checksum. The layer's history entry names the context: an image needs one entry per layer.
import type { BuildContext } from '../context/index.js';
import type { SourceLocation } from '../errors.js';
import { copyInputs, copyKey, type CopyKey } from './cachekeys.js';
import { sourcesChecksum } from './checksum.js';
import { copyIntoRootfs } from './copy.js';
import { HISTORY_COMMENT } from './instructions.js';
import { layerStep } from './layer-step.js';
import { atLine, type BuildSession, type StageState } from './session.js';

/** Adds the layer of the directory `context` (named `name`) to a stage that starts empty. */
export async function contextAsBase(
  session: BuildSession,
  state: StageState,
  name: string,
  context: BuildContext,
  loc: SourceLocation,
): Promise<void> {
  const checksum = await atLine(loc, () =>
    sourcesChecksum(context, ['.'], { cacheDir: session.store.contextHashDir, memoDir: session.store.treeMemoDir, isAdd: false }),
  );
  const parts: CopyKey = {
    parent: '',
    kind: 'COPY',
    sources: ['.'],
    checksum,
    dest: '/',
    workdir: '/',
    chown: '',
    chmod: '',
    inline: `build context ${name}`,
  };
  const key = copyKey(parts);
  const history = { created: session.now(), created_by: `FROM ${name} (build context)`, comment: HISTORY_COMMENT };
  await layerStep(session, state, key, history, { inputs: copyInputs(parts) }, (mounted) =>
    atLine(loc, async () => {
      await copyIntoRootfs({ context, sources: ['.'], dest: '/', workdir: '/', rootfs: mounted.rootfs, isAdd: false });
      return true;
    }),
  );
}
