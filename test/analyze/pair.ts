// The two images the diff tests compare, built with the CLI: one change of each kind between
// them, and the lines `tsbuild diff before after` must print for them whatever their sources.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ok, tempDir } from '../helpers/tsbuild.js';

export interface Json {
  [k: string]: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A context with `files` and a Dockerfile of `lines`. */
export async function context(files: Record<string, string>, lines: string[]): Promise<string> {
  const ctx = await tempDir('tsbuild-diff-');
  for (const [name, text] of Object.entries(files)) await writeFile(join(ctx, name), text, { mode: 0o644 });
  await writeFile(join(ctx, 'Dockerfile'), `${lines.join('\n')}\n`);
  return ctx;
}

/** The before image and the after image, built into `root`. */
export async function buildPair(root: string): Promise<void> {
  const common = { 'a.txt': 'hello\n', 'mode.txt': 'mode\n', 'owner.txt': 'owner\n' };
  const before = await context({ ...common, 'gone.txt': 'gone\n', 'same.txt': 'aaaa\n' }, [
    'FROM busybox',
    'COPY a.txt gone.txt same.txt mode.txt owner.txt /data/',
    'RUN ln -s /data/a.txt /data/link && echo x > /data/kind',
  ]);
  const after = await context({ ...common, 'new.txt': 'new\n', 'same.txt': 'bbbb\n' }, [
    'FROM busybox',
    'COPY a.txt same.txt mode.txt owner.txt new.txt /data/',
    'RUN ln -s /data/new.txt /data/link && mkdir /data/kind && touch /data/kind/inside && chmod 600 /data/mode.txt && chown 1000:1000 /data/owner.txt',
  ]);
  await ok(root, ['build', '-q', '-t', 'before', before]);
  await ok(root, ['build', '-q', '-t', 'after', after]);
}

/** What `diff before after` prints, whatever the sources. */
export const EXPECTED_LINES = [
  'D /data/gone.txt  5B',
  'C /data/kind  2B -> dir  type',
  'A /data/kind/inside  0B',
  'C /data/link  symlink  target "/data/a.txt" -> "/data/new.txt"',
  'C /data/mode.txt  5B  mode 0644 -> 0600',
  'A /data/new.txt  4B',
  'C /data/owner.txt  6B  owner 0:0 -> 1000:1000',
  'C /data/same.txt  5B  content (same size)',
].join('\n');
