// Handing directory trees to a process that removes them after tsbuild has exited
// (`tsbuild-helper reap`, native/helper/reap.c): how an interrupted build gives the terminal back
// at once although the files its half-done step made take seconds to delete.
import { spawn } from 'node:child_process';
import { helperPath, HelperError } from './binary.js';

export interface ReapPlaces {
  /** Where the trees are moved first (the store's tmp/, on their filesystem). */
  readonly into: string;
  /** The store's leases/: the remover leases what it holds, so a kill -9 of it is repaired. */
  readonly leases: string;
}

/**
 * Moves `paths` into `places.into` under the remover's own name and returns once they are its
 * (a few milliseconds); it removes them in its own session, outliving this process. Rejects,
 * with the paths where they were, if they could not be handed over (another filesystem, no
 * helper): the caller then removes them itself.
 */
export function reapLater(paths: readonly string[], places: ReapPlaces): Promise<void> {
  const args = ['reap', '--into', places.into, '--leases', places.leases, ...paths];
  return new Promise((resolve, reject) => {
    const child = spawn(helperPath(), args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const settle = (ok: boolean): void => {
      child.stdout.destroy();
      child.stderr.destroy();
      child.unref();
      if (ok) resolve();
      else
        reject(
          new HelperError(err.trim().split('\n').at(-1) || 'tsbuild-helper reap failed', { command: [helperPath(), ...args], stderr: err }),
        );
    };
    // "ok" comes, and stdout closes, once the paths are renamed and leased; the removal follows.
    // Without it the helper says why on stderr as it exits, which may reach us after stdout's end.
    child.stdout.on('end', () => {
      if (out.trim() === 'ok') settle(true);
      else if (child.stderr.readableEnded) settle(false);
      else child.stderr.once('end', () => settle(false));
    });
    child.on('error', () => settle(false));
  });
}
