// All overlayfs knowledge lives here (moby's overlay2 driver is the model):
//   <home>/<id>/diff   the snapshot's own files: an upperdir while mounted, a lowerdir after
//   <home>/<id>/work   overlay's scratch dir, same filesystem as diff
//   <home>/<id>/link   the snapshot's 26-character short name
//   <home>/<id>/lower  the parents' short links, top first: `l/AAA:l/BBB`
//   <home>/<id>/merged the mount point
//   <home>/l/<short> -> ../<id>/diff
// Lower chains are written with the short links and mounted from inside <home>, because the
// whole mount option string must fit in one page: absolute paths would cap an image at a few
// dozen layers.
import { mkdir, readFile, writeFile, rm, symlink, readdir, stat } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Change, LayerDescriptor } from '../layer/types.js';
import { mount, unmount, walk, mountsUnder } from '../runtime/helper.js';
import type { InitLayer, MountedRootfs, Snapshotter, Bind } from './snapshotter.js';

const LINK_DIR = 'l';
const LINK_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** The kernel copies mount options into a single page. */
const PAGE_SIZE = 4096;
/** Below this depth, overlayfs refuses the stack (OVL_MAX_STACK). */
export const MAX_LOWER_LAYERS = 500;

const OPAQUE_XATTR = 'trusted.overlay.opaque';

function newLinkName(): string {
  let s = '';
  for (let i = 0; i < 26; i++) s += LINK_ALPHABET[randomInt(LINK_ALPHABET.length)];
  return s;
}

/**
 * Options that make the upperdir a complete change set. Docker turns `index` off; we also turn
 * off redirect_dir and metacopy, which would otherwise let a rename or chmod leave data in lower
 * layers that a diff of the upperdir alone cannot express. Passed only when the kernel knows
 * them (its module exposes a parameter of that name).
 */
function diffSafeOptions(): string[] {
  const params = '/sys/module/overlay/parameters';
  return ['index', 'redirect_dir', 'metacopy']
    .filter((p) => existsSync(join(params, p)))
    .map((p) => `${p}=off`);
}

export class Overlay2Snapshotter implements Snapshotter {
  readonly name = 'overlay2' as const;
  private readonly extraOptions = diffSafeOptions();

  constructor(readonly home: string) {}

  private dir(id: string): string {
    return join(this.home, id);
  }

  private initId(id: string): string {
    return `${id}-init`;
  }

  private async createDir(id: string, parent: string | undefined): Promise<void> {
    const dir = this.dir(id);
    await mkdir(join(dir, 'diff'), { recursive: true, mode: 0o755 });
    await mkdir(join(dir, 'work'), { recursive: true, mode: 0o700 });
    const link = newLinkName();
    await mkdir(join(this.home, LINK_DIR), { recursive: true, mode: 0o700 });
    await symlink(join('..', id, 'diff'), join(this.home, LINK_DIR, link));
    await writeFile(join(dir, 'link'), link);
    if (parent !== undefined) {
      const parentLink = (await readFile(join(this.dir(parent), 'link'), 'utf8')).trim();
      const parentLower = await this.lowerOf(parent);
      await writeFile(join(dir, 'lower'), [`${LINK_DIR}/${parentLink}`, ...parentLower].join(':'));
    }
  }

  async prepare(id: string, parent: string | undefined): Promise<void> {
    await this.createDir(id, parent);
  }

