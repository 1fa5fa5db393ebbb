import { createInterface } from 'node:readline/promises';
import { TsbuildError } from '../../src/errors.js';
import { exactArgs, storeOptions, parseCommand } from '../common.js';
import { Store } from '../../src/store/store.js';
import { humanSize } from '../format.js';

const spec = {
  usage: 'prune [OPTIONS]',
  description: 'Remove dangling images and the layers no image uses',
  options: {
    all: { type: 'boolean', short: 'a' },
    force: { type: 'boolean', short: 'f' },
    cache: { type: 'boolean' },
  },
  optionHelp: [
    '  -a, --all                    Remove every untagged image, not just dangling ones',
    '  -f, --force                  Do not prompt for confirmation',
    "      --cache                  Also remove the directories of RUN --mount=type=cache and the build contexts' checksum",
    '                               caches (--all does too)',
  ],
} as const;

export async function run(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  exactArgs(args.positionals, 0, spec.usage);
  const all = args.values.all === true;
  const cacheMounts = all || args.values.cache === true;
  if (!args.values.force) {
    const warning =
      (all
        ? 'WARNING! This will remove all images without at least one tag, and every layer no remaining image uses (build cache included'
        : 'WARNING! This will remove all dangling images, and every layer no remaining image uses (build cache included') +
      (cacheMounts ? ", the cache mounts no running build uses, and the build contexts' checksum caches)." : ').');
    if (!process.stdin.isTTY) {
      throw new TsbuildError(
        `${warning.replace('WARNING! This will', 'prune would')} Not asking without a terminal: run with --force (-f) to confirm.`,
      );
    }
    if (!(await confirm(`${warning}\nAre you sure you want to continue? [y/N] `))) return 0;
  }
  const store = await Store.open(await storeOptions(args.values));
  const report = await store.prune(await store.planPrune({ all }));
  const caches = cacheMounts ? await store.pruneCacheMounts() : [];
  const checksums = cacheMounts ? await store.pruneContextCaches() : { files: 0, size: 0 };
  const deleted = report.events.filter((e) => e.kind !== 'deleted-cache');
  const cache = report.events.filter((e) => e.kind === 'deleted-cache');
  const out: string[] = [];
  // docker image prune's output: the deletions, then the space; nothing listed when nothing went.
  if (deleted.length > 0) {
    out.push('Deleted Images:');
    for (const e of deleted) {
      if (e.kind === 'untagged') out.push(`untagged: ${e.ref}`);
      else if (e.kind === 'deleted-image') out.push(`deleted: ${e.id}`);
      else if (e.kind === 'deleted-layer') out.push(`deleted: ${e.chainId}`);
    }
    out.push('');
  }
  if (cache.length > 0) {
    out.push('Deleted build cache records:');
    for (const e of cache) if (e.kind === 'deleted-cache') out.push(e.key);
    out.push('');
  }
  if (caches.length > 0) {
    out.push('Deleted cache mounts:');
    for (const c of caches) out.push(c.id);
    out.push('');
  }
  if (checksums.files > 0) {
    out.push(`Deleted build context checksum caches: ${checksums.files} files`);
    out.push('');
  }
  out.push(`Total reclaimed space: ${humanSize(report.reclaimed + caches.reduce((n, c) => n + c.size, 0) + checksums.size)}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}
