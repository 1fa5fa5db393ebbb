// The image configuration as Docker writes it (OCI image-spec config.md plus Docker's extra
// runtime fields). The image ID is the sha256 of the exact serialized bytes, so serialization
// is deterministic: fixed key order, empty fields omitted, no whitespace.
import type { Digest } from '../digest.js';

export interface HealthConfig {
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** The runtime part (`config` in the JSON). Field names are Docker's. */
export interface RuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  Healthcheck?: HealthConfig;
  /** Docker sets this for shell-form CMD/ENTRYPOINT on Windows only; kept for round-trips. */
  ArgsEscaped?: boolean;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  OnBuild?: string[];
  StopSignal?: string;
  Shell?: string[];
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  architecture: string;
  variant?: string;
  os: string;
  author?: string;
  created?: string;
  config: RuntimeConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history: HistoryEntry[];
  /**
   * tsbuild's inline build cache (src/cache/format.ts), kept as it was read: an extension field,
   * as BuildKit's `moby.buildkit.cache.v0`, which other tools ignore.
   */
  'tsbuild.cache.v1'?: unknown;
}

/** Docker's default PATH for a Linux container whose image sets none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SHELL = ['/bin/sh', '-c'];

const RUNTIME_KEYS: (keyof RuntimeConfig)[] = [
  'User',
  'ExposedPorts',
  'Env',
  'Entrypoint',
  'Cmd',
  'Healthcheck',
  'ArgsEscaped',
  'Volumes',
  'WorkingDir',
  'Labels',
  'OnBuild',
  'StopSignal',
  'Shell',
];

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '') return true;
  if (Array.isArray(v)) return false; // an explicit empty Cmd/Entrypoint is meaningful
  if (typeof v === 'object') return Object.keys(v as object).length === 0;
  return false;
}

function sortedObject<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function orderedRuntime(c: RuntimeConfig): RuntimeConfig {
  const out: Record<string, unknown> = {};
  for (const k of RUNTIME_KEYS) {
    const v = c[k];
    if (isEmpty(v) && !(k === 'Env' && Array.isArray(v))) continue;
    out[k] = k === 'ExposedPorts' || k === 'Volumes' || k === 'Labels' ? sortedObject(v as Record<string, unknown>) : v;
  }
  return out as RuntimeConfig;
}

function orderedHistory(h: HistoryEntry): HistoryEntry {
  const out: HistoryEntry = {};
  if (h.created !== undefined) out.created = h.created;
  if (h.created_by !== undefined) out.created_by = h.created_by;
  if (h.author !== undefined) out.author = h.author;
  if (h.comment !== undefined) out.comment = h.comment;
  if (h.empty_layer) out.empty_layer = true;
  return out;
}

/** The canonical bytes of a config; imageID = sha256 of exactly these. */
export function serializeConfig(c: ImageConfig): Buffer {
  const ordered: Record<string, unknown> = { architecture: c.architecture };
  if (c.author) ordered.author = c.author;
  ordered.config = orderedRuntime(c.config);
  if (c.created !== undefined) ordered.created = c.created;
  ordered.history = c.history.map(orderedHistory);
  ordered.os = c.os;
  ordered.rootfs = { type: 'layers', diff_ids: c.rootfs.diff_ids };
  if (c['tsbuild.cache.v1'] !== undefined) ordered['tsbuild.cache.v1'] = c['tsbuild.cache.v1'];
  if (c.variant) ordered.variant = c.variant;
  return Buffer.from(JSON.stringify(ordered));
}

export function parseConfig(bytes: Buffer | string): ImageConfig {
  const raw = JSON.parse(bytes.toString()) as Partial<ImageConfig>;
  return {
    architecture: raw.architecture ?? 'amd64',
    os: raw.os ?? 'linux',
    ...(raw.variant ? { variant: raw.variant } : {}),
    ...(raw.author ? { author: raw.author } : {}),
    ...(raw.created ? { created: raw.created } : {}),
    config: raw.config ?? {},
    rootfs: { type: 'layers', diff_ids: raw.rootfs?.diff_ids ?? [] },
    history: raw.history ?? [],
    ...(raw['tsbuild.cache.v1'] !== undefined ? { 'tsbuild.cache.v1': raw['tsbuild.cache.v1'] } : {}),
  };
}

/** The architecture name Docker uses for this Node process's CPU. */
export function hostArchitecture(): string {
  switch (process.arch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    default:
      return process.arch; // arm64, arm, ppc64, s390x, riscv64 match Go's names
  }
}

/** A timestamp as Go's time.RFC3339Nano writes it (what Docker puts in configs): no `.000`. */
export function rfc3339(d: Date): string {
  return d
    .toISOString()
    .replace(/\.000Z$/, 'Z')
    .replace(/(\.\d*?)0+Z$/, '$1Z');
}
