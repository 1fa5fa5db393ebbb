import { writeFile } from 'node:fs/promises';
import {
  analyzeSource,
  analyzeSourceWithTree,
  DEFAULT_THRESHOLDS,
  evaluateCi,
  parseByteThreshold,
  parseRatioThreshold,
  renderHtmlReport,
  type CiResult,
  type ImageAnalysis,
  type RuleResult,
  type Thresholds,
} from '../../src/analyze/index.js';
import { findCiConfig } from '../../src/analyze/ci-config.js';
import { shortId } from '../../src/digest.js';
import { InvalidInputError } from '../../src/errors.js';
import { exactArgs, parseCommand, usageError } from '../common.js';
import { Interrupted, withSources } from '../source.js';
import { humanSize, table } from '../format.js';
import { forTerminal } from '../terminal.js';

const spec = {
  usage: 'analyze [OPTIONS] IMAGE',
  description:
    'Show what each layer of an image stores, what it wastes, and which Dockerfile line to change.\n' +
    'IMAGE is a name in the store, or docker-archive:FILE, oci-archive:FILE, oci:DIR[:TAG] or docker://REF',
  options: {
    interactive: { type: 'boolean', short: 'i' },
    json: { type: 'boolean' },
    html: { type: 'string' },
    ci: { type: 'boolean' },
    'lowest-efficiency': { type: 'string' },
    'highest-wasted-bytes': { type: 'string' },
    'highest-user-wasted-percent': { type: 'string' },
    'max-cache-bytes': { type: 'string' },
    'ci-config': { type: 'string' },
    platform: { type: 'string' },
  },
  optionHelp: [
    '  -i, --interactive            Browse the layers and their files in the terminal',
    '      --json                   Print the analysis as JSON (schema: docs/analyze.md)',
    "      --platform OS/ARCH       Which image of a multi-platform image (default: this machine's)",
    '      --html FILE              Also write a self-contained HTML report (treemap, layers,',
    '                               hints, CI verdict) to FILE',
    '      --ci                     Check the thresholds below; exit 1 if one is crossed',
    '      --lowest-efficiency RATIO',
    '                               Fail below this efficiency (default 0.9)',
    '      --highest-wasted-bytes SIZE',
    '                               Fail above this many wasted bytes (default 20MB)',
    '      --highest-user-wasted-percent RATIO',
    "                               Fail when the Dockerfile's own layers waste more than",
    '                               this share of their size (default 0.1)',
    "      --max-cache-bytes SIZE   Fail when the Dockerfile's own layers store more package-",
    '                               manager caches (apt, apk, dnf, pip, npm, Go...) than',
    '                               this (default 10MB)',
    '                               A threshold of "disabled" skips its rule.',
    '      --ci-config FILE         Thresholds from FILE (default: .tsbuild-ci.yaml next to',
    "                               the image's Dockerfile, else in the current directory);",
    '                               flags win over the file',
  ],
} as const;

/** Text output shows this many rows of the long lists; --json has them all. */
const SHOWN_PATHS = 10;
const SHOWN_LARGEST = 3;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  exactArgs(args.positionals, 1, spec.usage);
  const v = args.values;
  const thresholds = parseThresholds(v);
  if (!v.ci && !v.html && thresholds.given.length > 0) throw usageError(`--${thresholds.given[0]} is a --ci threshold: add --ci`);
  if (v.interactive) {
    const other = v.json ? 'json' : v.ci ? 'ci' : v.html ? 'html' : undefined;
    if (other) throw usageError(`-i and --${other} cannot be combined`);
    if (!process.stdout.isTTY || !process.stdin.isTTY) throw usageError('-i needs a terminal: standard input and output must be a TTY');
    // Any source, as the other forms: the view reads its layers before it starts.
    const { runInteractive } = await import('../tui/analyze.js');
    const viewed = await withSources(args.positionals, v, ([source]) => runInteractive(source!));
    return viewed instanceof Interrupted ? viewed.exitCode : viewed;
  }
  const read = await withSources(args.positionals, v, async ([source]) => ({
    ...(v.html ? await analyzeSourceWithTree(source!) : { analysis: await analyzeSource(source!), tree: undefined }),
    dockerfile: source!.provenance?.dockerfile,
  }));
  if (read instanceof Interrupted) return read.exitCode;
  const { analysis, tree, dockerfile } = read;
  // The page shows the rules' verdict with or without --ci, judged the same way.
  const verdict = v.ci || v.html ? await judge(dockerfile, analysis, v['ci-config'], thresholds.values) : undefined;
  if (v.html && tree && verdict) await writeFile(v.html, renderHtmlReport({ analysis, ci: verdict, tree }));
  const ci = v.ci ? verdict : undefined;
  if (v.json) {
    process.stdout.write(forTerminal(`${JSON.stringify({ ...analysis, ...(ci ? { ci } : {}) }, null, 2)}\n`));
  } else {
    process.stdout.write(forTerminal(renderAnalysis(analysis)));
    if (ci) process.stdout.write(forTerminal(`\n${renderCi(ci)}`));
  }
  return ci && !ci.pass ? 1 : 0;
}

