// docker run's mount and environment flags, read into what the helper applies: `-v
// HOST:CONTAINER[:ro]`, `--mount type=bind|tmpfs,...`, `--tmpfs PATH[:OPTIONS]` and `--env-file`.
// The syntax follows the docker CLI (cli/command/container/opts.go, opts/mount.go,
// opts/parse.go); what tsbuild has no use for (named volumes, propagation, SELinux labels) is
// refused by name rather than ignored. Host paths are checked here, before any snapshot exists,
// so a typo is one error line and not a half-made container.
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InvalidInputError } from '../errors.js';
import { ramInBytes } from '../parse/mounts.js';
import type { StepMount } from '../runtime/types.js';

/** A mount of `tsbuild run`: a host path bound in, or a fresh tmpfs. */
export type RunMount = Extract<StepMount, { type: 'bind' | 'tmpfs' }>;

/** docker run's tmpfs mounts are world-writable with the sticky bit, like /tmp, unless told otherwise. */
const TMPFS_MODE = 0o1777;

function containerPath(flag: string, spec: string, target: string | undefined): string {
  if (target === undefined || target === '') throw new InvalidInputError(`${flag} ${spec}: the container path is missing`);
  if (!target.startsWith('/')) throw new InvalidInputError(`${flag} ${spec}: the container path ${target} is not absolute`);
  if (target.includes(':')) throw new InvalidInputError(`${flag} ${spec}: the container path ${target} contains ':'`);
  return target;
}