  /** The parents' short-link paths, top first. */
  private async lowerOf(id: string): Promise<string[]> {
    try {
      const s = (await readFile(join(this.dir(id), 'lower'), 'utf8')).trim();
      return s === '' ? [] : s.split(':');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  async mount(id: string, init?: InitLayer): Promise<MountedRootfs> {
    const lowers = await this.lowerOf(id);
    const binds: Bind[] = [];
    if (init) {
      const initId = this.initId(id);
      await this.createDir(initId, undefined);
      const initDiff = join(this.dir(initId), 'diff');
      for (const d of init.dirs) await mkdir(join(initDiff, d), { recursive: true, mode: 0o755 });
      for (const [path, content] of Object.entries(init.files)) {
        await mkdir(dirname(join(initDiff, path)), { recursive: true, mode: 0o755 });
        await writeFile(join(initDiff, path), content, { mode: 0o644 });
        binds.push({ source: join(initDiff, path), target: `/${path}` });
      }
      const initLink = (await readFile(join(this.dir(initId), 'link'), 'utf8')).trim();
      lowers.unshift(`${LINK_DIR}/${initLink}`);
    }
    if (lowers.length === 0) {
      // A bottom layer with nothing beneath it needs no overlay: its diff dir is the rootfs.
      return { rootfs: join(this.dir(id), 'diff'), binds };
    }
    if (lowers.length > MAX_LOWER_LAYERS) {
      throw new Error(`too many layers: ${lowers.length} (overlayfs stacks at most ${MAX_LOWER_LAYERS})`);
    }
    const merged = join(this.dir(id), 'merged');
    await mkdir(merged, { recursive: true, mode: 0o700 });
    const options = [
      `lowerdir=${lowers.join(':')}`,
      `upperdir=${join(id, 'diff')}`,
      `workdir=${join(id, 'work')}`,
      ...this.extraOptions,
    ].join(',');
    if (Buffer.byteLength(options) >= PAGE_SIZE) {
      await mount({ type: 'overlay', source: 'overlay', target: merged, options: this.extraOptions.join(','), cwd: this.home, lowerdirs: lowers, upperdir: join(id, 'diff'), workdir: join(id, 'work') });
    } else {
      await mount({ type: 'overlay', source: 'overlay', target: merged, options, cwd: this.home });
    }
    return { rootfs: merged, binds };
  }

  async unmount(id: string): Promise<void> {
    const merged = join(this.dir(id), 'merged');
    if ((await mountsUnder(merged)).includes(merged)) await unmount(merged);
    await this.removeDir(this.initId(id));
  }

  async *changes(id: string): AsyncIterable<Change> {
    const diff = join(this.dir(id), 'diff');
    for await (const rec of walk(diff)) {
      if (rec.type === 'c' && rec.devMajor === 0 && rec.devMinor === 0) {
        yield { kind: 'whiteout', name: rec.path };
        continue;
      }
      yield { kind: 'entry', name: rec.path, record: rec, source: join(diff, rec.path) };
      if (rec.type === 'd' && rec.xattrs?.[OPAQUE_XATTR]?.toString() === 'y') {
        yield { kind: 'opaque', name: rec.path };
      }
    }
  }

  async apply(id: string, tar: NodeJS.ReadableStream, tarSplitPath: string): Promise<LayerDescriptor> {
    // Loaded here: only pull, load and import unpack layers; a build never does.
    const { applyLayer } = await import('../layer/apply.js');
    return applyLayer(tar, join(this.dir(id), 'diff'), { whiteouts: 'overlay', tarSplitPath });
  }

  fileRoot(id: string): string {
    return join(this.dir(id), 'diff');
  }

  private async removeDir(id: string): Promise<void> {
    const dir = this.dir(id);
    let link: string | undefined;
    try {
      link = (await readFile(join(dir, 'link'), 'utf8')).trim();
    } catch {
      link = undefined;
    }
    if (link) await rm(join(this.home, LINK_DIR, link), { force: true });
    await rm(dir, { recursive: true, force: true });
  }

  async remove(id: string): Promise<void> {
    await this.unmount(id);
    await this.removeDir(id);
  }

  describe(stack: readonly string[]): Record<string, string> | null {
    const top = stack.at(-1);
    if (top === undefined) return null;
    const lowers = stack.slice(0, -1).reverse().map((id) => join(this.dir(id), 'diff'));
    return {
      ...(lowers.length ? { LowerDir: lowers.join(':') } : {}),
      MergedDir: join(this.dir(top), 'merged'),
      UpperDir: join(this.dir(top), 'diff'),
      WorkDir: join(this.dir(top), 'work'),
    };
  }

  async list(): Promise<string[]> {
    try {
      const names = await readdir(this.home);
      const out: string[] = [];
      for (const n of names) {
        if (n === LINK_DIR || n.startsWith('.')) continue;
        if ((await stat(join(this.home, n))).isDirectory()) out.push(n);
      }
      return out;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }
}
