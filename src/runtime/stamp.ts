// A digest of a directory tree's lstat data through `tsbuild-helper stamp` (native/helper/stamp.c):
// what a cached build compares with the one recorded beside a COPY source's checksum
// (src/context/treememo.ts), instead of lstat-ing every entry from Node.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { failed } from './binary.js';
import { streamServed } from './served.js';

export interface TreeStamp {
  /** sha256 of every entry's path, mode, owner, size, inode, device numbers, mtime and ctime. */
  readonly digest: string;
  /** How many entries it covers, the top directory included. */
  readonly entries: number;
  /** The newest ctime among them, in milliseconds since the epoch (Stats.ctimeMs's unit). */
  readonly newestCtimeMs: number;
}

export interface StampOptions {
  /** Paths relative to the directory ('/'-separated) left out, with everything below them. */
  readonly prune?: readonly string[];
  /** Threads that list and lstat directories; by default one per core, at most 4. */
  readonly threads?: number;
}

const LINE = /^(sha256:[0-9a-f]{64}) (\d+) (\d+)\.(\d{9})\n$/;

/** The stamp of the tree at `dir`; rejects with the helper's error line if any entry cannot be read. */
export async function stampTree(dir: string, opts: StampOptions = {}): Promise<TreeStamp> {
  const threads = opts.threads ?? Math.min(4, availableParallelism());
  const args = ['stamp', '--threads', String(threads)];
  for (const p of opts.prune ?? []) args.push('--prune', p);
  // Through the served helper: a launch of its own costs several ms of the main thread (served.ts).
  const served = streamServed([...args, '--', resolve(dir)]);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of served.stdout) chunks.push(chunk as Buffer);
  } catch {
    // Cut short: the helper could not answer, and the outcome says why.
  }
  const outcome = await served.outcome;
  if (outcome.exitCode !== 0) throw failed(outcome);
  const line = Buffer.concat(chunks).toString('latin1');
  const m = LINE.exec(line);
  if (!m) throw new Error(`tsbuild-helper stamp: unexpected output ${JSON.stringify(line)}`);
  return { digest: m[1]!, entries: Number(m[2]), newestCtimeMs: Number(m[3]) * 1000 + Number(m[4]) / 1e6 };
}