/** An absolute host path that exists; relative ones (docker 23's `./dir`) against the working directory. */
async function hostPath(flag: string, spec: string, source: string): Promise<string> {
  const path = resolve(source);
  try {
    await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(err)})`;
    throw new InvalidInputError(`${flag} ${spec}: bind source path ${path} ${why}`);
  }
  return path;
}

function size(flag: string, spec: string, value: string): number {
  let bytes: number;
  try {
    bytes = ramInBytes(value);
  } catch {
    throw new InvalidInputError(`${flag} ${spec}: invalid size ${value} (bytes, or with k, m or g)`);
  }
  if (bytes < 1) throw new InvalidInputError(`${flag} ${spec}: the size must be at least 1 byte`);
  return bytes;
}

function octalMode(flag: string, spec: string, value: string): number {
  if (!/^[0-7]{1,4}$/.test(value)) throw new InvalidInputError(`${flag} ${spec}: invalid mode ${value} (octal, at most 7777)`);
  return parseInt(value, 8);
}

/** `-v HOST:CONTAINER[:ro|rw]`. A missing host path is an error (docker would make a directory). */
export async function parseVolume(spec: string): Promise<RunMount> {
  const parts = spec.split(':');
  if (parts.length < 2) throw new InvalidInputError(`-v ${spec}: anonymous volumes are not supported: use HOST:CONTAINER`);
  if (parts.length > 3) throw new InvalidInputError(`-v ${spec}: expected HOST:CONTAINER[:ro]`);
  const [source, target, options] = parts as [string, string, string | undefined];
  if (!source.startsWith('/') && !source.startsWith('.')) {
    throw new InvalidInputError(`-v ${spec}: named volumes are not supported: the host path must be absolute or start with .`);
  }
  let readonly = false;
  for (const option of options === undefined ? [] : options.split(',')) {
    if (option !== 'ro' && option !== 'rw') throw new InvalidInputError(`-v ${spec}: unsupported option ${option} (use ro or rw)`);
    readonly = option === 'ro';
  }
  const dst = containerPath('-v', spec, target);
  return { type: 'bind', source: await hostPath('-v', spec, source), target: dst, readonly };
}

function bool(flag: string, spec: string, key: string, value: string | undefined): boolean {
  if (value === undefined || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new InvalidInputError(`${flag} ${spec}: invalid value ${value} for ${key} (true or false)`);
}

/** `--mount type=bind,source=…,target=…[,readonly]` or `--mount type=tmpfs,target=…[,tmpfs-size=…][,tmpfs-mode=…]`. */
export async function parseMount(spec: string): Promise<RunMount> {
  const f = '--mount';
  const fields = new Map<string, string | undefined>();
  for (const field of spec.split(',')) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const alias: Record<string, string> = { src: 'source', destination: 'target', dst: 'target', ro: 'readonly' };
    fields.set(alias[key] ?? key, eq < 0 ? undefined : field.slice(eq + 1));
  }
  const type = fields.get('type') ?? 'volume';
  fields.delete('type');
  if (type !== 'bind' && type !== 'tmpfs') throw new InvalidInputError(`${f} ${spec}: type ${type} is not supported: use bind or tmpfs`);
  const allowed = type === 'bind' ? ['source', 'target', 'readonly'] : ['target', 'tmpfs-size', 'tmpfs-mode'];
  for (const key of fields.keys()) {
    if (!allowed.includes(key))
      throw new InvalidInputError(`${f} ${spec}: unsupported key ${key} for type ${type} (${allowed.join(', ')})`);
  }
  const target = containerPath(f, spec, fields.get('target'));
  if (type === 'tmpfs') {
    const bytes = fields.get('tmpfs-size');
    const mode = fields.get('tmpfs-mode');
    return {
      type: 'tmpfs',
      target,
      mode: mode === undefined ? TMPFS_MODE : octalMode(f, spec, mode),
      ...(bytes !== undefined ? { sizeBytes: size(f, spec, bytes) } : {}),
    };
  }
  const source = fields.get('source');
  if (!source) throw new InvalidInputError(`${f} ${spec}: source is required for a bind mount`);
  const readonly = fields.has('readonly') && bool(f, spec, 'readonly', fields.get('readonly'));
  return { type: 'bind', source: await hostPath(f, spec, source), target, readonly };
}

/** `--tmpfs PATH[:OPTIONS]`, OPTIONS a list of size=N, mode=OCTAL and rw. */
export function parseTmpfs(spec: string): RunMount {
  const f = '--tmpfs';
  const colon = spec.indexOf(':');
  const target = containerPath(f, spec, colon < 0 ? spec : spec.slice(0, colon));
  let mode = TMPFS_MODE;
  let sizeBytes: number | undefined;
  for (const option of colon < 0 ? [] : spec.slice(colon + 1).split(',')) {
    const [key, value] = option.split('=', 2) as [string, string | undefined];
    if (key === 'size' && value !== undefined) sizeBytes = size(f, spec, value);
    else if (key === 'mode' && value !== undefined) mode = octalMode(f, spec, value);
    else if (option !== 'rw') throw new InvalidInputError(`${f} ${spec}: unsupported option ${option} (use size=, mode= or rw)`);
  }
  return { type: 'tmpfs', target, mode, ...(sizeBytes !== undefined ? { sizeBytes } : {}) };
}

/**
 * `--env-file FILE`, docker's format: one KEY=VALUE a line, the value taken verbatim (no quotes
 * removed); blank lines and lines starting with # skipped; a bare KEY takes tsbuild's own value,
 * or is left out if tsbuild has none.
 */
export async function readEnvFile(file: string, hostEnv: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InvalidInputError(
      `--env-file ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  const out: string[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.replace(/\r$/, '').trimStart();
      if (line === '' || line.startsWith('#')) return;
      const eq = line.indexOf('=');
      const key = eq < 0 ? line : line.slice(0, eq);
      if (key === '') throw new InvalidInputError(`--env-file ${file}:${i + 1}: no variable name`);
      if (/\s/.test(key)) throw new InvalidInputError(`--env-file ${file}:${i + 1}: variable '${key.trim()}' contains whitespace`);
      if (eq >= 0) out.push(line);
      else if (hostEnv[key] !== undefined) out.push(`${key}=${hostEnv[key]}`);
    });
  return out;
}

/** Docker applies mounts parents first, so one at /a/b lands inside one at /a. */
export function mountOrder(mounts: readonly RunMount[]): RunMount[] {
  const depth = (m: RunMount): number => m.target.split('/').filter(Boolean).length;
  return [...mounts].sort((a, b) => depth(a) - depth(b));
}
