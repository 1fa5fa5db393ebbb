// What a user of an image sees, read from a saved image archive (`docker save` / `tsbuild save`,
// Docker's archive layout: manifest.json, a config JSON, one tar per layer): the flattened
// filesystem with whiteouts applied, and the parts of the config a container runs with.
// Reads the archives with node-tar, independently of tsbuild's own layer code.
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { Header, Pax, type HeaderData } from 'tar';

export interface FsEntry {
  readonly type: 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';
  /** Permission bits with setuid, setgid and sticky (0o7777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Regular files only. */
  readonly size?: number;
  readonly sha256?: string;
  /** Symlinks: the target as stored. */
  readonly target?: string;
  /** Regular files with more than one name: the first of its names in sort order. */
  readonly hardlinkGroup?: string;
}

/** Path (absolute, no trailing slash) → entry. */
export type FlatFs = Map<string, FsEntry>;

/** The config fields compared, as the image config's `config` object has them. */
export const CONFIG_FIELDS = [
  'Env',
  'Cmd',
  'Entrypoint',
  'WorkingDir',
  'User',
  'ExposedPorts',
  'Labels',
  'Volumes',
  'StopSignal',
  'Healthcheck',
  'Shell',
  'OnBuild',
] as const;
export type ConfigField = (typeof CONFIG_FIELDS)[number];

export interface SavedImage {
  readonly fs: FlatFs;
  readonly config: Partial<Record<ConfigField, unknown>>;
}

interface ArchiveMember {
  readonly data?: Buffer;
  readonly link?: string;
}

/** Every member of a tar held in memory, by normalised path. */
async function readMembers(tar: Buffer): Promise<Map<string, ArchiveMember>> {
  const out = new Map<string, ArchiveMember>();
  await eachEntry(tar, async (e, data) => {
    const name = normalise(e.path);
    if (e.type === 'SymbolicLink') out.set(name, { link: e.linkpath ?? '' });
    else if (e.type === 'File' || e.type === 'OldFile') out.set(name, { data });
  });
  return out;
}

function normalise(p: string): string {
  const n = posix.normalize(`/${p}`);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** One tar entry, its PAX and GNU long-name records applied. */
interface TarEntry {
  readonly path: string;
  readonly type: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly linkpath?: string;
}

/**
 * Calls `fn` with each entry of a tar and its content, in archive order. Decodes the headers
 * with node-tar's Header and Pax but not its Parser, which drops entries it finds odd: Docker
 * writes whiteouts of overlayfs's shared whiteout inode as regular files that keep the hardlink
 * name of the first one.
 */
async function eachEntry(tar: Buffer, fn: (e: TarEntry, data: Buffer) => Promise<void> | void): Promise<void> {
  let ex: HeaderData | undefined;
  let gex: HeaderData | undefined;
  for (let off = 0; off + 512 <= tar.length;) {
    const h = new Header(tar, off, ex, gex);
    if (h.nullBlock) break;
    if (!h.cksumValid) throw new Error(`tar header at ${off}: checksum failure`);
    const size = h.size ?? 0;
    const data = tar.subarray(off + 512, off + 512 + size);
    off += 512 + 512 * Math.ceil(size / 512);
    switch (h.type) {
      case 'ExtendedHeader':
      case 'OldExtendedHeader':
        ex = Pax.parse(data.toString(), ex, false);
        continue;
      case 'GlobalExtendedHeader':
        gex = Pax.parse(data.toString(), gex, true);
        continue;
      case 'NextFileHasLongPath':
      case 'OldGnuLongPath':
        ex = { ...ex, path: data.toString().replace(/\0.*/s, '') };
        continue;
      case 'NextFileHasLongLinkpath':
        ex = { ...ex, linkpath: data.toString().replace(/\0.*/s, '') };
        continue;
    }
    ex = undefined;
    if (!h.path) throw new Error(`tar header at ${off}: no path`);
    await fn(
      { path: h.path, type: h.type, mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0, ...(h.linkpath ? { linkpath: h.linkpath } : {}) },
      Buffer.from(data),
    );
  }
}

function member(members: Map<string, ArchiveMember>, name: string): Buffer {
  let path = normalise(name);
  for (let hops = 0; hops < 8; hops++) {
    const m = members.get(path);
    if (!m) break;
    if (m.data) return m.data;
    path = normalise(posix.join(posix.dirname(path), m.link!));
  }
  throw new Error(`the archive has no file ${name}`);
}

const TYPES: Record<string, FsEntry['type']> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Directory: 'dir',
  SymbolicLink: 'symlink',
  CharacterDevice: 'char',
  BlockDevice: 'block',
  FIFO: 'fifo',
};

