// `.tsbuild-ci.yaml`: a project's `analyze --ci` thresholds, kept next to its Dockerfile as dive
// keeps `.dive-ci` (same `rules:` keys, plus maxCacheBytes), so that CI runs and developers apply
// the same gate without repeating flags. Flags still win over the file, the file over defaults.
//
//   rules:
//     lowestEfficiency: 0.95        # or 95%
//     highestWastedBytes: 20MB      # or disabled
//     highestUserWastedPercent: 0.1
//     maxCacheBytes: 10MB
//
// YAML is read with the `yaml` package (eemeli/yaml: no dependencies, YAML 1.2, positions for
// errors) rather than a hand-written subset: users copy such files from dive's examples, with
// comments, quotes and flow style.
import { access, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { InvalidInputError } from '../errors.js';
import { parseByteThreshold, parseRatioThreshold, type Thresholds } from './ci.js';

export const CI_CONFIG_NAME = '.tsbuild-ci.yaml';

const RULES: Record<string, { key: keyof Thresholds; parse: (s: string) => number | undefined }> = {
  lowestEfficiency: { key: 'lowestEfficiency', parse: parseRatioThreshold },
  highestWastedBytes: { key: 'highestWastedBytes', parse: parseByteThreshold },
  highestUserWastedPercent: { key: 'highestUserWastedPercent', parse: parseRatioThreshold },
  maxCacheBytes: { key: 'maxCacheBytes', parse: parseByteThreshold },
};

export interface CiConfig {
  /** The file the thresholds came from. */
  readonly path: string;
  /** The thresholds it sets (a rule set to `disabled` is present, as undefined). */
  readonly thresholds: Partial<Thresholds>;
}

/** Reads and checks a CI config file; every error names the file and, where known, the line. */
export async function readCiConfig(path: string): Promise<CiConfig> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`${path}: cannot read the CI config: ${err.code ?? err.message}`);
  });
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const at = (offset: number | undefined) => (offset === undefined ? path : `${path}:${lines.linePos(offset).line}`);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new InvalidInputError(`${at(e.pos[0])}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const root = doc.contents;
  const rules = root && 'get' in root ? root.get('rules', true) : undefined;
  if (rules === undefined || rules === null) return { path, thresholds: {} };
  if (typeof rules !== 'object' || !('items' in rules) || !Array.isArray(rules.items)) {
    throw new InvalidInputError(`${at(root?.range?.[0])}: \`rules:\` must map rule names to thresholds`);
  }
  const thresholds: Partial<Record<keyof Thresholds, number | undefined>> = {};
  for (const item of rules.items as { key: { value?: unknown; range?: [number] }; value: { value?: unknown; range?: [number] } | null }[]) {
    const name = String(item.key?.value);
    const rule = RULES[name];
    if (!rule)
      throw new InvalidInputError(
        `${at(item.key?.range?.[0])}: unknown rule ${JSON.stringify(name)} (known: ${Object.keys(RULES).join(', ')})`,
      );
    try {
      thresholds[rule.key] = rule.parse(String(item.value?.value ?? ''));
    } catch (err) {
      if (err instanceof InvalidInputError)
        throw new InvalidInputError(`${at(item.value?.range?.[0] ?? item.key?.range?.[0])}: ${name}: ${err.message}`);
      throw err;
    }
  }
  return { path, thresholds };
}

/**
 * The CI config that applies: `explicit` (--ci-config) if given, else `.tsbuild-ci.yaml` next to
 * the Dockerfile the image was built from, else in `cwd`; undefined when there is none.
 */
export async function findCiConfig(opts: { explicit?: string; dockerfile?: string; cwd: string }): Promise<CiConfig | undefined> {
  if (opts.explicit !== undefined) return readCiConfig(opts.explicit);
  const candidates = [...(opts.dockerfile ? [join(dirname(opts.dockerfile), CI_CONFIG_NAME)] : []), join(opts.cwd, CI_CONFIG_NAME)];
  for (const path of candidates) {
    if (
      await access(path).then(
        () => true,
        () => false,
      )
    )
      return readCiConfig(path);
  }
  return undefined;
}
