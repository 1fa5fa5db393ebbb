// Large files in the build context that no COPY/ADD reads. `docker build` sends the whole
// context (less .dockerignore) to the builder before the first step runs, so such a file costs
// time on every build for nothing. Only checked when tsbuild built the image (the context path is
// in its provenance) and the context still exists; the COPY/ADD sources come from the recorded
// instructions, so the check is skipped (with a note) whenever they cannot tell the whole story.
import { lstat, stat } from 'node:fs/promises';
import { join, posix, relative, sep } from 'node:path';
import type { TreeEntry } from '../fs/copytree.js';
import { openContext, compileMatch, hasWildcards, type BuildContext } from '../context/index.js';
import type { Provenance } from '../image/provenance.js';
import { parseDockerfile, type CopyStep } from '../parse/index.js';
import { count } from './hints.js';
import type { Hint } from './types.js';

const SAMPLE_PATHS = 5;

export interface ContextCheck {
  readonly hints: Hint[];
  readonly notes: string[];
}

/** Context files of at least `minBytes` that none of the image's COPY/ADD sources cover. */
export async function unusedContextFiles(provenance: Provenance, minBytes: number): Promise<ContextCheck> {
  const dir = provenance.context;
  const exists = await stat(dir).then(
    (s) => s.isDirectory(),
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return false;
      throw err;
    },
  );
  if (!exists) return { hints: [], notes: [`the build context ${dir} no longer exists: unused context files not checked`] };

  const sources: string[] = [];
  for (const step of provenance.steps) {
    if (!/^(COPY|ADD)\b/i.test(step.text)) continue;
    const where = `${step.file}:${step.line}`;
    let copy: CopyStep;
    try {
      copy = parseDockerfile(`FROM scratch\n${step.text}\n`).stages[0]!.steps[0] as CopyStep;
    } catch (err) {
      return skipped(`${where}: the recorded instruction does not parse (${(err as Error).message})`);
    }
    if (copy.from !== undefined) return skipped(`${where} copies from another stage or image, whose own COPY lines were not recorded`);
    for (const src of copy.sources) {
      if (/^(https?|git):\/\/|^git@/.test(src)) continue; // ADD from a URL reads no context file
      if (src.includes('$')) return skipped(`${where}: a source uses a variable (${src})`);
      sources.push(src);
    }
  }
  const covered = sources.map(coverage);
  const isCovered = (path: string) => covered.some((c) => c(path));

  // The same ignore file the build read: `-f` may have named a Dockerfile outside the context,
  // whose `<Dockerfile>.dockerignore` then decided what the build saw. Images built before the
  // path was recorded name only the file, taken as the context's.
  const dockerfile = provenance.dockerfile ?? join(dir, provenance.steps[0]?.file ?? 'Dockerfile');
  const ctx = await openContext(dir, { dockerfile });
  const inContext = relative(ctx.root, dockerfile).split(sep).join('/');
  const own = new Set(['.dockerignore', inContext, `${inContext}.dockerignore`, ...provenance.steps.map((s) => s.file)]);
  const unused: { path: string; bytes: number }[] = [];
  await walk(ctx, { path: '', hostPath: ctx.root, stats: await lstat(ctx.root) }, isCovered, (path, bytes) => {
    if (bytes >= minBytes && !own.has(path) && !isCovered(path)) unused.push({ path, bytes });
  });
  if (unused.length === 0) return { hints: [], notes: [] };
  unused.sort((a, b) => b.bytes - a.bytes || a.path.localeCompare(b.path));
  const bytes = unused.reduce((n, f) => n + f.bytes, 0);
  return {
    notes: [],
    hints: [
      {
        kind: 'unused-context-file',
        bytes,
        files: unused.length,
        paths: unused.slice(0, SAMPLE_PATHS).map((f) => f.path),
        message: `The build context ${dir} holds ${count(unused.length, 'large file')} that no COPY or ADD reads.`,
        fix: 'Add them to .dockerignore: docker build sends the whole context to the builder before the first step, on every build.',
      },
    ],
  };

  function skipped(why: string): ContextCheck {
    return { hints: [], notes: [`unused context files not checked: ${why}`] };
  }
}

/** Regular files below `dir`, as the build sees them (.dockerignore applied); covered directories are not entered. */
async function walk(
  ctx: BuildContext,
  dir: TreeEntry,
  skipDir: (path: string) => boolean,
  onFile: (path: string, bytes: number) => void,
): Promise<void> {
  for (const e of await ctx.readDir(dir)) {
    if (e.stats.isDirectory()) {
      if (!skipDir(e.path)) await walk(ctx, e, skipDir, onFile);
    } else if (e.stats.isFile()) {
      onFile(e.path, e.stats.size);
    }
  }
}

/**
 * Which context paths a COPY/ADD source reads: the path itself and everything below it; with
 * wildcards (Go's filepath.Match, one component each, as BuildKit resolves them), every path
 * whose leading components match.
 */
function coverage(source: string): (path: string) => boolean {
  const clean = posix.normalize(`/${source}`).replace(/^\/+|\/+$/g, '');
  if (clean === '' || clean === '.') return () => true;
  const parts = clean.split('/');
  if (!parts.some(hasWildcards)) return (path) => path === clean || path.startsWith(`${clean}/`);
  const match = compileMatch(clean);
  if (!match) return () => false;
  return (path) => {
    const own = path.split('/');
    return own.length >= parts.length && match(own.slice(0, parts.length).join('/'));
  };
}