/** An entry while layers are applied: regular files carry an inode number shared by their hardlinks. */
type Working = Map<string, FsEntry & { ino?: number }>;

let nextIno = 1;

/** Applies one layer tar on top of `fs`: whiteouts, opaque directories, replaced entries, hardlinks. */
async function applyLayer(fs: Working, tar: Buffer): Promise<void> {
  const removeBelow = (dir: string): void => {
    for (const p of [...fs.keys()]) if (p.startsWith(`${dir}/`)) fs.delete(p);
  };
  // Opaque markers clear what lower layers had in the directory, not what this layer adds: a
  // layer writer may put the marker after the directory's new entries.
  const opaque: string[] = [];
  const added = new Set<string>();
  // A hardlink names a file of the same layer; it shares that file's inode from here on (a later
  // layer that changes one name copies it up, leaving the other names as they were).
  const links: [string, string][] = [];
  await eachEntry(tar, (e, data) => {
    const path = normalise(e.path);
    const base = posix.basename(path);
    const dir = posix.dirname(path);
    if (base === '.wh..wh..opq') {
      opaque.push(dir);
      return;
    }
    if (base.startsWith('.wh.')) {
      const gone = posix.join(dir, base.slice(4));
      fs.delete(gone);
      removeBelow(gone);
      return;
    }
    if (path === '/') return;
    added.add(path);
    const old = fs.get(path);
    if (old && !(old.type === 'dir' && e.type === 'Directory')) removeBelow(path);
    const common = { mode: e.mode & 0o7777, uid: e.uid, gid: e.gid };
    if (e.type === 'Link') {
      links.push([path, normalise(e.linkpath ?? '')]);
      return;
    }
    const type = TYPES[e.type];
    if (!type) throw new Error(`unexpected tar entry type ${e.type} for ${path}`);
    if (type === 'file')
      fs.set(path, { type, ...common, size: data.length, sha256: createHash('sha256').update(data).digest('hex'), ino: nextIno++ });
    else if (type === 'symlink') fs.set(path, { type, ...common, target: e.linkpath ?? '' });
    else fs.set(path, { type, ...common });
  });
  for (const [path, target] of links) {
    const t = fs.get(target);
    if (!t || t.type !== 'file') throw new Error(`hardlink ${path} -> ${target}: no regular file there`);
    fs.set(path, t);
  }
  for (const dir of opaque) {
    for (const p of [...fs.keys()]) if (p.startsWith(`${dir}/`) && !added.has(p)) fs.delete(p);
  }
}

/** The flattened filesystem: every name of a file with several names says which group it is in. */
function finish(fs: Working): FlatFs {
  const names = new Map<number, string[]>();
  for (const [p, e] of fs) if (e.ino !== undefined) names.set(e.ino, [...(names.get(e.ino) ?? []), p]);
  const out: FlatFs = new Map();
  for (const [p, { ino, ...e }] of fs) {
    const group = ino !== undefined ? names.get(ino)! : [];
    out.set(p, group.length > 1 ? { ...e, hardlinkGroup: [...group].sort()[0]! } : e);
  }
  return out;
}

/** Reads a `docker save` / `tsbuild save` archive holding one image. */
export async function readSavedImage(archive: Buffer): Promise<SavedImage> {
  const members = await readMembers(archive);
  const manifest = JSON.parse(member(members, 'manifest.json').toString()) as { Config: string; Layers: string[] }[];
  if (manifest.length !== 1) throw new Error(`expected one image in the archive, found ${manifest.length}`);
  const { Config, Layers } = manifest[0]!;
  const config = JSON.parse(member(members, Config).toString()) as { config?: Record<string, unknown> };
  const fs: Working = new Map();
  for (const layer of Layers) await applyLayer(fs, member(members, layer));
  const picked: Partial<Record<ConfigField, unknown>> = {};
  for (const f of CONFIG_FIELDS) picked[f] = config.config?.[f];
  return { fs: finish(fs), config: picked };
}
