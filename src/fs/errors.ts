// Node's fs errors name host paths, which for a rootfs are deep inside a snapshot directory
// (`/var/lib/tsbuild/overlay2/<id>/merged/usr/bin/x`). Users think in image paths.
import { TsbuildError } from '../errors.js';

/**
 * Turn an unexpected error (EACCES, ENOSPC, ...) into a TsbuildError whose message shows paths
 * under `root` as the image sees them. tsbuild's own errors already do and pass unchanged.
 */
export function withImagePaths(err: unknown, root: string): unknown {
  // Duck-typed rather than `instanceof Error`: errors from Node's fs may come from another realm.
  if (err instanceof TsbuildError || typeof (err as { message?: unknown })?.message !== 'string') return err;
  const prefix = root.replace(/\/+$/, '').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // `<root>/x` becomes `/x` and `<root>` alone `/`; `<root>2/x` is another path and stays.
  const message = (err as Error).message.replace(new RegExp(`${prefix}(/|(?=['"\\s:,)]|$))`, 'g'), '/');
  return new TsbuildError(message, { cause: err });
}
