// `analyze --ci`: dive's three rules, with its option names and its default thresholds for the
// two ratio rules. dive leaves the wasted-bytes rule disabled by default; tsbuild enables it at
// 20MB, so the seed's COPY-then-rm image fails however large its base is. A fourth rule of our
// own fails on package-manager caches the Dockerfile's layers leave (10MB by default: apt's lists
// alone are ~20MB after one `apt-get update`), naming the lines and their fix.
import { InvalidInputError } from '../errors.js';
import type { Hint, ImageAnalysis } from './types.js';

export interface Thresholds {
  /** Fail when efficiency is below this (0..1); undefined: rule disabled. */
  readonly lowestEfficiency: number | undefined;
  /** Fail when more bytes than this are wasted. */
  readonly highestWastedBytes: number | undefined;
  /** Fail when userWastedPercent (a fraction: 0.1 is 10%) is above this. */
  readonly highestUserWastedPercent: number | undefined;
  /** Fail when the Dockerfile's layers store more package-cache bytes than this. */
  readonly maxCacheBytes: number | undefined;
}

export const DEFAULT_THRESHOLDS: Thresholds = {
  lowestEfficiency: 0.9,
  highestWastedBytes: 20_000_000,
  highestUserWastedPercent: 0.1,
  maxCacheBytes: 10_000_000,
};

export type RuleName = 'lowest-efficiency' | 'highest-wasted-bytes' | 'highest-user-wasted-percent' | 'max-cache-bytes';

export interface RuleResult {
  readonly rule: RuleName;
  readonly status: 'pass' | 'fail' | 'skip';
  /** null when the rule is disabled. */
  readonly threshold: number | null;
  readonly value: number;
  /** What made a failed rule fail, where the analysis knows: the hints naming the lines and their fix. */
  readonly causes?: readonly Hint[];
}

export interface CiResult {
  readonly pass: boolean;
  readonly rules: readonly RuleResult[];
  /** The CI config file (.tsbuild-ci.yaml) whose thresholds applied, if one did. */
  readonly config?: string;
}

export function evaluateCi(a: ImageAnalysis, t: Thresholds): CiResult {
  const rules: RuleResult[] = [
    rule('lowest-efficiency', t.lowestEfficiency, a.efficiency, (v, th) => v < th),
    rule('highest-wasted-bytes', t.highestWastedBytes, a.wastedBytes, (v, th) => v > th),
    rule('highest-user-wasted-percent', t.highestUserWastedPercent, a.userWastedPercent, (v, th) => v > th),
    rule('max-cache-bytes', t.maxCacheBytes, a.userCacheBytes, (v, th) => v > th),
  ];
  // The cache rule says which lines leave the caches, and how to keep them out.
  const caches = a.hints.filter((h) => h.kind === 'package-cache' && h.layer !== undefined && !a.layers[h.layer]!.origin.base);
  const i = rules.findIndex((r) => r.rule === 'max-cache-bytes');
  if (rules[i]!.status === 'fail' && caches.length > 0) rules[i] = { ...rules[i]!, causes: caches };
  return { pass: rules.every((r) => r.status !== 'fail'), rules };
}

function rule(name: RuleName, threshold: number | undefined, value: number, fails: (v: number, th: number) => boolean): RuleResult {
  if (threshold === undefined) return { rule: name, status: 'skip', threshold: null, value };
  return { rule: name, status: fails(value, threshold) ? 'fail' : 'pass', threshold, value };
}

const DISABLED = /^(disabled|off|none)$/i;

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * A byte count as dive (humanize.ParseBytes) and docker accept it: `20MB` is 20,000,000 bytes,
 * `20MiB` 20,971,520; units are case-insensitive. `disabled` turns the rule off.
 */
export function parseByteThreshold(s: string): number | undefined {
  if (DISABLED.test(s.trim())) return undefined;
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)\s*$/i.exec(s);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new InvalidInputError(`invalid size ${JSON.stringify(s)}: want e.g. 20MB, 1.5GiB, 500000 or disabled`);
  return Math.round(Number(m[1]) * unit);
}

/** A ratio: `0.1`, or `10%`. `disabled` turns the rule off. */
export function parseRatioThreshold(s: string): number | undefined {
  if (DISABLED.test(s.trim())) return undefined;
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(%?)\s*$/.exec(s);
  if (!m) throw new InvalidInputError(`invalid ratio ${JSON.stringify(s)}: want e.g. 0.9, 90% or disabled`);
  return m[2] ? Number(m[1]) / 100 : Number(m[1]);
}
