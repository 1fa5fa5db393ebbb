// The life of a root filesystem to work in, in one place for RUN, COPY/ADD, WORKDIR, COPY --from
// and `tsbuild run`: a snapshot is prepared on a layer (with Docker's init layer when a process
// will run in it), mounted, worked in, unmounted, and then committed as a layer or discarded.
// Whatever happens, nothing stays mounted and an uncommitted snapshot does not stay behind.
//
// Mount points are scratch directories of the store (`tmp/rootfs-<pid>-*`): the next command's
// repair unmounts and removes them if this process is killed.
import { readFile, rmdir } from 'node:fs/promises';
import { mountRootfs, unmountRootfs, type MountedRootfs } from '../runtime/helper.js';
import type { LayerWriteOptions } from '../layer/types.js';
import type { Mount } from '../runtime/types.js';
import type { InitLayer } from '../snapshot/snapshotter.js';
import type { ActiveSnapshot, LayerRecord, Store } from '../store/store.js';

export type { MountedRootfs };

export interface WorkOptions extends LayerWriteOptions {
  /** Docker's init layer (/etc/hosts, /etc/resolv.conf, /etc/hostname): for rootfs a process runs in. */
  readonly init?: InitLayer;
  /** Checked once the work is done, before anything is committed. */
  readonly signal?: AbortSignal;
}

/**
 * Runs `work` in a writable rootfs on `parent`. If it returns true, what it changed is
 * committed as a layer on `parent` and returned; if false, or if anything fails, the snapshot is
 * discarded (undefined, or the error).
 */
export async function inNewLayer(
  store: Store,
  parent: LayerRecord | undefined,
  opts: WorkOptions,
  work: (rootfs: MountedRootfs, snap: ActiveSnapshot) => Promise<boolean>,
): Promise<LayerRecord | undefined> {
  const snap = await store.prepare(parent, opts.init ? { init: opts.init } : {});
  let unmounted: Promise<void> | undefined;
  try {
    const { rootfs, close } = await openMounted(store, snap.mounts);
    let changed: boolean;
    try {
      changed = await work(rootfs, snap);
      opts.signal?.throwIfAborted();
    } catch (err) {
      await close();
      throw err;
    }
    if (!changed || rootfs.mountpoint === undefined) {
      await close();
      if (!changed) {
        await store.discard(snap);
        return undefined;
      }
    } else {
      // The differ reads the upper dir, not the mount, so the layer is written while the
      // overlay is taken down; it is published once the unmount is done, so that no process
      // can still be writing into it. (A `volatile` overlay's unmount syncs nothing: see
      // snapshot/overlay2.ts. Without it, where the kernel is older than 5.10, the unmount
      // syncs the whole upper filesystem: after a COPY of 80 MB, most of a second.)
      unmounted = close();
      unmounted.catch(() => undefined); // awaited by the commit, or below
    }
    return await store.commit(snap, {
      ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(unmounted ? { unmounted } : {}),
    });
  } catch (err) {
    // Nothing is removed from under a mount still being taken down.
    await unmounted?.catch(() => undefined);
    // Interrupted: its files (maybe 200,000 of them, seconds to delete) are removed after we exit.
    await store.discard(snap, { afterExit: opts.signal?.aborted === true });
    throw err;
  }
}

/** Runs `f` in a writable rootfs on `parent` that is thrown away afterwards (`tsbuild run`). */
export async function inThrowaway<T>(
  store: Store,
  parent: LayerRecord | undefined,
  opts: WorkOptions,
  f: (rootfs: MountedRootfs) => Promise<T>,
): Promise<T> {
  const snap = await store.prepare(parent, opts.init ? { init: opts.init } : {});
  try {
    return await mounted(store, snap.mounts, f);
  } finally {
    await store.discard(snap);
  }
}

/** Runs `f` over a read-only rootfs of `layer`'s whole filesystem (none: empty): COPY --from's source. */
export async function inView<T>(store: Store, layer: LayerRecord | undefined, f: (rootfs: string) => Promise<T>): Promise<T> {
  return mounted(store, await store.view(layer), (rootfs) => f(rootfs.rootfs));
}

/**
 * A read-only rootfs of `layer` that stays mounted until `close` (RUN --mount=from=… keeps one
 * for the whole step). Same guarantees as inView.
 */
export async function openView(store: Store, layer: LayerRecord | undefined): Promise<{ rootfs: string; close(): Promise<void> }> {
  const { rootfs, close } = await openMounted(store, await store.view(layer));
  return { rootfs: rootfs.rootfs, close };
}

/** Runs `f` with `mounts` presented as a rootfs (openMounted), then lets go of it. */
async function mounted<T>(store: Store, mounts: readonly Mount[], f: (rootfs: MountedRootfs) => Promise<T>): Promise<T> {
  const { rootfs, close } = await openMounted(store, mounts);
  try {
    return await f(rootfs);
  } finally {
    await close();
  }
}

/**
 * `mounts` presented as a rootfs at a scratch dir of the store. `close` unmounts and removes the
 * mount point, which is empty once unmounted: rmdir, never a recursive removal, which would reach
 * into the snapshot if the unmount had failed (then the directory stays for repair, and the
 * unmount's error is what the caller sees).
 */
async function openMounted(store: Store, mounts: readonly Mount[]): Promise<{ rootfs: MountedRootfs; close(): Promise<void> }> {
  let scratch: string | undefined;
  const rootfs = await mountRootfs(mounts, async () => (scratch = await store.tempDir('rootfs')));
  return {
    rootfs,
    close: async () => {
      await unmountRootfs(rootfs);
      if (scratch !== undefined) await rmdir(scratch);
    },
  };
}

/**
 * The content of Docker's `<id>-init` layer for one container or build step: the files every
 * container needs that belong to no image, and the mount points the runtime fills.
 */
export async function initLayerFor(hostname: string, extraHosts: readonly { name: string; ip: string }[] = []): Promise<InitLayer> {
  // The step shares the host's network by default, so it resolves names as the host does.
  const resolvConf = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  return {
    files: {
      'etc/hosts': [
        '127.0.0.1\tlocalhost',
        '::1\tlocalhost ip6-localhost ip6-loopback',
        'fe00::0\tip6-localnet',
        'ff00::0\tip6-mcastprefix',
        'ff02::1\tip6-allnodes',
        'ff02::2\tip6-allrouters',
        `127.0.1.1\t${hostname}`,
        // --add-host, after Docker's own lines, as Docker writes them.
        ...extraHosts.map((h) => `${h.ip}\t${h.name}`),
        '',
      ].join('\n'),
      'etc/resolv.conf': resolvConf,
      'etc/hostname': `${hostname}\n`,
    },
    dirs: ['proc', 'sys', 'dev'],
  };
}
