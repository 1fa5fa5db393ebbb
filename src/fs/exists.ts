// Whether a path exists, not following a final symlink (a dangling link exists).
import { lstat } from 'node:fs/promises';

export async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}
