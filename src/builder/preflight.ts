// What is checked before any step runs, so that a build that cannot finish fails at once, at its
// line, with the store untouched: RUN --mount's references to secrets, agents and stages, bind
// sources that climb out of the context, and RUN --security=insecure without its entitlement or
// rootless (runtime/userns.ts), where the device nodes and host capabilities it gives do not exist.
// Values that hold variables are checked when their step runs (run-mounts.ts).
import { posix } from 'node:path';
import { DockerfileError } from '../errors.js';
import { parseMountAsWritten, type MountOptions } from '../parse/mounts.js';
import type { RunStep, Stage } from '../parse/plan.js';
import { isRootless } from '../runtime/userns.js';
import type { Store } from '../store/store.js';
import type { BuildRequest } from './request.js';
import { stageByName } from './stages.js';

export async function preflight(store: Store, req: BuildRequest, stages: readonly Stage[]): Promise<void> {
  const escape = req.plan.escapeChar;
  for (const stage of stages) {
    for (const step of stage.steps) {
      if (step.kind !== 'RUN') continue;
      if (step.security === 'insecure' && !req.allow?.includes('security.insecure')) {
        throw new DockerfileError(
          step.loc,
          'RUN --security=insecure needs the security.insecure entitlement: build with --allow security.insecure',
        );
      }
      if (step.security === 'insecure' && isRootless()) {
        throw new DockerfileError(
          step.loc,
          'RUN --security=insecure cannot work rootless: a user namespace can neither create its device nodes nor grant capabilities over the host; build as root',
        );
      }
      for (const raw of step.mounts ?? []) await checkMount(store, req, stage, step, parseMountAsWritten(raw, escape));
    }
  }
}

async function checkMount(store: Store, req: BuildRequest, stage: Stage, step: RunStep, m: MountOptions): Promise<void> {
  const fail = (message: string): never => {
    throw new DockerfileError(step.loc, message);
  };
  if (m.type === 'secret' && m.required) {
    const id = m.id ?? m.source ?? (m.target !== undefined ? posix.basename(m.target) : m.env);
    if (id !== undefined && !req.secrets?.some((s) => s.id === id))
      fail(`secret ${id} is required and was not given: build with --secret id=${id},src=FILE`);
  }
  if (m.type === 'ssh' && m.required) {
    const id = m.id || 'default';
    if (!req.ssh?.some((s) => s.id === id)) fail(`SSH agent ${id} is required and was not given: build with --ssh ${id}`);
  }
  if ((m.type === 'bind' || m.type === 'cache') && m.from !== undefined && m.from !== '') {
    if (!stageByName(req.plan, m.from, stage.index) && !req.namedContexts?.has(m.from)) await checkImageSource(store, m.from, fail);
  } else if (m.type === 'bind' && m.source !== undefined && posix.normalize(m.source).split('/')[0] === '..') {
    fail(`mount source ${m.source} is outside the build context`);
  }
}

/**
 * A `from=` that names no earlier stage is an image. A bare name (`from=builder`) that is not
 * stored either is taken for a misspelt stage rather than sent to Docker Hub; a reference with a
 * tag, digest or registry (`from=golang:1.22`) is pulled when its step runs, as FROM's are.
 */
async function checkImageSource(store: Store, from: string, fail: (message: string) => never): Promise<void> {
  if (/^\d+$/.test(from)) fail(`invalid from flag value ${from}: index out of bounds`);
  if (/[:/@]/.test(from)) return;
  const stored = await store.resolveImage(from).then(
    () => true,
    () => false,
  );
  if (!stored) fail(`mount from=${from}: no stage of that name before this one, and no stored image ${from}`);
}
