// Docker's overlay2 prerequisite: does the backing filesystem report d_type?
import { resolve } from 'node:path';
import { failed, invokeHelper } from './binary.js';

/**
 * Whether readdir on DIR's filesystem returns real d_type values. Overlayfs needs them;
 * xfs formatted with ftype=0 does not provide them. Writes and removes one temporary file in DIR.
 */
export async function supportsDType(dir: string): Promise<boolean> {
  const outcome = await invokeHelper(['supports-dtype', '--', resolve(dir)]);
  if (outcome.exitCode === 0) return true;
  if (outcome.exitCode === 1) return false;
  throw failed(outcome);
}
