// WORKDIR, carried out as BuildKit does it: the directory is created (with parents, 0755, owned
// by the current USER) in a layer of its own; if it exists already, nothing is recorded.
import { resolveChown } from '../container/users.js';
import { mkdirAll } from '../fs/mkdirall.js';
import { resolveInRoot } from '../fs/securejoin.js';
import type { HistoryEntry } from '../image/config.js';
import type { WorkdirStep } from '../parse/plan.js';
import { workdirInputs, workdirKey } from './cachekeys.js';
import type { WorkdirWork } from './instructions.js';
import { layerStep } from './layer-step.js';
import { atLine, type BuildSession, type StageState } from './session.js';

export async function workdirStep(
  session: BuildSession,
  state: StageState,
  step: WorkdirStep,
  work: WorkdirWork,
  history: HistoryEntry,
): Promise<void> {
  const parts = { parent: state.layers.at(-1)?.chainId ?? '', dir: work.dir, user: work.user };
  const key = workdirKey(parts);
  await layerStep(session, state, key, history, { cacheFromByCommand: true, inputs: workdirInputs(parts) }, async (mounted) =>
    atLine(step.loc, async () => {
      const owner = work.user === '' ? { uid: 0, gid: 0 } : await resolveChown(mounted.rootfs, work.user);
      const target = await resolveInRoot(mounted.rootfs, work.dir);
      const created = await mkdirAll(target, { mode: 0o755, owner, root: mounted.rootfs });
      return created.length > 0;
    }),
  );
}
