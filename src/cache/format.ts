// The cache's format, as docs/cache.md describes it. A cache is one OCI image manifest:
//   config  application/vnd.tsbuild.cache.config.v1+json — the records (below)
//   layers  the layer blobs the records' chains name, in the config's `layers` order, then the
//           source listings of COPY steps (application/vnd.tsbuild.cache.files.v1+gzip), read
//           only to say why a step missed
// and `artifactType` application/vnd.tsbuild.cache.v1. An inline cache is the same config in
// the image's own config, under "tsbuild.cache.v1", its chains naming the image's layers.
//
// A record is the local build cache's record (src/store/buildcache.ts) made portable: the
// step's key, the layers it left (a chain of diffIDs, by index), its history entry and the
// created times of a run of metadata steps. Parsing checks every field, so that what is not our
// cache, or is truncated, is refused here and the build goes on without it.
import { isDigest, type Digest } from '../digest.js';
import { TsbuildError } from '../errors.js';
import type { HistoryEntry } from '../image/config.js';

export const CacheMediaType = {
  artifact: 'application/vnd.tsbuild.cache.v1',
  config: 'application/vnd.tsbuild.cache.config.v1+json',
  files: 'application/vnd.tsbuild.cache.files.v1+gzip',
} as const;

/** The image config field of an inline cache. */
export const INLINE_FIELD = 'tsbuild.cache.v1';

/**
 * What a step's key was made of, for saying why a step missed: plain text where the image shows
 * it anyway (USER, WORKDIR, paths), sha256 of anything that may be private (commands, build
 * args and ENV values, mount options), never a value itself.
 */
export interface StepInputs {
  readonly kind: string;
  readonly [field: string]: string | readonly string[];
}

/**
 * `inputs.source` of a COPY --from recorded by the content it copies: the other stage's chainID
 * would differ between builds that copy the same files.
 */
export const BY_CONTENT = 'by content';

export interface CacheEntry {
  readonly key: Digest;
  /** The layers the step left, bottom first, as indexes into the config's `layers`; none: no layer under it. */
  readonly chain?: readonly number[];
  readonly history: HistoryEntry;
  /** A run of metadata steps: the created times of its entries. */
  readonly createdTimes?: readonly string[];
  /** Where the step stands (`<stage>/<n>`): what a missed step there is compared with. */
  readonly slot?: string;
  readonly inputs?: StepInputs;
  /** A COPY's source listing: the index of its blob among the manifest's layers. */
  readonly files?: number;
}

export interface CacheConfig {
  readonly version: 1;
  /** diffIDs of the layer blobs, in the manifest's layer order (inline: the image's layers). */
  readonly layers: readonly Digest[];
  readonly records: readonly CacheEntry[];
}

export class CacheFormatError extends TsbuildError {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** Parses and checks a cache config; `blobs`: how many blobs the manifest lists (chains and listings must name one). */
export function parseCacheConfig(raw: unknown, blobs: number): CacheConfig {
  const fail = (what: string): never => {
    throw new CacheFormatError(`not a tsbuild cache: ${what}`);
  };
  if (!isObject(raw)) return fail('the config is not an object');
  if (raw.version !== 1) return fail(`version ${JSON.stringify(raw.version)}, this tsbuild reads version 1`);
  const layers = raw.layers;
  if (!Array.isArray(layers) || !layers.every((d) => typeof d === 'string' && isDigest(d))) return fail('bad layers');
  if (layers.length > blobs) return fail('more layers than blobs');
  if (!Array.isArray(raw.records)) return fail('no records');
  const records = raw.records.map((r: unknown, i): CacheEntry => {
    if (!isObject(r) || typeof r.key !== 'string' || !isDigest(r.key)) return fail(`record ${i}: bad key`);
    if (!isObject(r.history)) return fail(`record ${i}: bad history`);
    const chain = r.chain;
    if (chain !== undefined && !(Array.isArray(chain) && chain.every((n) => Number.isSafeInteger(n) && n >= 0 && n < layers.length)))
      return fail(`record ${i}: bad chain`);
    if (r.createdTimes !== undefined && !isStrings(r.createdTimes)) return fail(`record ${i}: bad createdTimes`);
    if (r.slot !== undefined && typeof r.slot !== 'string') return fail(`record ${i}: bad slot`);
    const inputs = r.inputs;
    if (
      inputs !== undefined &&
      !(isObject(inputs) && typeof inputs.kind === 'string' && Object.values(inputs).every((v) => typeof v === 'string' || isStrings(v)))
    )
      return fail(`record ${i}: bad inputs`);
    const files = r.files;
    if (files !== undefined && !(Number.isSafeInteger(files) && (files as number) >= layers.length && (files as number) < blobs))
      return fail(`record ${i}: bad files`);
    return {
      key: r.key,
      history: r.history as HistoryEntry,
      ...(chain !== undefined ? { chain: chain as number[] } : {}),
      ...(r.createdTimes !== undefined ? { createdTimes: r.createdTimes as string[] } : {}),
      ...(r.slot !== undefined ? { slot: r.slot } : {}),
      ...(inputs !== undefined ? { inputs: inputs as unknown as StepInputs } : {}),
      ...(files !== undefined ? { files: files as number } : {}),
    };
  });
  return { version: 1, layers: layers as Digest[], records };
}

/** The config's bytes: records sorted by key, so that the same build exports the same bytes. */
export function serializeCacheConfig(c: CacheConfig): Buffer {
  const records = [...c.records].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return Buffer.from(JSON.stringify({ version: 1, layers: c.layers, records }));
}
