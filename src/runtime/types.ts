// What the native helper (native/helper/*.c) reports and accepts. The helper exists because
// Node has no mount(2), pivot_root(2), namespaces, mknod(2) or xattr calls.

/** One filesystem entry as `tsbuild-helper walk DIR` reports it (lstat + xattrs, never following symlinks). */
export interface WalkRecord {
  /**
   * Path relative to the walked directory, '/'-separated, no leading './' or '/'. Never empty (the
   * root itself is not reported). A byte that is not UTF-8 arrives as a lone surrogate
   * (src/fs/bytename.ts: hand such paths to node:fs through its hostPath); so does one in `link`.
   */
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
/** Paths may be bytes: the helper takes them as they are, so a name need not be UTF-8. */
export type FsOp =
  | {
      readonly op: 'mknod';
      readonly path: string | Buffer;
      readonly type: 'c' | 'b' | 'p';
      readonly mode: number;
      readonly major: number;
      readonly minor: number;
      readonly uid: number;
      readonly gid: number;
    }
  | { readonly op: 'setxattr'; readonly path: string | Buffer; readonly name: string | Buffer; readonly value: Buffer }
  /** `from`'s attribute `name` onto `path`, when `from` has it. */
  | { readonly op: 'copyxattr'; readonly from: string | Buffer; readonly path: string | Buffer; readonly name: string };

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
  /**
   * Who mounts it: the kernel's overlayfs (absent), or the FUSE program fuse-overlayfs where the
   * kernel refuses overlayfs in a user namespace. Same directories either way; the upper dir's
   * whiteout conventions differ a little (layer/whiteout.ts).
   */
  readonly program?: 'fuse-overlayfs';
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
  /**
   * The step's own mounts (`RUN --mount`), applied in this order after `binds`: the caller sorts
   * them so that a mount at /a comes before one at /a/b (whose target is then made inside the first).
   */
  readonly mounts?: readonly StepMount[];
  /** Environment variables whose values are secrets: they reach the helper through pipes, never its argv or environment. */
  readonly secretEnv?: readonly SecretEnv[];
  /**
   * `RUN --security=insecure` (BuildKit's insecure entitlement): every capability tsbuild holds
   * (for a USER step too), no masked or read-only kernel files, /sys writable, device nodes
   * openable, and BuildKit's extra devices (fuse, kvm, loop...) in /dev.
   */
  readonly privileged?: boolean;
}

/**
 * One `RUN --mount` as the helper applies it. Targets are absolute paths inside the rootfs,
 * without ':'; a missing target is created (a directory for a directory or tmpfs, an empty
 * file otherwise) and removed again after the step if still empty. Every mount is nodev
 * unless the step is privileged, like the root: nodev is what stands in for Docker's device
 * cgroup, so a device node in a bound snapshot cannot be opened either.
 */
export type StepMount =
  | {
      readonly type: 'bind';
      /** A host directory, file or Unix socket (an SSH agent's), bound with everything mounted below it. */
      readonly source: string;
      readonly target: string;
      /** Applies to everything mounted below the source too. */
      readonly readonly: boolean;
    }
  | {
      /** A fresh tmpfs with its mount point's mode (runc's rule), nosuid, gone with the step. */
      readonly type: 'tmpfs';
      readonly target: string;
      /** At least 1; absent: the kernel's default, half of the RAM. */
      readonly sizeBytes?: number;
      /** The mode of its root (`tsbuild run --tmpfs`: 0o1777, docker's); absent: its mount point's. */
      readonly mode?: number;
    }
  | {
      /**
       * A read-only file holding `data`, on a tmpfs that exists only in the step's mount
       * namespace. The bytes travel through a pipe: never argv, environment or the host's disk.
       */
      readonly type: 'secret';
      readonly target: string;
      /** At most 500 KiB (BuildKit's limit); the helper refuses more. */
      readonly data: Buffer;
      /** Permission bits; like BuildKit, only 0o777 of them are kept. */
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
    };

/** An environment variable of the step whose value is a secret (`RUN --mount=type=secret,env=NAME`). */
export interface SecretEnv {
  /** Not empty, without '='. Replaces a variable of the same name in `env`. */
  readonly name: string;
  /** At most 500 KiB, and no NUL byte (an environment value cannot hold one); the helper refuses otherwise. */
  readonly value: Buffer;
}
