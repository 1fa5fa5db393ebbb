// A small base image made offline from the host's statically linked busybox (Debian's
// busybox-static package): there is no registry to pull `busybox` from on a closed network.
// For another platform, the busybox of that architecture's busybox-static package (deb.ts); its
// applet list is asked of it under QEMU user emulation, as its RUN steps will run.
// Deterministic: the same busybox binary gives the same image ID on any machine.
import { mkdir, mkdtemp, rm, symlink, writeFile, chmod, stat, copyFile, utimes, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createReadStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import type { Digest } from '../digest.js';
import { InvalidInputError, TsbuildError } from '../errors.js';
import { importRootfs } from '../archive/rootfs.js';
import { hostArchitecture } from '../image/config.js';
import { formatPlatform, hostPlatform, type Platform } from '../image/platform.js';
import { checkEmulation } from '../runtime/binfmt.js';
import { busyboxDeb, debianArchitecture, unpackBusybox } from './deb.js';
import type { Store } from '../store/store.js';

export const BUSYBOX_BINARY = '/bin/busybox';
export const BUSYBOX_INSTALL_HINT = 'apt-get install -y busybox-static';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/bin/false',
  'bin:x:2:2:bin:/bin:/bin/false',
  'sys:x:3:3:sys:/dev:/bin/false',
  'www-data:x:33:33:www-data:/var/www:/bin/false',
  'nobody:x:65534:65534:nobody:/home:/bin/false',
  '',
].join('\n');

const GROUP = [
  'root:x:0:',
  'daemon:x:1:',
  'bin:x:2:',
  'sys:x:3:',
  'adm:x:4:',
  'tty:x:5:',
  'disk:x:6:',
  'wheel:x:10:root',
  'www-data:x:33:',
  'users:x:100:',
  'nogroup:x:65534:',
  '',
].join('\n');

/** Checks that the host's busybox is static (a dynamic one would not run inside the image). */
async function hostBusybox(): Promise<{ path: string; mtime: Date }> {
  let st;
  try {
    st = await stat(BUSYBOX_BINARY);
  } catch {
    throw new TsbuildError(`${BUSYBOX_BINARY} not found: install it with \`${BUSYBOX_INSTALL_HINT}\``);
  }
  const { stdout } = await execa('file', ['-b', BUSYBOX_BINARY], { reject: false });
  if (stdout && /dynamically linked/.test(stdout)) {
    throw new TsbuildError(`${BUSYBOX_BINARY} is dynamically linked: install the static one with \`${BUSYBOX_INSTALL_HINT}\``);
  }
  return { path: BUSYBOX_BINARY, mtime: st.mtime };
}

/** Writes a busybox root filesystem into `dir` (which must exist and be empty), from that busybox binary. */
export async function writeBusyboxRootfs(dir: string, busybox?: { path: string; mtime: Date }): Promise<Date> {
  const { path, mtime } = busybox ?? (await hostBusybox());
  for (const d of ['bin', 'dev', 'etc', 'home', 'proc', 'root', 'sys', 'tmp', 'usr/bin', 'usr/sbin', 'sbin', 'var/spool/mail', 'var/www']) {
    await mkdir(join(dir, d), { recursive: true, mode: 0o755 });
  }
  await chmod(join(dir, 'tmp'), 0o1777);
  await chmod(join(dir, 'root'), 0o700);
  await copyFile(path, join(dir, 'bin/busybox'));
  await chmod(join(dir, 'bin/busybox'), 0o755);
  const { stdout } = await execa(path, ['--list-full']);
  for (const applet of stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (applet === 'bin/busybox') continue;
    const target = join(dir, applet);
    await mkdir(dirname(target), { recursive: true });
    if (await lstat(target).catch(() => undefined)) continue;
    await symlink('/bin/busybox', target);
  }
  await writeFile(join(dir, 'etc/passwd'), PASSWD, { mode: 0o644 });
  await writeFile(join(dir, 'etc/group'), GROUP, { mode: 0o644 });
  return mtime;
}

export interface BootstrapOptions {
  /** The platform the image is for; default this machine's (the host's /bin/busybox). */
  readonly platform?: Platform;
  /** For another platform: its busybox-static package file; default: `apt-get download` it. */
  readonly deb?: string;
}

/** Creates (or re-creates identically) the busybox image in the store and tags it. */
export async function bootstrapBusybox(store: Store, ref = 'busybox:latest', opts: BootstrapOptions = {}): Promise<Digest> {
  const platform = opts.platform;
  if (platform !== undefined && platform.os !== 'linux')
    throw new InvalidInputError(`platform ${formatPlatform(platform)}: busybox images are for linux`);
  const foreign = platform !== undefined && formatPlatform(platform) !== formatPlatform(hostPlatform());
  if (!foreign && opts.deb !== undefined)
    throw new InvalidInputError(`--deb is for another platform than this machine's (${formatPlatform(hostPlatform())})`);
  const tmp = await mkdtemp(join(tmpdir(), 'tsbuild-busybox-'));
  try {
    const rootfs = join(tmp, 'rootfs');
    await mkdir(rootfs);
    let busybox: { path: string; mtime: Date } | undefined;
    if (foreign) {
      // A package given is checked first; then, before one is downloaded, the emulator that
      // lists the applets (by running the foreign busybox) and will run the image's steps.
      const given = opts.deb !== undefined ? await busyboxDeb(platform, tmp, opts.deb) : undefined;
      checkEmulation(platform, { host: hostArchitecture() });
      busybox = await unpackBusybox(given ?? (await busyboxDeb(platform, tmp)), tmp);
    }
    const mtime = await writeBusyboxRootfs(rootfs, busybox);
    await utimes(rootfs, mtime, mtime);
    // Through a file: the import reads the tar only after it has prepared a snapshot, and a
    // pipe nobody reads yet would be drained by execa.
    const tarball = join(tmp, 'rootfs.tar');
    await execa('tar', [
      '--sort=name',
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      `--mtime=@${Math.floor(mtime.getTime() / 1000)}`,
      '--format=pax',
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
      '-C',
      rootfs,
      '-cf',
      tarball,
      '.',
    ]);
    const id = await importRootfs(store, createReadStream(tarball), {
      ref,
      source: foreign ? `busybox-static:${debianArchitecture(platform)}` : 'busybox-static',
      ...(platform ? { platform } : {}),
      config: { Cmd: ['sh'] },
      created: mtime,
    });
    return id;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
