// "No space left on device" in words a user can act on: what was being written, and where.
// Node's own message ("ENOSPC: no space left on device, write") names neither.
import { TsbuildError } from '../errors.js';

/** The disk holding the store (or a file tsbuild was writing) is full. */
export class NoSpaceError extends TsbuildError {}

/** How every explained message starts. */
export const NO_SPACE_WORDS = 'no space left on device while ';

/** Whether `err`, or an error it wraps, is ENOSPC (also when only a helper's message says so). */
export function isNoSpace(err: unknown): boolean {
  for (let e = err as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 8; depth++) {
    if (e.code === 'ENOSPC') return true;
    if (typeof e.message === 'string' && /\bENOSPC\b|No space left on device/.test(e.message)) return true;
    e = e.cause as typeof e;
  }
  return false;
}

/**
 * `err` unchanged unless it is ENOSPC; then one line: `no space left on device while WHAT: the
 * filesystem holding ROOT is full ...`. An error already worded so passes through.
 */
export function explainNoSpace(err: unknown, what: string, root: string): unknown {
  if (err instanceof NoSpaceError || !isNoSpace(err)) return err;
  return new NoSpaceError(
    `${NO_SPACE_WORDS}${what}: the filesystem holding the store ${root} is full (free some space, e.g. \`tsbuild prune\`, or use --root on a larger one)`,
    { cause: err },
  );
}
