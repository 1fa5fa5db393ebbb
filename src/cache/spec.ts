// `--cache-to` and `--cache-from` as docker buildx writes them: `type=registry,ref=REF,…`,
// `type=local,dest=DIR` / `type=local,src=DIR`, `type=inline`, and a bare `IMAGE` (a stored
// image, as the classic builder takes it, or else an image in a registry carrying an inline
// cache). A malformed value is an error before the build starts; options buildx has that make no
// difference here (`image-manifest`, `force-compression`) are accepted.
import { resolve } from 'node:path';
import { InvalidInputError } from '../errors.js';
import { parseReference } from '../image/reference.js';

export type CacheMode = 'min' | 'max';
export type CacheCompression = 'gzip' | 'zstd';

/** Where a cache is exported to. */
export type CacheTo =
  | { readonly type: 'registry'; readonly ref: string; readonly options: ExportOptions }
  | { readonly type: 'local'; readonly dir: string; readonly options: ExportOptions }
  /** The records ride in the built image's config (mode=min, as BuildKit's inline cache). */
  | { readonly type: 'inline' };

export interface ExportOptions {
  readonly mode: CacheMode;
  readonly compression: CacheCompression;
  /** OCI media types for the manifest and layers (the default); false: Docker's schema 2. */
  readonly ociMediaTypes: boolean;
  /** A failed export is a warning, not a failed build. */
  readonly ignoreError: boolean;
}

/** Where a cache is read from; several are tried in the order given. */
export type CacheFrom =
  | { readonly type: 'registry'; readonly ref: string }
  | { readonly type: 'local'; readonly dir: string }
  /** A bare IMAGE: the store's image of that name if there is one, else the registry's. */
  | { readonly type: 'image'; readonly ref: string };

const UNSUPPORTED = new Set(['gha', 's3', 'azblob']);

function fields(flag: string, spec: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of spec.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) throw new InvalidInputError(`invalid ${flag} ${spec}: want type=TYPE,KEY=VALUE,...`);
    out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  // buildx: without a type, a ref= names a registry cache.
  if (!out.has('type') && out.has('ref')) out.set('type', 'registry');
  const type = out.get('type');
  if (type === undefined) throw new InvalidInputError(`invalid ${flag} ${spec}: type= is missing`);
  if (UNSUPPORTED.has(type))
    throw new InvalidInputError(`unsupported ${flag} type=${type}: use type=registry or type=local (a directory your CI caches)`);
  return out;
}

function onlyKnown(flag: string, spec: string, f: Map<string, string>, known: readonly string[]): void {
  for (const k of f.keys()) {
    if (k !== 'type' && !known.includes(k)) throw new InvalidInputError(`invalid ${flag} ${spec}: unknown option ${k}`);
  }
}

function required(flag: string, spec: string, f: Map<string, string>, key: string): string {
  const v = f.get(key);
  if (!v) throw new InvalidInputError(`invalid ${flag} ${spec}: ${key}= is missing`);
  return v;
}

function checkedRef(flag: string, spec: string, ref: string): string {
  try {
    parseReference(ref);
  } catch (err) {
    throw new InvalidInputError(`invalid ${flag} ${spec}: ${(err as Error).message}`);
  }
  return ref;
}

function bool(flag: string, spec: string, f: Map<string, string>, key: string, dflt: boolean): boolean {
  const v = f.get(key);
  if (v === undefined) return dflt;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new InvalidInputError(`invalid ${flag} ${spec}: ${key}=${v}: want true or false`);
}

const EXPORT_OPTIONS = [
  'mode',
  'compression',
  'compression-level',
  'force-compression',
  'oci-mediatypes',
  'image-manifest',
  'ignore-error',
];

function exportOptions(spec: string, f: Map<string, string>): ExportOptions {
  const flag = '--cache-to';
  const mode = f.get('mode') ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new InvalidInputError(`invalid ${flag} ${spec}: mode=${mode}: want min or max`);
  const compression = f.get('compression') ?? 'gzip';
  if (compression !== 'gzip' && compression !== 'zstd')
    throw new InvalidInputError(`invalid ${flag} ${spec}: compression=${compression}: want gzip or zstd`);
  const level = f.get('compression-level');
  if (level !== undefined && !/^\d+$/.test(level)) throw new InvalidInputError(`invalid ${flag} ${spec}: compression-level=${level}`);
  bool(flag, spec, f, 'force-compression', false);
  bool(flag, spec, f, 'image-manifest', true);
  return {
    mode,
    compression,
    ociMediaTypes: bool(flag, spec, f, 'oci-mediatypes', true),
    ignoreError: bool(flag, spec, f, 'ignore-error', false),
  };
}

export function parseCacheTo(spec: string): CacheTo {
  const flag = '--cache-to';
  const f = fields(flag, spec);
  switch (f.get('type')) {
    case 'inline':
      onlyKnown(flag, spec, f, ['mode']);
      if ((f.get('mode') ?? 'min') !== 'min') throw new InvalidInputError(`invalid ${flag} ${spec}: an inline cache has mode=min only`);
      return { type: 'inline' };
    case 'registry':
      onlyKnown(flag, spec, f, ['ref', ...EXPORT_OPTIONS]);
      return { type: 'registry', ref: checkedRef(flag, spec, required(flag, spec, f, 'ref')), options: exportOptions(spec, f) };
    case 'local':
      onlyKnown(flag, spec, f, ['dest', ...EXPORT_OPTIONS]);
      return { type: 'local', dir: resolve(required(flag, spec, f, 'dest')), options: exportOptions(spec, f) };
    default:
      throw new InvalidInputError(`unsupported ${flag} type=${f.get('type')}: use registry, local or inline`);
  }
}

export function parseCacheFrom(spec: string): CacheFrom {
  const flag = '--cache-from';
  if (!spec.includes('=')) return { type: 'image', ref: checkedRef(flag, spec, spec) };
  const f = fields(flag, spec);
  switch (f.get('type')) {
    case 'registry':
      onlyKnown(flag, spec, f, ['ref']);
      return { type: 'registry', ref: checkedRef(flag, spec, required(flag, spec, f, 'ref')) };
    case 'local':
      // `digest=` picks one manifest of a layout that holds several; ours holds one.
      onlyKnown(flag, spec, f, ['src', 'digest', 'tag']);
      return { type: 'local', dir: resolve(required(flag, spec, f, 'src')) };
    default:
      throw new InvalidInputError(`unsupported ${flag} type=${f.get('type')}: use registry or local`);
  }
}
