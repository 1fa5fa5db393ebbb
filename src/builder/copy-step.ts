// COPY and ADD, carried out: the sources' checksum makes the cache key (checksum.ts), then the
// files are copied into a writable rootfs of the stage by Docker's rules (copy.ts) and become
// the step's layer. COPY --from reads another stage's or an image's root filesystem through a
// read-only view. With --link the copy goes into an empty rootfs instead, and the layer it
// makes is stacked on the stage's (layer-step.ts, linkedLayerStep).
import { rm } from 'node:fs/promises';
import { openRootfsSource, selectionOf, type BuildContext } from '../context/index.js';
import { inView, type MountedRootfs } from '../container/runner.js';
import type { Digest } from '../digest.js';
import { resolveChown } from '../container/users.js';
import { DockerfileError } from '../errors.js';
import type { HistoryEntry } from '../image/config.js';
import type { ModeChange } from '../fs/mode.js';
import type { CopyStep } from '../parse/plan.js';
import { stageByName } from './stages.js';
import { copyFromContentKey, copyFromInputs, copyFromKey, copyInputs, copyKey } from './cachekeys.js';
import { sourcesChecksum } from './checksum.js';
import { copyIntoRootfs } from './copy.js';
import { inlineFilesKey, writeCopyHeredocs } from './heredoc.js';
import type { CopyWork } from './instructions.js';
import { layerStep, linkedLayerStep, type LayerStepOptions } from './layer-step.js';
import { GitSources } from './git.js';
import { Downloads } from './remote.js';
import { baseImage } from './base.js';
import { atLine, type BuildSession, type StageLayer, type StageState } from './session.js';

