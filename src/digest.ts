// Content addresses. A Digest is always "sha256:<64 hex>"; the brand keeps bare strings
// (paths, names, short IDs) from being passed where a content address is expected.
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { TsbuildError } from './errors.js';

export type Digest = string & { readonly __brand: 'Digest' };

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

export function parseDigest(s: string): Digest {
  if (!isDigest(s)) throw new Error(`invalid digest ${JSON.stringify(s)}: want sha256:<64 hex digits>`);
  return s;
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

/** The 64 hex digits of a digest, as used for directory and file names in the store. */
export function hex(d: Digest): string {
  return d.slice('sha256:'.length);
}

/** The 12-digit short form `docker images` shows. */
export function shortId(d: Digest): string {
  return hex(d).slice(0, 12);
}

/**
 * chainID(1) = diffID(1); chainID(n) = sha256("<chainID(n-1)> <diffID(n)>").
 * A chainID names a whole stack of layers, which is what lets two images share a layer dir
 * only when everything below it is the same too.
 */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : sha256(`${prev} ${d}`));
  }
  return out;
}

/** The chainID of the layer `diffId` on top of the chain `parent` (none: a bottom layer). */
export function chainIdOf(parent: Digest | undefined, diffId: Digest): Digest {
  return parent === undefined ? diffId : sha256(`${parent} ${diffId}`);
}

export function chainId(diffIds: readonly Digest[]): Digest | undefined {
  return chainIds(diffIds).at(-1);
}

/** Bytes that do not hash to the digest that names them. */
export class DigestMismatchError extends TsbuildError {}

/** Passes bytes through and fails at the end unless their sha256 is `expected`. */
export function verifyDigest(expected: Digest, what: string): Transform {
  const hash = createHash('sha256');
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      const got = `sha256:${hash.digest('hex')}`;
      cb(got === expected ? null : new DigestMismatchError(`${what}: digest mismatch: expected ${expected}, got ${got}`));
    },
  });
}
