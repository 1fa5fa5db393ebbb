// RUN, carried out: the command runs in the helper's namespaces on a writable rootfs of the
// stage, with Docker's init layer and the heredoc scripts mounted, and what it changed becomes
// the step's layer. A non-zero exit is an error at the instruction's line.
import { randomBytes } from 'node:crypto';
import { lstat, rm } from 'node:fs/promises';
import { initLayerFor, type MountedRootfs } from '../container/runner.js';
import { findStubs, removeStubs } from '../container/stubs.js';
import { resolveUser } from '../container/users.js';
import { DockerfileError, type SourceLocation } from '../errors.js';
import { resolveInRoot } from '../fs/securejoin.js';
import type { HistoryEntry } from '../image/config.js';
import type { RunStep } from '../parse/plan.js';
import { runInContainer } from '../runtime/helper.js';
import { isRootless } from '../runtime/userns.js';
import { runInputs, runKey } from './cachekeys.js';
import { inlineFilesKey, PIPES_DIR, writePipes } from './heredoc.js';
import type { RunWork } from './instructions.js';
import { layerStep } from './layer-step.js';
import { attachRunMounts, resolveRunMounts, type AttachedRunMounts } from './run-mounts.js';
import { foreignPlatformKey } from './platforms.js';
import { atLine, type BuildSession, type StageState } from './session.js';

export async function runStep(
  session: BuildSession,
  state: StageState,
  step: RunStep,
  work: RunWork,
  history: HistoryEntry,
): Promise<void> {
  const { req } = session;
  if (step.security === 'insecure' && !req.allow?.includes('security.insecure')) {
    throw new DockerfileError(
      step.loc,
      'RUN --security=insecure needs the security.insecure entitlement: build with --allow security.insecure',
    );
  }
  try {
    session.canRun(state.stage);
  } catch (err) {
    throw new DockerfileError(step.loc, (err as Error).message, { cause: err });
  }
  const mounts = await resolveRunMounts(session, state, step, work.cwd);
  // RUN --network wins over the build's --network; neither: the host's, as docker build.
  const network = step.network ?? req.network ?? work.network;
  const hosts = (req.addHosts ?? []).map((h) => `${h.ip}\t${h.name}`).join('\n');
  const keyParts = {
    parent: state.layers.at(-1)?.chainId ?? '',
    argv: work.argv,
    env: work.env,
    user: work.user,
    cwd: work.cwd,
    network,
    pipes: work.pipes ? inlineFilesKey(work.pipes) : '',
    mounts: mounts.key,
    security: step.security === 'insecure' ? 'insecure' : '',
    hosts,
    ...foreignPlatformKey(session, state),
  };
  const key = runKey(keyParts);
  // The classic builder names a step's container by 12 hex digits; so does this hostname.
  const hostname = randomBytes(6).toString('hex');
  const init = await initLayerFor(hostname, req.addHosts ?? []);
  // --cache-from matches steps by their history line, which does not show what a mount showed.
  const cacheFromByCommand = mounts.mounts.length === 0;
  const inputs = runInputs(keyParts);
  await layerStep(session, state, key, history, { init, cacheFromByCommand, inputs }, async (mounted) => {
    const binds = [...mounted.binds];
    let pipesDir: string | undefined;
    if (work.pipes) {
      pipesDir = await session.store.tempDir('pipes');
      await writePipes(pipesDir, work.pipes);
      binds.push({ type: 'bind', source: pipesDir, target: PIPES_DIR, readonly: true });
    }
    const attached = await attachRunMounts(session, step.loc, mounts.mounts);
    try {
      const stubs = await findStubs(
        mounted.rootfs,
        attached.mounts.map((m) => m.target),
      );
      try {
        await runCommand(session, step, { ...work, network }, { ...mounted, binds }, hostname, attached);
      } finally {
        await removeStubs(mounted.rootfs, stubs);
      }
      // Docker's classic builder records a layer even for a RUN that changed nothing.
      return true;
    } finally {
      await attached.release();
      if (pipesDir) await rm(pipesDir, { recursive: true, force: true });
    }
  });
}

async function runCommand(
  session: BuildSession,
  step: RunStep,
  work: RunWork,
  mounted: MountedRootfs,
  hostname: string,
  attached: AttachedRunMounts,
): Promise<void> {
  const loc = step.loc;
  if (work.shell !== undefined && !(await existsInRoot(mounted.rootfs, work.shell))) {
    throw new DockerfileError(loc, `RUN needs ${work.shell} to run a shell-form command, and the image has no ${work.shell}`);
  }
  const user = await atLine(loc, () => resolveUser(mounted.rootfs, work.user));
  const { req } = session;
  checkArgumentSizes(loc, work.argv, [...work.env, ...attached.env]);
  const { exitCode } = await atLine(loc, () =>
    runInContainer(
      {
        rootfs: mounted.rootfs,
        argv: work.argv,
        env: [...work.env, ...attached.env],
        cwd: work.cwd,
        uid: user.uid,
        gid: user.gid,
        groups: user.groups,
        hostname,
        network: work.network === 'none' ? 'none' : 'host',
        binds: mounted.binds,
        mounts: attached.mounts,
        secretEnv: attached.secretEnv,
        ...(step.security === 'insecure' ? { privileged: true } : {}),
      },
      {
        ...(req.stdout ? { stdout: req.stdout } : {}),
        ...(req.stderr ? { stderr: req.stderr } : {}),
        ...(req.signal ? { signal: req.signal } : {}),
      },
    ),
  );
  session.checkAborted();
  if (exitCode !== 0) throw new DockerfileError(loc, `${step.text} exited with code ${exitCode}${rootlessHint(step.text)}`);
}

/**
 * Rootless, the kernel refuses mknod(2) of a device in a user namespace with EPERM, which the
 * step's own tool reports only as "Operation not permitted". We cannot see which call failed;
 * a failed step that names mknod is told why it cannot work here.
 */
function rootlessHint(text: string): string {
  if (!isRootless() || !/\bmknod\b/.test(text)) return '';
  return ': device nodes cannot be created rootless (mknod is refused in a user namespace); build as root';
}

/** Linux's MAX_ARG_STRLEN: the most one argument or environment string can hold, its NUL included. */
const MAX_ARG_STRLEN = 131072;

/**
 * The kernel refuses to start a command with an argument or variable longer than MAX_ARG_STRLEN
 * (E2BIG, as runc's would under Docker): said here with the variable's name, at the step's line.
 */
function checkArgumentSizes(loc: SourceLocation, argv: readonly string[], env: readonly string[]): void {
  for (const kv of env) {
    const n = Buffer.byteLength(kv) + 1;
    if (n > MAX_ARG_STRLEN) {
      const name = kv.slice(0, Math.max(0, kv.indexOf('='))).slice(0, 64);
      throw new DockerfileError(
        loc,
        `the variable ${name} (ENV or ARG) is ${n} bytes: Linux passes at most ${MAX_ARG_STRLEN} bytes per variable to a command`,
      );
    }
  }
  for (const arg of argv) {
    const n = Buffer.byteLength(arg) + 1;
    if (n > MAX_ARG_STRLEN)
      throw new DockerfileError(
        loc,
        `the command has an argument of ${n} bytes: Linux passes at most ${MAX_ARG_STRLEN} bytes per argument to a command`,
      );
  }
}

async function existsInRoot(rootfs: string, path: string): Promise<boolean> {
  try {
    await lstat(await resolveInRoot(rootfs, path, { followFinal: true }));
    return true;
  } catch {
    return false;
  }
}
