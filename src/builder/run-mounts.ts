// RUN --mount, from the Dockerfile's words to what the step's namespace mounts. Two phases, as
// the cache needs: `resolveRunMounts` expands and checks each mount and says what it contributes
// to the step's cache key (for a bind of the context or of a stage, the content it shows; never a
// cache mount's contents or a secret's value); `attachRunMounts`, once the step really runs,
// finds the sources (a view of a stage or image, the context, a cache directory, a secret's bytes,
// an SSH agent) and holds them until the step is over.
//
// Defaults follow the Dockerfile reference (RUN --mount): a relative target is below WORKDIR; a
// cache's id is its target; a secret's id is its target's base name and its target
// /run/secrets/<id>; an SSH mount's id is `default` and its target /run/buildkit/ssh_agent.<n>.
import { posix } from 'node:path';
import { chmod, chown, copyFile, lstat, mkdir, rm } from 'node:fs/promises';
import { openRootfsSource, type BuildContext } from '../context/index.js';
import { openView } from '../container/runner.js';
import { DockerfileError, type SourceLocation } from '../errors.js';
import { copyTree } from '../fs/copytree.js';
import { Limiter } from '../fs/limit.js';
import { resolveInRoot } from '../fs/securejoin.js';
import { expandWord } from '../parse/index.js';
import { parseMount, type CacheSharing, type MountOptions } from '../parse/mounts.js';
import type { RunStep } from '../parse/plan.js';
import { mountRootfs, unmountRootfs } from '../runtime/helper.js';
import type { StepMount } from '../runtime/types.js';
import { baseImage } from './base.js';
import { sourcesChecksum } from './checksum.js';
import { substitutionEnv } from './instructions.js';
import { atLine, type BuildSession, type StageLayer, type StageState } from './session.js';
import { stageByName } from './stages.js';

/** A cache's identity beside its id: where its first content comes from, and an explicit owner. */
function cacheBase(m: Extract<ResolvedMount, { type: 'cache' }>): string {
  const parts: string[] = [];
  if (m.seed)
    parts.push(`from=${m.seed.from.kind === 'layers' ? (m.seed.from.layers.at(-1)?.chainId ?? 'scratch') : 'context'}:${m.seed.source}`);
  if (m.explicitOwner) parts.push(`owner=${m.mode.toString(8)}:${m.uid}:${m.gid}`);
  return parts.join(',');
}

/** Where a bind or a cache's seed reads from: the build context (or a --build-context directory), or a stage's or image's root. */
type MountSource =
  | { readonly kind: 'context'; readonly context?: BuildContext }
  /** A stage's or an image's root filesystem: `layers` bottom first (unpacked when mounted). */
  | { readonly kind: 'layers'; readonly layers: readonly StageLayer[] };

export type ResolvedMount =
  | { readonly type: 'bind'; readonly target: string; readonly readonly: boolean; readonly from: MountSource; readonly source: string }
  | {
      readonly type: 'cache';
      readonly target: string;
      readonly readonly: boolean;
      readonly id: string;
      readonly sharing: CacheSharing;
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
      readonly seed?: { readonly from: MountSource; readonly source: string };
      /** mode, uid or gid given explicitly: part of the cache's identity, as in BuildKit. */
      readonly explicitOwner: boolean;
    }
  | { readonly type: 'tmpfs'; readonly target: string; readonly sizeBytes?: number }
  | {
      readonly type: 'secret';
      readonly id: string;
      /** Absent: the secret is only an environment variable. */
      readonly target?: string;
      readonly env?: string;
      readonly required: boolean;
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
    }
  | {
      readonly type: 'ssh';
      readonly id: string;
      readonly target: string;
      readonly required: boolean;
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
    };

export interface ResolvedRunMounts {
  readonly mounts: readonly ResolvedMount[];
  /** What the mounts add to the step's cache key; '' for none. */
  readonly key: string;
}

