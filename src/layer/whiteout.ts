// The layer-tar conventions for deletions and for what a file's metadata may carry, in one place
// (moby keeps its AUFS-style whiteout names and their overlay translation together the same way).
//
// In a tar, a deleted `a/b` is the empty file `a/.wh.b`, and a directory that hides everything
// below it is marked by the empty file `dir/.wh..wh..opq`. On an overlay upper dir the same facts
// are a 0/0 character device and the xattr trusted.overlay.opaque=y; under the `userxattr` mount
// option (overlayfs mounted in a user namespace, where trusted.* needs a capability over the
// initial namespace) the xattr is user.overlay.opaque=y. The device stays a 0/0 device: the
// kernel lets anyone make that one (vfs_mknod's whiteout exception).

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_OPAQUE = '.wh..wh..opq';
/** AUFS's own bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`) at the layer root; never applied. */
export const WHITEOUT_META_PREFIX = '.wh..wh.';

export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';

/** Where overlayfs keeps its bookkeeping xattrs: user.overlay.* under `userxattr`, else trusted.overlay.*. */
export type OverlayXattrPrefix = 'trusted.overlay.' | 'user.overlay.';

/** The xattr prefix of an overlay mounted with `options` (the extra options of an OverlayMount). */
export function overlayXattrPrefix(options: readonly string[]): OverlayXattrPrefix {
  return options.includes('userxattr') ? 'user.overlay.' : 'trusted.overlay.';
}

/**
 * fuse-overlayfs (1.x, Debian's; runtime/mount.ts mounts it) writes an upper dir in its own
 * variant of the conventions, and the differ reads them here:
 * - a deletion is a 0/0 character device, or the empty file `.wh.NAME` where mknod is refused;
 *   it also whites out names that no lower layer has (a directory made and removed in one step,
 *   and `.wh..opq` beside its own opaque marker), which the kernel never does, so a whiteout
 *   counts only when a lower layer has the path;
 * - an opaque directory holds the empty file `.wh..wh..opq`, and carries trusted.overlay.opaque=y
 *   where it may (real root), else user.fuseoverlayfs.opaque=y; it reads user.overlay.opaque too,
 *   so the layers the kernel's conventions made (apply, pull, load) stack under it unchanged;
 *   it marks every directory it creates, also where no lower layer has one, so a mark counts
 *   only where a lower layer has the path (where the kernel would have marked it too);
 * - its bookkeeping xattrs (user.fuseoverlayfs.*, the origin of a copy-up) are not content.
 */
export const FUSE_OVERLAY_XATTR_PREFIX = 'user.fuseoverlayfs.';
export const FUSE_OPAQUE_XATTRS: readonly string[] = ['trusted.overlay.opaque', 'user.overlay.opaque', 'user.fuseoverlayfs.opaque'];

/** Whether an xattr is overlay bookkeeping in an upper dir fuse-overlayfs wrote. */
export function isFuseOverlayBookkeeping(name: string): boolean {
  return name.startsWith(FUSE_OVERLAY_XATTR_PREFIX) || name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/**
 * The xattrs a layer tar records for a file, from what the walk read on disk:
 * - trusted.overlay.* / user.overlay.*: overlayfs's own bookkeeping (opacity, redirects, origin);
 *   opacity travels as the opaque marker instead, the rest means nothing outside this host.
 * - security.selinux: the host's label for the snapshot dir, not part of the image (moby records
 *   no xattr but security.capability; this keeps every other one).
 * - security.capability in revision 3 (namespaced, with a root uid) is rewritten to revision 2,
 *   as moby does: a root uid makes no sense outside the user namespace that wrote it.
 */
export function layerXattrs(xattrs: Readonly<Record<string, Buffer>> | undefined): ReadonlyMap<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [name, value] of Object.entries(xattrs ?? {})) {
    if (name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.') || name === 'security.selinux') continue;
    out.set(name, name === 'security.capability' ? capabilityV2(value) : value);
  }
  return out;
}

const VFS_CAP_REVISION_2 = 2;
const VFS_CAP_REVISION_3 = 3;
const XATTR_CAPS_SZ_2 = 20;

function capabilityV2(value: Buffer): Buffer {
  // magic_etc is a little-endian u32 whose top byte is the revision.
  if (value.length > 3 && value[3] === VFS_CAP_REVISION_3 && value.length >= XATTR_CAPS_SZ_2) {
    const v2 = Buffer.from(value.subarray(0, XATTR_CAPS_SZ_2));
    v2[3] = VFS_CAP_REVISION_2;
    return v2;
  }
  return value;
}
