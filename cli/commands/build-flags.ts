// build's flag values, parsed as docker buildx parses them: --output, --platform, KEY=VALUE
// lists, and the repeatable flags whose values a module of the builder parses. A bad value is
// a usage error (one line, exit 2), before anything is read or built.
import { resolve } from 'node:path';
import { InvalidInputError } from '../../src/errors.js';
import { formatPlatform, parsePlatform, type Platform } from '../../src/image/platform.js';
import { usageError } from '../common.js';

/** Each value of a repeatable flag, parsed; a bad one is a usage error (one line, exit 2). */
export function flagValues<T>(values: readonly string[] | undefined, parse: (value: string) => T | T[]): T[] {
  try {
    return (values ?? []).flatMap((value) => parse(value));
  } catch (err) {
    throw err instanceof InvalidInputError ? usageError(err.message) : err;
  }
}

/**
 * `--platform linux/amd64`, repeatable and comma-separated as buildx takes it: each platform
 * once, in the order given. More than one is a multi-platform build.
 */
export function platformFlag(values: readonly string[]): Platform[] {
  const list = flagValues(
    values.flatMap((v) => v.split(',')).filter((v) => v.trim() !== ''),
    parsePlatform,
  );
  const seen = new Set<string>();
  return list.filter((p) => !seen.has(formatPlatform(p)) && Boolean(seen.add(formatPlatform(p))));
}

export type OutputSpec =
  | { readonly type: 'docker' | 'oci' | 'local' | 'tar'; readonly dest: string }
  /** `registry`: buildx's registry output, pushed without being stored (unless another output needs the image). */
  | { readonly type: 'image'; readonly names: readonly string[]; readonly push: boolean; readonly registry: boolean };

const OUTPUT_TYPES = 'docker, oci, local, tar, image or registry';

/**
 * docker buildx's --output syntax: `type=docker|oci,dest=FILE` (an image archive),
 * `type=local,dest=DIR` and `type=tar,dest=FILE` (the filesystem), `type=image[,name=N][,push=B]`
 * and `type=registry[,name=N]` (type=image with push=true); a bare `DIR` is `type=local,dest=DIR`
 * and a bare `-` is `type=tar,dest=-` (stdout).
 */
export function parseOutput(spec: string): OutputSpec {
  if (!spec.includes('=')) return spec === '-' ? { type: 'tar', dest: '-' } : { type: 'local', dest: resolve(spec) };
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) throw usageError(`invalid --output ${spec}: want type=TYPE,KEY=VALUE,...`);
    fields.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  const type = fields.get('type');
  if (type === 'image' || type === 'registry') {
    const push = type === 'registry' || booleanField(spec, fields.get('push'));
    const name = fields.get('name');
    if (name === '') throw usageError(`invalid --output ${spec}: empty name`);
    return { type: 'image', names: name === undefined ? [] : [name], push, registry: type === 'registry' };
  }
  if (type !== 'docker' && type !== 'oci' && type !== 'local' && type !== 'tar')
    throw usageError(`unsupported --output type ${type ?? '(none)'}: use ${OUTPUT_TYPES}`);
  const dest = fields.get('dest');
  if (!dest) throw usageError(`--output type=${type} needs dest=${type === 'local' ? 'DIR' : 'FILE'}`);
  // dest=-: the archive on stdout (docker, oci, tar); for local, the files as a tar there too.
  if (dest === '-') return { type: type === 'local' ? 'tar' : type, dest };
  return { type, dest: resolve(dest) };
}

function booleanField(spec: string, value: string | undefined): boolean {
  if (value === undefined || value === 'false') return false;
  if (value === 'true') return true;
  throw usageError(`invalid --output ${spec}: push=${value}: want true or false`);
}

/** `--label K=V`: each value split at its first '='. */
export function keyValues(values: readonly string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of values ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw usageError(`invalid ${flag} ${JSON.stringify(kv)}: want KEY=VALUE`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}