/** Expands, checks and completes every --mount of `step`, in the order they will be mounted. */
export async function resolveRunMounts(session: BuildSession, state: StageState, step: RunStep, cwd: string): Promise<ResolvedRunMounts> {
  const written = step.mounts ?? [];
  if (written.length === 0) return { mounts: [], key: '' };
  const env = substitutionEnv(state.draft.vars());
  const expand = (v: string): string => expandWord(v, env, session.plan.escapeChar);
  const mounts: ResolvedMount[] = [];
  let sshCount = 0;
  for (const raw of written) {
    const m = await atLine(step.loc, async () => parseMount(raw, expand));
    // A bind, cache or tmpfs without a target is mounted at the working directory: BuildKit
    // joins the target to WORKDIR, so an empty one is WORKDIR itself (`RUN --mount=from=build`).
    const atWorkdir = m.type === 'bind' || m.type === 'cache' || m.type === 'tmpfs';
    const target = m.target === undefined ? (atWorkdir ? cwd : undefined) : posix.resolve(cwd, m.target);
    mounts.push(await complete(session, state, step.loc, m, target, () => sshCount++));
  }
  // A mount at /a must be in place before one at /a/b (BuildKit sorts them the same way).
  const depth = (m: ResolvedMount): number => ('target' in m && m.target !== undefined ? m.target.split('/').length : 0);
  const ordered = mounts.map((m, i) => ({ m, i })).sort((a, b) => depth(a.m) - depth(b.m) || a.i - b.i);
  const keyParts = await Promise.all(ordered.map(({ m }) => keyOf(session, step.loc, m)));
  return { mounts: ordered.map(({ m }) => m), key: JSON.stringify(keyParts) };
}

async function complete(
  session: BuildSession,
  state: StageState,
  loc: SourceLocation,
  m: MountOptions,
  target: string | undefined,
  nextSsh: () => number,
): Promise<ResolvedMount> {
  switch (m.type) {
    case 'bind':
      return {
        type: 'bind',
        target: target!,
        readonly: m.readonly,
        from: await sourceOf(session, state, loc, m.from),
        source: m.source ?? '/',
      };
    case 'cache':
      return {
        type: 'cache',
        target: target!,
        readonly: m.readonly,
        id: m.id || target!,
        sharing: m.sharing ?? 'shared',
        mode: m.mode ?? 0o755,
        uid: m.uid ?? 0,
        gid: m.gid ?? 0,
        explicitOwner: m.mode !== undefined || m.uid !== undefined || m.gid !== undefined,
        ...(m.from !== undefined ? { seed: { from: await sourceOf(session, state, loc, m.from), source: m.source ?? '/' } } : {}),
      };
    case 'tmpfs':
      return { type: 'tmpfs', target: target!, ...(m.sizeBytes !== undefined ? { sizeBytes: m.sizeBytes } : {}) };
    case 'secret': {
      const id = m.id ?? m.source ?? (target !== undefined ? posix.basename(target) : m.env!);
      const fileTarget = target ?? (m.env === undefined ? `/run/secrets/${id}` : undefined);
      return {
        type: 'secret',
        id,
        ...(fileTarget !== undefined ? { target: fileTarget } : {}),
        ...(m.env !== undefined ? { env: m.env } : {}),
        required: m.required,
        mode: m.mode ?? 0o400,
        uid: m.uid ?? 0,
        gid: m.gid ?? 0,
      };
    }
    case 'ssh': {
      const n = nextSsh();
      return {
        type: 'ssh',
        id: m.id || 'default',
        target: target ?? `/run/buildkit/ssh_agent.${n}`,
        required: m.required,
        mode: m.mode ?? 0o600,
        uid: m.uid ?? 0,
        gid: m.gid ?? 0,
      };
    }
  }
}

/** `from=`: an earlier stage (by name or index) or an image; none: the build context. */
async function sourceOf(session: BuildSession, state: StageState, loc: SourceLocation, from: string | undefined): Promise<MountSource> {
  if (from === undefined || from === '') return { kind: 'context' };
  const stage = stageByName(session.plan, from, state.stage.index);
  const local = stage ? undefined : session.localContexts.get(from);
  if (local) return { kind: 'context', context: local };
  if (stage) {
    const built = session.built.get(stage.index);
    if (!built) throw new DockerfileError(loc, `stage ${from} was not built`);
    return { kind: 'layers', layers: built.layers };
  }
  if (/^\d+$/.test(from)) throw new DockerfileError(loc, `invalid from flag value ${from}: index out of bounds`);
  return { kind: 'layers', layers: (await baseImage(session, from, loc)).layers };
}