export async function copyStep(
  session: BuildSession,
  state: StageState,
  step: CopyStep,
  work: CopyWork,
  history: HistoryEntry,
): Promise<void> {
  // COPY --from a --build-context directory reads it as it reads the build context.
  const local =
    work.from !== undefined && !stageByName(session.plan, work.from, state.stage.index) ? session.localContexts.get(work.from) : undefined;
  if (work.from !== undefined && !local) return copyFrom(session, state, step, { ...work, from: work.from }, history);
  // One Downloads per step: a URL is fetched once, and the file copied is the one hashed.
  const downloads = new Downloads({
    tempDir: () => session.store.tempDir('add'),
    ...(session.req.signal ? { signal: session.req.signal } : {}),
  });
  // Likewise for git sources: resolved for the key, checked out for the copy, once each.
  const gits = new GitSources({
    tempDir: () => session.store.tempDir('git'),
    ...(session.req.signal ? { signal: session.req.signal } : {}),
    sshAgent: async () => {
      const agents = await session.sshAgents();
      // `--ssh default` (ssh.ts's DEFAULT_SSH_ID; that module is loaded only with the agents).
      if (!agents.has('default')) return undefined;
      const dir = await session.store.tempDir('git-ssh');
      const agent = await agents.forward('default', { dir, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
      return {
        socket: agent.socket,
        close: async () => {
          await agent.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  });
  try {
    await copyFromContext(session, state, step, work, history, downloads, gits, local ?? session.context);
  } finally {
    await Promise.all([downloads.close(), gits.close()]);
  }
}

async function copyFromContext(
  session: BuildSession,
  state: StageState,
  step: CopyStep,
  work: CopyWork,
  history: HistoryEntry,
  downloads: Downloads,
  gits: GitSources,
  context: BuildContext,
): Promise<void> {
  const { store } = session;
  const isAdd = work.kind === 'ADD';
  const pin = work.checksum;
  // Kept only when a cache may have to say which file made the step miss, or will be written.
  let listing: string | undefined;
  const keepListing = session.explainsMisses || session.cacheLog !== undefined;
  // Started with the build when nothing before the step could change it (checksums-ahead.ts).
  const ahead = !isAdd && context === session.context ? session.checksumAhead(work.sources, selectionOf(work)) : undefined;
  const computed = async (): Promise<string> => {
    const early = await ahead;
    if (early !== undefined && (!keepListing || early.listing !== undefined)) {
      listing = early.listing;
      return early.digest;
    }
    return sourcesChecksum(context, work.sources, {
      cacheDir: store.contextHashDir,
      memoDir: store.treeMemoDir,
      isAdd,
      downloads,
      gits,
      select: selectionOf(work),
      ...(session.req.signal ? { signal: session.req.signal } : {}),
      ...(work.keepGitDir !== undefined ? { keepGitDir: work.keepGitDir } : {}),
      ...(pin !== undefined ? { checksum: pin } : {}),
      ...(keepListing ? { onListing: (text: string) => (listing = text) } : {}),
    });
  };
  const checksum = work.sources.length ? await atLine(step.loc, computed, `${step.kind} failed: `) : '';
  const keyParts = {
    // A --link layer does not depend on the one below (linkedLayerStep).
    parent: work.link ? '' : (state.layers.at(-1)?.chainId ?? ''),
    kind: work.kind,
    sources: work.sources,
    checksum,
    dest: work.dest,
    workdir: work.workdir,
    chown: work.chown ?? '',
    chmod: chmodKey(work.chmod),
    inline: inlineFilesKey(work.inline),
    ...selectKey(work),
  };
  const key = copyKey(keyParts);
  const info = { inputs: copyInputs(keyParts), ...(listing !== undefined ? { listing } : {}) };
  await inLayer(session, state, work, key, history, info, async (mounted) =>
    atLine(
      step.loc,
      async () => {
        const owner = work.chown !== undefined ? await resolveChown(mounted.rootfs, work.chown) : undefined;
        const into = {
          dest: work.dest,
          workdir: work.workdir,
          rootfs: mounted.rootfs,
          ...(mounted.upperDir !== undefined ? { upperDir: mounted.upperDir } : {}),
          ...(session.req.signal ? { signal: session.req.signal } : {}),
          ...(owner ? { chown: owner } : {}),
          ...(work.chmod !== undefined ? { chmod: work.chmod } : {}),
        };
        if (work.sources.length) {
          await copyIntoRootfs({
            ...into,
            context,
            sources: work.sources,
            isAdd,
            downloads,
            gits,
            select: selectionOf(work),
            ...(work.keepGitDir !== undefined ? { keepGitDir: work.keepGitDir } : {}),
            ...(pin !== undefined ? { checksum: pin } : {}),
          });
        }
        if (work.inline.length) {
          // Heredoc files are copied after the context's sources, one copy each, never unpacked (BuildKit).
          const dir = await store.tempDir('heredoc');
          try {
            const epoch = session.req.sourceDateEpoch;
            const made = await writeCopyHeredocs(dir, work.inline, epoch !== undefined ? { mtime: new Date(epoch * 1000) } : {});
            for (const source of made.sources) await copyIntoRootfs({ ...into, context: made.context, sources: [source], isAdd: false });
          } finally {
            await rm(dir, { recursive: true, force: true });
          }
        }
        return true;
      },
      `${step.kind} failed: `,
    ),
  );
}

/** The layers a COPY --from reads: an earlier stage (by name or index), or an image. */
async function sourceLayers(session: BuildSession, state: StageState, step: CopyStep, from: string): Promise<readonly StageLayer[]> {
  const stage = stageByName(session.plan, from, state.stage.index);
  if (stage) {
    const r = session.built.get(stage.index);
    if (!r) throw new DockerfileError(step.loc, `stage ${from} was not built`);
    return r.layers;
  }
  if (/^\d+$/.test(from)) throw new DockerfileError(step.loc, `invalid from flag value ${from}: index out of bounds`);
  return (await baseImage(session, from, step.loc)).layers;
}

/**
 * COPY --from: the sources come from another stage's or an image's root filesystem, viewed
 * read-only for the copy. Their identity for the cache is that root's chainID: the same chain
 * is the same files.
 */
async function copyFrom(
  session: BuildSession,
  state: StageState,
  step: CopyStep,
  work: CopyWork & { from: string },
  history: HistoryEntry,
): Promise<void> {
  const layers = await sourceLayers(session, state, step, work.from);
  const keyParts = {
    parent: work.link ? '' : (state.layers.at(-1)?.chainId ?? ''),
    source: layers.at(-1)?.chainId ?? 'scratch',
    sources: work.sources,
    dest: work.dest,
    workdir: work.workdir,
    chown: work.chown ?? '',
    chmod: chmodKey(work.chmod),
    ...selectKey(work),
  };
  const key = copyFromKey(keyParts);
  // By content too, when a cache is read or written: a stage built again (other layers, the same
  // files) then still hits. It reads the source's files, so it is not worth it for the store alone.
  const byContent = !work.link && (session.remote !== undefined || session.cacheLog !== undefined);
  const contentKey = async (): Promise<Digest> => {
    const checksum = await atLine(step.loc, async () => {
      const top = (await session.stored(layers)).at(-1);
      return inView(session.store, top, async (root) =>
        sourcesChecksum(await openRootfsSource(root), work.sources, {
          isAdd: false,
          owners: true,
          select: selectionOf(work),
          ...(session.req.signal ? { signal: session.req.signal } : {}),
        }),
      );
    });
    const { source: _, ...rest } = keyParts;
    return copyFromContentKey({ ...rest, checksum });
  };
  const info = { inputs: copyFromInputs(keyParts), ...(byContent ? { contentKey } : {}) };
  await inLayer(session, state, work, key, history, info, async (mounted) =>
    atLine(
      step.loc,
      async () =>
        // The source's files are read now: layers known from a cache are unpacked first.
        inView(session.store, (await session.stored(layers)).at(-1), async (root) => {
          const owner = work.chown !== undefined ? await resolveChown(mounted.rootfs, work.chown) : undefined;
          await copyIntoRootfs({
            context: await openRootfsSource(root),
            sources: work.sources,
            dest: work.dest,
            workdir: work.workdir,
            rootfs: mounted.rootfs,
            ...(mounted.upperDir !== undefined ? { upperDir: mounted.upperDir } : {}),
            isAdd: false,
            keepOwners: true,
            select: selectionOf(work),
            ...(session.req.signal ? { signal: session.req.signal } : {}),
            ...(owner ? { chown: owner } : {}),
            ...(work.chmod !== undefined ? { chmod: work.chmod } : {}),
          });
          return true;
        }),
      'COPY failed: ',
    ),
  );
}

/** The step's layer: on the stage's, or (--link) apart from it and then stacked. */
function inLayer(
  session: BuildSession,
  state: StageState,
  work: CopyWork,
  key: Digest,
  history: HistoryEntry,
  info: LayerStepOptions,
  copy: (mounted: MountedRootfs) => Promise<boolean>,
): Promise<void> {
  return work.link ? linkedLayerStep(session, state, key, history, info, copy) : layerStep(session, state, key, history, info, copy);
}

/** --chmod in the cache key: octal bits as before symbolic modes existed, else the text. */
function chmodKey(mode: ModeChange | undefined): number | string {
  return mode === undefined ? '' : (mode.octal ?? mode.text);
}

/** What joins the key only when used, so that plain steps keep their keys. */
function selectKey(work: CopyWork): { exclude?: readonly string[]; parents?: boolean; link?: boolean } {
  return {
    ...(work.exclude ? { exclude: work.exclude } : {}),
    ...(work.parents ? { parents: true } : {}),
    ...(work.link ? { link: true } : {}),
  };
}
