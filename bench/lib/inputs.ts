// The workloads' inputs, generated from a seed: the same seed gives the same trees, byte for
// byte, with the same names, sizes, modes and mtimes, on any machine. Content is a mix of
// word-like text (compresses about as well as source code) and pseudo-random bytes (as
// already-compressed assets do), so that gzip and zstd have realistic work to do.
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Every generated file and directory gets this mtime (2020-01-01T00:00:00Z). */
const MTIME = new Date(Date.UTC(2020, 0, 1));

/** mulberry32: a small, fast 32-bit PRNG; plenty for choosing names and sizes. */
export class Rng {
  private state: number;
  constructor(seed: string) {
    this.state = createHash('sha256').update(seed).digest().readUInt32LE(0);
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  /** A normal deviate (Box-Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

/** Pseudo-random bytes from AES-128-CTR keyed by the seed: deterministic and fast (GB/s). */
function randomBytes(seed: string, size: number): Buffer {
  const key = createHash('sha256').update(`bytes:${seed}`).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return cipher.update(Buffer.alloc(size));
}

/** Words for text content: a vocabulary fixed by the seed, with code-like punctuation. */
class TextSource {
  private readonly words: Buffer[];
  constructor(private readonly rng: Rng) {
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    const punct = ['(', ')', '{', '}', ';', '.', ',', ' = ', ' => ', '\n', '\n  ', '\n    '];
    this.words = [];
    for (let i = 0; i < 2000; i++) {
      let w = '';
      const n = rng.int(2, 11);
      for (let j = 0; j < n; j++) w += letters[rng.int(0, 25)];
      this.words.push(Buffer.from(w + (rng.next() < 0.3 ? rng.pick(punct) : ' ')));
    }
  }
  /** Exactly `size` bytes of word salad. */
  text(size: number): Buffer {
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    // A Zipf-like choice (squaring the uniform deviate favours the first words), as real text.
    while (at < size) {
      const u = this.rng.next();
      const w = this.words[Math.floor(u * u * this.words.length)]!;
      at += w.copy(out, at, 0, Math.min(w.length, size - at));
    }
    return out;
  }
}

/** Runs `fn` over `items` with at most `width` calls in flight. */
async function pool<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}

export interface FileSpec {
  readonly path: string;
  readonly size: number;
  /** Fraction of the content that is random bytes (0 = all text). */
  readonly random: number;
  readonly mode: number;
}

export interface TreeSpec {
  readonly files: FileSpec[];
  readonly symlinks: { readonly path: string; readonly target: string }[];
}

export interface TreeStats {
  readonly files: number;
  readonly symlinks: number;
  readonly bytes: number;
}

/** Writes a tree under `root`, every entry with the fixed mtime. */
export async function writeTree(root: string, seed: string, spec: TreeSpec): Promise<TreeStats> {
  const text = new TextSource(new Rng(`text:${seed}`));
  const dirs = new Set<string>();
  for (const f of [...spec.files, ...spec.symlinks]) {
    for (let d = dirname(f.path); d !== '.' && !dirs.has(d); d = dirname(d)) dirs.add(d);
  }
  const sortedDirs = [...dirs].sort();
  for (const d of sortedDirs) await mkdir(join(root, d), { recursive: true, mode: 0o755 });
  // Contents are made in order (the text source is sequential), written with some parallelism.
  let bytes = 0;
  const contents = spec.files.map((f, i) => {
    const nRandom = Math.floor(f.size * f.random);
    bytes += f.size;
    return () => Buffer.concat([text.text(f.size - nRandom), nRandom > 0 ? randomBytes(`${seed}:${i}`, nRandom) : Buffer.alloc(0)]);
  });
  const batch = 256;
  for (let i = 0; i < spec.files.length; i += batch) {
    const slice = spec.files.slice(i, i + batch).map((f, j) => ({ f, data: contents[i + j]!() }));
    await pool(slice, 32, async ({ f, data }) => {
      const p = join(root, f.path);
      await writeFile(p, data, { mode: f.mode });
      await utimes(p, MTIME, MTIME);
    });
  }
  for (const s of spec.symlinks) await symlink(s.target, join(root, s.path));
  for (const d of sortedDirs.reverse()) await utimes(join(root, d), MTIME, MTIME);
  return { files: spec.files.length, symlinks: spec.symlinks.length, bytes };
}

/**
 * A node_modules-like tree: packages with package.json, README, LICENSE, lib/ and dist/
 * sources, some nested deeper, a few binary addons, and .bin symlinks. File sizes are
 * log-normal (most small, a few large), scaled so the total is close to `totalBytes`.
 */
export function nodeModulesSpec(seed: string, fileCount: number, totalBytes: number): TreeSpec {
  const rng = new Rng(`node_modules:${seed}`);
  const files: FileSpec[] = [];
  const symlinks: TreeSpec['symlinks'] = [];
  const raw: number[] = [];
  let pkg = 0;
  while (files.length < fileCount) {
    const name = `${rng.next() < 0.15 ? `@scope${rng.int(0, 20)}/` : ''}pkg-${pkg++}-${rng.int(0, 99999).toString(36)}`;
    const base = `node_modules/${name}`;
    const perPackage = Math.min(fileCount - files.length, rng.int(8, 90));
    const add = (path: string, mode = 0o644, random = 0): void => {
      files.push({ path, size: 0, random, mode });
      raw.push(Math.exp(rng.normal() * 1.2));
    };
    add(`${base}/package.json`);
    if (perPackage > 1) add(`${base}/README.md`);
    if (perPackage > 2) add(`${base}/LICENSE`);
    for (let i = 3; i < perPackage; i++) {
      const r = rng.next();
      if (r < 0.02) add(`${base}/build/Release/addon${i}.node`, 0o755, 1);
      else if (r < 0.3) add(`${base}/dist/${rng.pick(['index', 'esm', 'cjs', 'umd'])}/m${i}.js`);
      else if (r < 0.45) add(`${base}/lib/internal/${rng.pick(['util', 'core', 'streams', 'errors'])}/f${i}.js`);
      else if (r < 0.55) add(`${base}/types/f${i}.d.ts`);
      else add(`${base}/lib/f${i}.js`);
    }
    if (rng.next() < 0.1 && files.length < fileCount) {
      files.push({ path: `${base}/bin/cli.js`, size: 0, random: 0, mode: 0o755 });
      raw.push(Math.exp(rng.normal() * 1.2));
      symlinks.push({ path: `node_modules/.bin/${name.replace('/', '-')}`, target: `../${name}/bin/cli.js` });
    }
  }
  const scale = totalBytes / raw.reduce((a, b) => a + b, 0);
  return { files: files.map((f, i) => ({ ...f, size: Math.max(1, Math.min(4 << 20, Math.round(raw[i]! * scale))) })), symlinks };
}

/** `count` small text files (64 to 512 bytes) in directories of 100: a large base image's shape. */
export function manySmallFilesSpec(seed: string, count: number, top: string): TreeSpec {
  const rng = new Rng(`small:${seed}`);
  const files: FileSpec[] = [];
  for (let i = 0; i < count; i++) {
    const dir = `${top}/d${String(Math.floor(i / 100)).padStart(4, '0')}`;
    files.push({ path: `${dir}/f${String(i).padStart(6, '0')}.txt`, size: rng.int(64, 512), random: 0, mode: 0o644 });
  }
  return { files, symlinks: [] };
}

/**
 * About `totalBytes` in files of 4 KiB to 4 MiB (log-uniform), a quarter of each file
 * pseudo-random: an application image's payload, for save and push.
 */
export function payloadSpec(seed: string, totalBytes: number, top: string): TreeSpec {
  const rng = new Rng(`payload:${seed}`);
  const files: FileSpec[] = [];
  let total = 0;
  while (total < totalBytes) {
    const size = Math.min(totalBytes - total, Math.round(Math.exp(Math.log(4096) + rng.next() * Math.log(1024))));
    files.push({ path: `${top}/part${Math.floor(files.length / 50)}/blob${files.length}.dat`, size, random: 0.25, mode: 0o644 });
    total += size;
  }
  return { files, symlinks: [] };
}