/** One mount's part of the cache key: its options, and for a bind the identity of what it shows. */
async function keyOf(session: BuildSession, loc: SourceLocation, m: ResolvedMount): Promise<unknown> {
  const origin = async (from: MountSource, source: string): Promise<string> =>
    from.kind === 'layers'
      ? `${from.layers.at(-1)?.chainId ?? 'scratch'}:${source}`
      : `context:${await atLine(loc, () => sourcesChecksum(from.context ?? session.context, [source], { cacheDir: session.store.contextHashDir, memoDir: session.store.treeMemoDir, isAdd: false }))}`;
  switch (m.type) {
    case 'bind':
      return { ...m, from: await origin(m.from, m.source) };
    case 'cache':
      return { ...m, seed: m.seed ? await origin(m.seed.from, m.seed.source) : '' };
    default:
      return m;
  }
}

type Release = () => Promise<void> | void;

/** What the step's namespace gets, and how to let go of it afterwards. */
export interface AttachedRunMounts {
  readonly mounts: readonly StepMount[];
  readonly secretEnv: readonly { readonly name: string; readonly value: Buffer }[];
  /** KEY=VALUE added to the step's environment (SSH_AUTH_SOCK). */
  readonly env: readonly string[];
  release(): Promise<void>;
}

/** Finds and holds what each mount shows, in order; on failure, lets go of what it took. */
export async function attachRunMounts(
  session: BuildSession,
  loc: SourceLocation,
  resolved: readonly ResolvedMount[],
): Promise<AttachedRunMounts> {
  const releases: Release[] = [];
  const release = async (): Promise<void> => {
    for (const r of releases.reverse()) await r();
    releases.length = 0;
  };
  const mounts: StepMount[] = [];
  const secretEnv: { name: string; value: Buffer }[] = [];
  const env: string[] = [];
  try {
    for (const m of resolved) {
      switch (m.type) {
        case 'bind': {
          const source = await atLine(loc, () => sourcePath(session, m.from, m.source, releases));
          mounts.push({
            type: 'bind',
            source: m.readonly ? source : await writableCopy(session, source, releases),
            target: m.target,
            readonly: m.readonly,
          });
          break;
        }
        case 'cache': {
          const held = await session.store.cacheMount({
            id: m.id,
            base: cacheBase(m),
            sharing: m.sharing,
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            ...(m.seed ? { seed: (dir: string) => seedCache(session, loc, m.seed!, dir) } : {}),
          });
          releases.push(() => held.release());
          mounts.push({ type: 'bind', source: held.dir, target: m.target, readonly: m.readonly });
          break;
        }
        case 'tmpfs':
          mounts.push({ type: 'tmpfs', target: m.target, ...(m.sizeBytes !== undefined ? { sizeBytes: m.sizeBytes } : {}) });
          break;
        case 'secret': {
          const data = await atLine(loc, async () => (await session.secrets()).read(m.id));
          if (data === undefined) {
            if (m.required)
              throw new DockerfileError(loc, `secret ${m.id} not found: give it with --secret id=${m.id},src=FILE or env=VAR`);
            break;
          }
          if (m.target !== undefined) mounts.push({ type: 'secret', target: m.target, data, mode: m.mode, uid: m.uid, gid: m.gid });
          if (m.env !== undefined) secretEnv.push({ name: m.env, value: data });
          break;
        }
        case 'ssh': {
          // SSH_AUTH_SOCK names the first ssh mount even when its agent was not given (BuildKit).
          if (!env.some((e) => e.startsWith('SSH_AUTH_SOCK='))) env.push(`SSH_AUTH_SOCK=${m.target}`);
          const agents = await session.sshAgents();
          if (!agents.has(m.id)) {
            if (m.required) throw new DockerfileError(loc, `no SSH key ${m.id} forwarded: give it with --ssh ${m.id}[=SOCKET|KEYFILE]`);
            break;
          }
          const dir = await session.store.tempDir('ssh');
          releases.push(() => rm(dir, { recursive: true, force: true }));
          const proxy = await atLine(loc, () => agents.forward(m.id, { mode: m.mode, uid: m.uid, gid: m.gid, dir }));
          releases.push(() => proxy.close());
          mounts.push({ type: 'bind', source: proxy.socket, target: m.target, readonly: false });
          break;
        }
      }
    }
  } catch (err) {
    await release();
    throw err;
  }
  return { mounts, secretEnv, env, release };
}

