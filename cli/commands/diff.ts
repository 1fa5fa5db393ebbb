// `tsbuild diff IMAGE IMAGE`: the paths two images' filesystems differ in (src/analyze/diff.ts),
// as `docker diff`-style lines or JSON. Exit codes as diff(1): 0 identical, 1 different, 2 trouble.
import { diffImages, type ImageDiff, type PathChange, type PathState } from '../../src/analyze/index.js';
import { exactArgs, fail, parseCommand } from '../common.js';
import { Interrupted, withSources } from '../source.js';
import { humanSize } from '../format.js';
import { forTerminal } from '../terminal.js';

const spec = {
  usage: 'diff [OPTIONS] IMAGE IMAGE',
  description: [
    'Show the paths in which the second image differs from the first: A added, D deleted,',
    'C changed (content, mode, owner, link target, type). Exit status 0 when the images are',
    'the same, 1 when they differ, 2 on trouble. IMAGE is a name in the store, or',
    'docker-archive:FILE, oci-archive:FILE, oci:DIR[:TAG] or docker://REF',
  ].join('\n'),
  options: { json: { type: 'boolean' }, platform: { type: 'string' } },
  optionHelp: [
    '      --json                   Print the differences as JSON (schema: docs/commands/diff.md)',
    "      --platform OS/ARCH       Which image of a multi-platform image (default: this machine's)",
  ],
} as const;

export async function run(argv: string[]): Promise<number> {
  try {
    return await compare(argv);
  } catch (err) {
    // diff(1): 1 means "different", so trouble is 2 or more.
    return Math.max(2, fail(err));
  }
}

async function compare(argv: string[]): Promise<number> {
  const args = parseCommand(spec, argv);
  if (!args) return 0;
  exactArgs(args.positionals, 2, spec.usage);
  const diff = await withSources(args.positionals, args.values, ([a, b]) => diffImages(a!, b!));
  if (diff instanceof Interrupted) return diff.exitCode;
  process.stdout.write(forTerminal(args.values.json ? `${JSON.stringify(diff, null, 2)}\n` : renderDiff(diff)));
  return diff.identical ? 0 : 1;
}

const LETTER = { added: 'A', removed: 'D', changed: 'C' } as const;

/** One line a path: `C /etc/motd  12B  content (same size)`. */
export function renderDiff(d: ImageDiff): string {
  return d.changes.map((c) => `${[LETTER[c.change], c.path, ...describe(c)].join('  ').replace('  ', ' ')}\n`).join('');
}

function describe(c: PathChange): string[] {
  if (c.change !== 'changed') return [shape(c.after ?? c.before!)];
  const a = c.before!;
  const b = c.after!;
  if (c.what.includes('type')) return [`${shape(a)} -> ${shape(b)}`, 'type'];
  const parts: string[] = [];
  for (const w of c.what) {
    if (w === 'content') parts.push(a.size === b.size ? 'content (same size)' : 'content');
    if (w === 'target') parts.push(`target ${JSON.stringify(a.target)} -> ${JSON.stringify(b.target)}`);
    if (w === 'mode') parts.push(`mode ${octal(a.mode)} -> ${octal(b.mode)}`);
    if (w === 'owner') parts.push(`owner ${a.uid}:${a.gid} -> ${b.uid}:${b.gid}`);
  }
  const size = a.type === 'file' ? [a.size === b.size ? humanSize(b.size) : `${humanSize(a.size)} -> ${humanSize(b.size)}`] : [b.type];
  return [...size, parts.join(', ')];
}

/** A file's size; other types by name (a symlink with its target). */
function shape(s: PathState): string {
  if (s.type === 'file') return humanSize(s.size);
  if (s.type === 'symlink') return `symlink -> ${JSON.stringify(s.target)}`;
  return s.type;
}

function octal(mode: number): string {
  return `0${(mode & 0o7777).toString(8).padStart(3, '0')}`;
}
