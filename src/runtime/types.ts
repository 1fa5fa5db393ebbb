// What the native helper (native/helper/*.c) reports and accepts. The helper exists because
// Node has no mount(2), pivot_root(2), namespaces, mknod(2) or xattr calls.

/** One filesystem entry as `tsbuild-helper walk DIR` reports it (lstat + xattrs, never following symlinks). */
export interface WalkRecord {
  /** Path relative to the walked directory, '/'-separated, no leading './' or '/'. Never empty (the root itself is not reported). */
  readonly path: string;
  /** f regular, d directory, l symlink, c char device, b block device, p fifo, s socket */
  readonly type: 'f' | 'd' | 'l' | 'c' | 'b' | 'p' | 's';
  /** Permission bits including setuid/setgid/sticky (st_mode & 07777). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** st_size for regular files; 0 otherwise. */
  readonly size: number;
  /** mtime, whole seconds and nanoseconds. */
  readonly mtime: number;
  readonly mtimeNs: number;
  readonly ino: number;
  readonly nlink: number;
  /** For c and b: device numbers. */
  readonly devMajor?: number;
  readonly devMinor?: number;
  /** For l: the link target, verbatim. */
  readonly link?: string;
  /** Extended attributes by name, values as raw bytes (all namespaces the helper can read, trusted.* included). */
  readonly xattrs?: Readonly<Record<string, Buffer>>;
}

/** Filesystem operations Node cannot do itself, applied in a batch by `tsbuild-helper apply-ops`. */
export type FsOp =
  | {
      readonly op: 'mknod';
      readonly path: string;
      readonly type: 'c' | 'b' | 'p';
      readonly mode: number;
      readonly major: number;
      readonly minor: number;
      readonly uid: number;
      readonly gid: number;
    }
  | { readonly op: 'setxattr'; readonly path: string; readonly name: string; readonly value: Buffer };

/**
 * How to present a snapshot as a root filesystem, as containerd's mount.Mount says it: data, not
 * an action. A snapshotter returns a list of them; the mount without a `target` is the root, and
 * the others go over paths inside it (Docker's init files).
 */
export type Mount = BindMount | OverlayMount;

/** A directory (or, with a target, a file) bound at the root or at `target` inside it. */
export interface BindMount {
  readonly type: 'bind';
  readonly source: string;
  /** Absolute path inside the rootfs; absent for the root itself. */
  readonly target?: string;
  readonly readonly?: boolean;
}

/** An overlayfs stack. Without `upper` it is read-only. */
export interface OverlayMount {
  readonly type: 'overlay';
  readonly target?: undefined;
  /** The directory relative lowerdirs and upper dirs resolve against. */
  readonly cwd: string;
  /** Top first. */
  readonly lowerdirs: readonly string[];
  /** The writable layer and overlayfs's scratch dir beside it (same filesystem). */
  readonly upper?: { readonly dir: string; readonly work: string };
  /** Further overlay options, e.g. `index=off`. */
  readonly options: readonly string[];
}

/** One namespaced process, run by `tsbuild-helper run`. */
export interface RunSpec {
  /** The prepared root filesystem (an overlay mount or a plain directory). The helper pivots into it. */
  readonly rootfs: string;
  /** argv[0] is looked up in PATH from `env` when it has no '/'. */
  readonly argv: readonly string[];
  /** KEY=VALUE, exactly the process environment. */
  readonly env: readonly string[];
  /** Absolute path inside the rootfs; created (root-owned 0755 parents) if missing. */
  readonly cwd: string;
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups. */
  readonly groups: readonly number[];
  readonly hostname: string;
  /** host: share the host's network namespace (docker build's default); none: a new one with only lo up. */
  readonly network: 'host' | 'none';
  /** Files bind-mounted over paths inside the rootfs (the init layer's /etc/hosts, /etc/resolv.conf, /etc/hostname). */
  readonly binds: readonly BindMount[];
}
