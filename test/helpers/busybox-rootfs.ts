// A minimal root filesystem from the host's static busybox, for tests that run real steps.
import { constants } from 'node:fs';
import { access, chmod, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export const HOST_BUSYBOX = '/bin/busybox';

/** Users and groups of the rootfs, for tests to refer to by number. */
export const APP_UID = 1000;
export const APP_GID = 1000;
/** Supplementary groups of `app` in /etc/group. */
export const APP_GROUPS = [10, 29] as const;

const PASSWD = `root:x:0:0:root:/root:/bin/sh
app:x:${APP_UID}:${APP_GID}:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`;

const GROUP = `root:x:0:
wheel:x:10:app
audio:x:29:app
app:x:${APP_GID}:
nogroup:x:65534:
`;

/**
 * Fill DIR with a busybox system: /bin/busybox and a symlink per applet, /etc/passwd and
 * /etc/group (root, app with supplementary groups, nobody), /tmp 1777, and the empty
 * /proc, /sys, /dev directories every image has. No /etc/hosts: tests bind their own.
 */
export async function makeBusyboxRootfs(dir: string): Promise<void> {
  try {
    await access(HOST_BUSYBOX, constants.X_OK);
  } catch {
    throw new Error(`${HOST_BUSYBOX} is missing: these tests need a static busybox (apt-get install -y busybox-static)`);
  }
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  await copyFile(HOST_BUSYBOX, join(bin, 'busybox'));
  await chmod(join(bin, 'busybox'), 0o755);
  const { stdout } = await execa(HOST_BUSYBOX, ['--list']);
  for (const applet of stdout.split('\n')) {
    // The list includes busybox itself, which must stay the real binary.
    if (applet === '' || applet === 'busybox' || applet.includes('/')) continue;
    await symlink('busybox', join(bin, applet));
  }
  await mkdir(join(dir, 'etc'));
  await writeFile(join(dir, 'etc', 'passwd'), PASSWD);
  await writeFile(join(dir, 'etc', 'group'), GROUP);
  for (const sub of ['proc', 'sys', 'dev', 'root', 'home/app', 'usr/local/bin']) {
    await mkdir(join(dir, sub), { recursive: true, mode: 0o755 });
  }
  await mkdir(join(dir, 'tmp'));
  await chmod(join(dir, 'tmp'), 0o1777);
}