/** The CI rules under the thresholds of the flags, else the CI config file, else the defaults. */
async function judge(
  dockerfile: string | undefined,
  analysis: ImageAnalysis,
  config: string | undefined,
  flags: Partial<Thresholds>,
): Promise<CiResult> {
  const file = await findCiConfig({ ...(config ? { explicit: config } : {}), ...(dockerfile ? { dockerfile } : {}), cwd: process.cwd() });
  return {
    ...evaluateCi(analysis, { ...DEFAULT_THRESHOLDS, ...file?.thresholds, ...flags }),
    ...(file ? { config: file.path } : {}),
  };
}

/** The thresholds given as flags (only those: the CI config file and the defaults fill the rest). */
function parseThresholds(v: Record<string, unknown>): { values: Partial<Thresholds>; given: string[] } {
  const flags = {
    'lowest-efficiency': ['lowestEfficiency', parseRatioThreshold],
    'highest-wasted-bytes': ['highestWastedBytes', parseByteThreshold],
    'highest-user-wasted-percent': ['highestUserWastedPercent', parseRatioThreshold],
    'max-cache-bytes': ['maxCacheBytes', parseByteThreshold],
  } as const;
  const names = Object.keys(flags) as (keyof typeof flags)[];
  const values: Partial<Record<keyof Thresholds, number | undefined>> = {};
  for (const name of names.filter((k) => v[k] !== undefined)) {
    const [key, parse] = flags[name];
    try {
      values[key] = parse(v[name] as string);
    } catch (err) {
      if (err instanceof InvalidInputError) throw usageError(`--${name}: ${err.message}`);
      throw err;
    }
  }
  return { given: [...names, 'ci-config'].filter((k) => v[k] !== undefined), values };
}

function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/**
 * The analysis as text. `summary` (what `build --analyze` prints) keeps the totals and the hints
 * and leaves out the per-layer and per-path tables.
 */
