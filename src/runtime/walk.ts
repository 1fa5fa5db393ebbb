// Streaming a directory tree as WalkRecords through `tsbuild-helper walk`.
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { spawn } from 'node:child_process';
import { HelperError, failed, helperPath, notRunning } from './binary.js';
import { collect, exited } from './spawn.js';
import type { WalkRecord } from './types.js';

/** The helper's JSON line: a WalkRecord with xattr values in base64. */
type WireRecord = Omit<WalkRecord, 'xattrs'> & { readonly xattrs?: Readonly<Record<string, string>> };

function decode(line: string): WalkRecord {
  const { xattrs: encoded, ...record } = JSON.parse(line) as WireRecord;
  if (encoded === undefined) return record;
  const xattrs: Record<string, Buffer> = {};
  for (const [name, value] of Object.entries(encoded)) xattrs[name] = Buffer.from(value, 'base64');
  return { ...record, xattrs };
}

/**
 * Every entry below DIR (not DIR itself), lstat'ed, never following symlinks, depth-first
 * pre-order with each directory's children in byte order of their names: layer tar order.
 * Records arrive as the helper produces them; stopping the iteration early stops the helper.
 */
export async function* walk(dir: string): AsyncGenerator<WalkRecord, void, undefined> {
  const file = helperPath();
  const args = ['walk', '--', resolve(dir)];
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const done = exited(child);
  const stderrText = collect(child.stderr);
  if (!child.stdout) throw new HelperError('walk: the helper has no stdout', { command: [file, ...args] });
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  let complete = false;
  try {
    for await (const line of lines) {
      if (line !== '') yield decode(line);
    }
    complete = true;
  } finally {
    // Abandoned (break, or an exception in the consumer): stop the helper, do not leave it blocked on a full pipe.
    if (!complete) {
      child.kill();
      await done;
    }
  }
  const result = await done;
  const command = [file, ...args];
  const stderr = await stderrText;
  if (result.exitCode === undefined) throw notRunning(command, result, stderr);
  if (result.exitCode !== 0) throw failed({ command, exitCode: result.exitCode, stderr });
}