/** The host path a bind shows: inside the context (its .dockerignore applied) or a stage's root. */
async function sourcePath(session: BuildSession, from: MountSource, source: string, releases: Release[]): Promise<string> {
  if (from.kind === 'layers') {
    const view = await openView(session.store, (await session.stored(from.layers)).at(-1));
    releases.push(() => view.close());
    return resolveInRoot(view.rootfs, source, { followFinal: true });
  }
  const context = from.context ?? session.context;
  const [entry] = await context.resolveSource(source);
  if (!entry) throw new Error(`${source}: not found in the build context`);
  // Without a .dockerignore the context is bound as it is; with one, what it leaves out must not
  // be seen, so the step gets a copy of what the context sends.
  if (context.ignore.file === undefined) return entry.hostPath;
  const dir = await session.store.tempDir('bind');
  releases.push(() => rm(dir, { recursive: true, force: true }));
  // A single file is bound as a file: copied to a path of its own inside the scratch directory.
  const target = entry.stats.isDirectory() ? dir : posix.join(dir, 'file');
  await copyTree(context, entry, target, { root: dir, limiter: new Limiter(16), targetIsNew: entry.stats.isDirectory() });
  if (entry.stats.isDirectory()) {
    // The scratch directory stands for the source directory itself: its owner and mode too.
    await chown(dir, entry.stats.uid, entry.stats.gid);
    await chmod(dir, entry.stats.mode & 0o7777);
  }
  return target;
}

/** `rw`: the step may write, and its writes are thrown away, through an overlay over the source. */
async function writableCopy(session: BuildSession, source: string, releases: Release[]): Promise<string> {
  const scratch = await session.store.tempDir('bind-rw');
  releases.push(() => rm(scratch, { recursive: true, force: true }));
  if (!(await lstat(source)).isDirectory()) {
    // overlayfs stacks directories only: a file is copied.
    const copy = posix.join(scratch, 'file');
    await copyFile(source, copy);
    return copy;
  }
  const upper = posix.join(scratch, 'upper');
  const work = posix.join(scratch, 'work');
  await mkdir(upper);
  await mkdir(work);
  // The store's kind of overlay: kernel overlayfs with its options (userxattr rootless), or
  // fuse-overlayfs where the kernel refuses overlayfs in a user namespace.
  const overlay = session.store.scratchOverlay(scratch, source, { dir: upper, work });
  if (overlay === undefined) {
    // vfs: no overlay at all. The source is copied, as vfs copies a parent for each snapshot.
    const copy = posix.join(scratch, 'copy');
    // Loaded here only: execa and its dependencies are ~240 KB that every other build would
    // compile at start.
    const { execa } = await import('execa');
    await execa('cp', ['-a', '--reflink=auto', source, copy]);
    return copy;
  }
  const mounted = await mountRootfs([overlay], async () => posix.join(scratch, 'merged'));
  releases.push(() => unmountRootfs(mounted));
  return mounted.rootfs;
}

/** A new cache directory's first content: `source` of the `from` stage or image. */
async function seedCache(
  session: BuildSession,
  loc: SourceLocation,
  seed: { from: MountSource; source: string },
  dir: string,
): Promise<void> {
  const releases: Release[] = [];
  try {
    const path = await atLine(loc, () => sourcePath(session, seed.from, seed.source, releases));
    const root = await openRootfsSource(path);
    const [entry] = await root.resolveSource('/');
    if (entry) await copyTree(root, entry, dir, { root: dir, limiter: new Limiter(16), targetIsNew: true });
  } finally {
    for (const r of releases.reverse()) await r();
  }
}
