// Streaming a directory tree as WalkRecords through `tsbuild-helper walk`.
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { failed } from './binary.js';
import { streamServed } from './served.js';
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
  // Through the served helper: a launch of its own cost ~7 ms of the main thread (served.ts).
  const served = streamServed(['walk', '--', resolve(dir)]);
  const lines = createInterface({ input: served.stdout, crlfDelay: Infinity });
  let complete = false;
  try {
    for await (const line of lines) {
      if (line !== '') yield decode(line);
    }
    complete = true;
  } finally {
    if (!complete) served.stop();
  }
  const outcome = await served.outcome;
  if (outcome.exitCode !== 0) throw failed(outcome);
}