export function renderAnalysis(a: ImageAnalysis, opts: { summary?: boolean } = {}): string {
  const out: string[] = [];
  const name = a.tags[0] ?? '<none>';
  out.push(`Image ${name} (${shortId(a.id)})`);
  out.push(
    `  Total size:    ${humanSize(a.size)} (base image ${humanSize(a.size - a.userSize)}, this Dockerfile's layers ${humanSize(a.userSize)})`,
  );
  out.push(
    `  Wasted bytes:  ${humanSize(a.wastedBytes)} of ${humanSize(a.storedBytes)} stored (${humanSize(a.userWastedBytes)} by this Dockerfile's layers: ${percent(a.userWastedPercent)} of their size)`,
  );
  out.push(`  Efficiency:    ${percent(a.efficiency)}`);

  if (!opts.summary) {
    out.push('', 'Layers, bottom first:');
    out.push(
      indent(
        table(
          ['#', 'SIZE', 'WASTED', 'ADDED', 'MODIFIED', 'REMOVED', 'INSTRUCTION'],
          a.layers.map((l) => [
            String(l.index),
            humanSize(l.size),
            humanSize(l.wastedBytes),
            String(l.files.added),
            String(l.files.modified),
            String(l.files.removed),
            `${l.origin.base ? '(base) ' : ''}${l.origin.file !== undefined ? `${l.origin.file}:${l.origin.line}  ` : ''}${oneLine(l.origin.text, 70)}`,
          ]),
        ),
      ),
    );
    const largest = a.layers.flatMap((l) => l.largest.slice(0, SHOWN_LARGEST).map((p) => [`layer ${l.index}`, humanSize(p.bytes), p.path]));
    if (largest.length > 0) out.push('', 'Largest files per layer:', indent(table(['LAYER', 'SIZE', 'PATH'], largest)));

    if (a.inefficientPaths.length > 0) {
      out.push('', 'Inefficient paths (each wasted byte counted once):');
      out.push(
        indent(
          table(
            ['COUNT', 'WASTED', 'PATH'],
            a.inefficientPaths
              .slice(0, SHOWN_PATHS)
              .map((p) => [
                String(p.count),
                humanSize(p.wastedBytes),
                `${p.path}${p.removedBy !== undefined ? ` (deleted by layer ${p.removedBy})` : ''}`,
              ]),
          ),
        ),
      );
      if (a.inefficientPaths.length > SHOWN_PATHS)
        out.push(`  ... and ${a.inefficientPaths.length - SHOWN_PATHS} more (--json lists them all)`);
    }
  }

  out.push('');
  if (a.hints.length === 0) {
    out.push('No hints: no layer wastes or leaves behind enough to mention.');
  } else {
    out.push('Hints, largest saving first:');
    a.hints.forEach((h, i) => {
      out.push(`  ${i + 1}. ${humanSize(h.bytes)}: ${h.message}`);
      out.push(`     Fix: ${h.fix}`);
      if (h.paths.length > 0) out.push(`     ${h.files > h.paths.length ? 'Largest paths' : 'Paths'}: ${h.paths.join(', ')}`);
    });
  }
  for (const n of a.notes) out.push(`Note: ${n}`);
  return `${out.join('\n')}\n`;
}

export function renderCi(ci: CiResult): string {
  const lines = [`CI checks${ci.config ? ` (thresholds from ${ci.config})` : ''}:`];
  for (const r of ci.rules) {
    lines.push(`  ${r.status.toUpperCase().padEnd(4)}  ${r.rule}: ${ruleText(r)}`);
    for (const h of r.causes ?? []) lines.push(`        ${humanSize(h.bytes)}: ${h.message}`, `        Fix: ${h.fix}`);
  }
  const failed = ci.rules.filter((r) => r.status === 'fail').length;
  lines.push(`Result: ${ci.pass ? 'PASS' : 'FAIL'} (${failed} of ${ci.rules.filter((r) => r.status !== 'skip').length} checks failed)`);
  return `${lines.join('\n')}\n`;
}

function ruleText(r: RuleResult): string {
  if (r.threshold === null) return 'disabled';
  switch (r.rule) {
    case 'lowest-efficiency':
      return `efficiency ${percent(r.value)} ${r.status === 'fail' ? 'is below' : 'is not below'} ${percent(r.threshold)}`;
    case 'highest-wasted-bytes':
      return `${humanSize(r.value)} wasted (${r.value} bytes) ${r.status === 'fail' ? 'is more than' : 'is not more than'} ${humanSize(r.threshold)}`;
    case 'highest-user-wasted-percent':
      return `${percent(r.value)} of the Dockerfile's layers wasted ${r.status === 'fail' ? 'is more than' : 'is not more than'} ${percent(r.threshold)}`;
    case 'max-cache-bytes':
      return `${humanSize(r.value)} of package caches in the Dockerfile's layers ${r.status === 'fail' ? 'is more than' : 'is not more than'} ${humanSize(r.threshold)}`;
  }
}

/** A table as lines of the output: indented, without its final newline. */
function indent(text: string): string {
  return text.replace(/\n$/, '').replace(/^(?=.)/gm, '  ');
}

function oneLine(s: string, n: number): string {
  const flat = s.replace(/\s*\n\s*/g, ' ');
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat;
}
