// An image that holds tsbuild, made offline from this machine's files, for the test that runs
// tsbuild in a rootless podman container as a Kubernetes pod would (podman.test.ts). Its contents
// are what docs/rootless.md ("Kubernetes") says such an image needs:
//   - node and the shared libraries ldd lists for it (and for tar and newuidmap);
//   - tsbuild: dist/bin (the bundled CLI, which needs no node_modules), package.json and the
//     native helper;
//   - /bin/busybox (busybox-static, for `tsbuild bootstrap busybox` and a shell) and GNU tar
//     (bootstrap writes its layer with it);
//   - newuidmap and newgidmap with file capabilities (cap_setuid, cap_setgid), not setuid: a
//     setuid-root newuidmap opens /proc/PID/uid_map as root, and the kernel then wants
//     CAP_SYS_ADMIN, which a container's bounding set lacks. Setuid copies are kept in
//     /opt/setuid-bin so that the test can show that;
//   - /etc/passwd and /etc/group with the user 1000 (builder), its /etc/subuid and /etc/subgid
//     range (100000, 65536: what a pod without a user namespace of its own would use), /tmp 1777.
// The rootfs goes in as a tarball (`tsbuild import`), not through COPY: COPY does not carry
// security.capability, and the file capabilities are the point.
import { chmod, chown, copyFile, cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { CLI, REPO, ok } from '../helpers/tsbuild.js';

export const IMAGE = 'tsbuild-in-a-pod:test';
/** The image's user, as a pod's runAsUser. */
export const POD_UID = 1000;
export const POD_HOME = '/home/builder';
/** The range the image's /etc/subuid and /etc/subgid give the user. */
export const POD_RANGE = { start: 100000, count: 65536 };

/** podman's (containers/common's) default seccomp profile, the base of the pod's own. */
export const DEFAULT_SECCOMP = '/usr/share/containers/seccomp.json';

/** The host files the image is made of, each with the package that installs it. */
const HOST_FILES: readonly (readonly [string, string])[] = [
  ['/bin/busybox', 'busybox-static'],
  ['/bin/tar', 'tar'],
  ['/usr/bin/newuidmap', 'uidmap'],
  ['/usr/bin/newgidmap', 'uidmap'],
  ['/sbin/setcap', 'libcap2-bin'],
];

export async function checkHostFiles(): Promise<void> {
  if ((await execa('test', ['-r', DEFAULT_SECCOMP], { reject: false })).exitCode !== 0) {
    throw new Error(
      `${DEFAULT_SECCOMP} is missing: install it with \`apt-get install golang-github-containers-common\` (podman's dependency)`,
    );
  }
  for (const [path, pkg] of HOST_FILES) {
    const found = await execa('test', ['-x', path], { reject: false });
    if (found.exitCode !== 0) throw new Error(`${path} is missing: install it with \`apt-get install ${pkg}\` (scripts/setup.sh does)`);
  }
  const file = await execa('file', ['-b', '/bin/busybox'], { reject: false });
  if (/dynamically linked/.test(String(file.stdout))) throw new Error('/bin/busybox is not static: `apt-get install busybox-static`');
}

/** The libraries `ldd` says `binary` loads, by absolute path. */
async function libraries(binary: string): Promise<string[]> {
  const { stdout } = await execa('ldd', [binary]);
  return [...stdout.matchAll(/(?:=> |^\s*)(\/\S+)/gm)].map((m) => m[1]!);
}

async function copyInto(rootfs: string, path: string, mode?: number): Promise<void> {
  const to = join(rootfs, path);
  await mkdir(dirname(to), { recursive: true });
  await copyFile(path, to);
  if (mode !== undefined) await chmod(to, mode);
}

async function writeRootfs(rootfs: string): Promise<void> {
  const libs = new Set<string>();
  for (const binary of [process.execPath, '/bin/tar', '/usr/bin/newuidmap']) for (const l of await libraries(binary)) libs.add(l);
  for (const lib of libs) await copyInto(rootfs, lib);
  await mkdir(join(rootfs, 'usr/local/bin'), { recursive: true });
  await copyFile(process.execPath, join(rootfs, 'usr/local/bin/node'));
  await cp(join(REPO, 'dist/bin'), join(rootfs, 'opt/tsbuild/dist/bin'), { recursive: true });
  await copyFile(join(REPO, 'package.json'), join(rootfs, 'opt/tsbuild/package.json'));
  await mkdir(join(rootfs, 'opt/tsbuild/native/out'), { recursive: true });
  await copyFile(join(REPO, 'native/out/tsbuild-helper'), join(rootfs, 'opt/tsbuild/native/out/tsbuild-helper'));
  await writeFile(join(rootfs, 'usr/local/bin/tsbuild'), '#!/bin/sh\nexec /usr/local/bin/node /opt/tsbuild/dist/bin/tsbuild.js "$@"\n', {
    mode: 0o755,
  });

  await copyInto(rootfs, '/bin/busybox', 0o755);
  const { stdout: applets } = await execa('/bin/busybox', ['--list']);
  for (const applet of applets.split('\n').filter(Boolean)) await symlink('busybox', join(rootfs, 'bin', applet)).catch(() => undefined);
  // GNU tar, found before busybox's on the image's PATH.
  await mkdir(join(rootfs, 'usr/bin'), { recursive: true });
  await copyFile('/bin/tar', join(rootfs, 'usr/bin/tar'));
  await chmod(join(rootfs, 'usr/bin/tar'), 0o755);

  for (const [tool, cap] of [
    ['newuidmap', 'cap_setuid=ep'],
    ['newgidmap', 'cap_setgid=ep'],
  ] as const) {
    await copyInto(rootfs, `/usr/bin/${tool}`, 0o755);
    await execa('/sbin/setcap', [cap, join(rootfs, 'usr/bin', tool)]);
    await mkdir(join(rootfs, 'opt/setuid-bin'), { recursive: true });
    await copyFile(`/usr/bin/${tool}`, join(rootfs, 'opt/setuid-bin', tool));
    await chmod(join(rootfs, 'opt/setuid-bin', tool), 0o4755);
  }

  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await writeFile(
    join(rootfs, 'etc/passwd'),
    `root:x:0:0:root:/root:/bin/sh\nbuilder:x:${POD_UID}:${POD_UID}:builder:${POD_HOME}:/bin/sh\n`,
  );
  await writeFile(join(rootfs, 'etc/group'), `root:x:0:\nbuilder:x:${POD_UID}:\n`);
  for (const file of ['etc/subuid', 'etc/subgid']) await writeFile(join(rootfs, file), `builder:${POD_RANGE.start}:${POD_RANGE.count}\n`);
  await mkdir(join(rootfs, 'tmp'), { recursive: true });
  await chmod(join(rootfs, 'tmp'), 0o1777);
  await mkdir(join(rootfs, POD_HOME), { recursive: true });
  await chown(join(rootfs, POD_HOME), POD_UID, POD_UID);
}

/**
 * Builds IMAGE as root into the store `root` (a temp dir of `work`) and saves it as a docker
 * archive at `archive`.
 */
export async function buildTsbuildImage(root: string, work: string, archive: string): Promise<void> {
  if ((await execa('test', ['-r', CLI], { reject: false })).exitCode !== 0) throw new Error(`${CLI} is missing: run \`npm run build\``);
  const rootfs = join(work, 'rootfs');
  await mkdir(rootfs);
  await writeRootfs(rootfs);
  const tarball = join(work, 'rootfs.tar');
  await execa('tar', ['--xattrs', '--xattrs-include=security.capability', '--numeric-owner', '-C', rootfs, '-cf', tarball, '.']);
  await ok(root, ['import', tarball, 'tsbuild-rootfs:test']);
  const context = join(work, 'context');
  await mkdir(context);
  await writeFile(
    join(context, 'Dockerfile'),
    [
      'FROM tsbuild-rootfs:test',
      `ENV PATH=/usr/local/bin:/usr/bin:/bin HOME=${POD_HOME}`,
      `USER ${POD_UID}:${POD_UID}`,
      `WORKDIR ${POD_HOME}`,
      'ENTRYPOINT ["/usr/local/bin/tsbuild"]',
      '',
    ].join('\n'),
  );
  await ok(root, ['build', '-q', '-t', IMAGE, context]);
  await ok(root, ['save', '-o', archive, IMAGE]);
}

/**
 * The pod's Localhost seccomp profile (docs/rootless.md): podman's default, which allows unshare
 * and mount, plus sethostname and setdomainname, which it allows only with CAP_SYS_ADMIN (a RUN
 * step sets its hostname in a UTS namespace of its own).
 */
export async function writeSeccompProfile(path: string): Promise<void> {
  const profile = JSON.parse(await readFile(DEFAULT_SECCOMP, 'utf8')) as { syscalls: { names: string[] }[] };
  const extra = ['sethostname', 'setdomainname'];
  profile.syscalls = profile.syscalls
    .map((rule) => ({ ...rule, names: rule.names.filter((n) => !extra.includes(n)) }))
    .filter((rule) => rule.names.length > 0);
  profile.syscalls.push({ names: extra, action: 'SCMP_ACT_ALLOW' } as { names: string[] });
  await writeFile(path, JSON.stringify(profile, null, 1));
}

/** The context the pod builds: COPY, and a RUN whose file is chowned into the subordinate range. */
export async function writePodContext(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'Dockerfile'),
    'FROM busybox\nCOPY a.txt /a.txt\nRUN echo "built: $(cat /a.txt)" > /out.txt && chown 1000:1000 /out.txt\n',
  );
  await writeFile(join(dir, 'a.txt'), 'hello\n');
}
