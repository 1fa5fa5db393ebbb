// tsbuild inside a rootless podman container, run the way docs/rootless.md ("Kubernetes") says to
// run it in a pod without `privileged: true` (issue 19): an ordinary user of this machine runs
// Debian's podman; inside, tsbuild runs as user 1000 of an image made from this machine's files
// (tsbuild-image.ts), with its store on a volume (a pod's emptyDir), and builds, runs and saves
// an image with COPY and RUN on a busybox base.
//
// Each setting the pod needs is a podman option below, with the Kubernetes field it stands for;
// a test per setting leaves it out and shows what then fails:
//   - seccomp: podman's default profile, plus sethostname and setdomainname (a RUN step's
//     hostname is set in its own UTS namespace; the default profile allows that only with
//     CAP_SYS_ADMIN);
//   - capabilities: all dropped but SETUID and SETGID, which newuidmap's and newgidmap's file
//     capabilities need in the bounding set; tsbuild's own namespace has every capability anyway.
//     With a single ID (no /etc/subuid range) none at all, and no_new_privs too;
//   - a pod with a user namespace of its own (hostUsers: false) has IDs 0-65535 only: the image's
//     range must fit in them (--uidmap 0:0:65536).
// AppArmor cannot be tried here (this kernel has none); /dev/fuse is not needed (the kernel
// mounts overlayfs in the user namespace); the masked /proc and /sys of the container are
// handled by tsbuild (test/rootless/confinement.test.ts).
//
// Runs as root: it creates the user (test/rootless/users.ts) and builds the image.
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { REPO, tempDir, tempRoot } from '../helpers/tsbuild.js';
import {
  buildTsbuildImage,
  checkHostFiles,
  DEFAULT_SECCOMP,
  IMAGE,
  POD_HOME,
  POD_RANGE,
  writePodContext,
  writeSeccompProfile,
} from './tsbuild-image.js';
import { createUsers, removeUsers, runAsUser, type User, type Users } from './users.js';

const PODMAN = '/usr/bin/podman';

let users: Users | undefined;
let user: User;
/** podman's storage, its run and temp dirs, the volumes: all under the user's home. */
let work: string;
let imageRoot: Awaited<ReturnType<typeof tempRoot>> | undefined;

/** `podman ARGS` as the user, with a storage of its own (vfs: no FUSE, no mounts to undo). */
async function podman(args: readonly string[]) {
  const global = [
    ...['--root', join(work, 'storage'), '--runroot', join(work, 'run'), '--tmpdir', join(work, 'tmp')],
    ...['--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'none'],
  ];
  return runAsUser(user, ['env', `XDG_RUNTIME_DIR=${join(work, 'xdg')}`, PODMAN, ...global, ...args]);
}

async function okPodman(args: readonly string[]): Promise<string> {
  const r = await podman(args);
  if (r.exitCode !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The pod of docs/rootless.md as podman options (each line names the pod's field). */
function pod(store: string, overrides: { seccomp?: string; caps?: readonly string[]; extra?: readonly string[] } = {}): string[] {
  return [
    // A pod has a network of its own; podman's would need slirp4netns, and the build needs none.
    ...['--network', 'none'],
    // runAsUser: 1000, runAsGroup: 1000 (the image's USER too).
    ...['--user', '1000:1000'],
    // capabilities: drop: [ALL], add: [SETUID, SETGID].
    ...(overrides.caps ?? ['--cap-drop', 'ALL', '--cap-add', 'SETUID', '--cap-add', 'SETGID']),
    // seccompProfile: Localhost (podman's default plus sethostname).
    ...['--security-opt', `seccomp=${overrides.seccomp ?? join(work, 'seccomp.json')}`],
    // An emptyDir at ~/.local/share/tsbuild; the build context, read-only; an output directory.
    ...['-v', `${store}:${POD_HOME}/.local/share/tsbuild`, '-v', `${join(work, 'context')}:/context:ro`, '-v', `${join(work, 'out')}:/out`],
    ...(overrides.extra ?? []),
  ];
}

/** A fresh directory for a store, writable by the container's user 1000, as an emptyDir is (0777). */
async function emptyDir(name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  await chmod(dir, 0o777);
  return dir;
}

/** `sh -c SCRIPT` in the image, as the pod's user. */
async function inPod(podArgs: readonly string[], script: string) {
  return podman(['run', '--rm', ...podArgs, '--entrypoint', '/bin/sh', IMAGE, '-c', `set -e\n${script}`]);
}

beforeAll(async () => {
  if ((await execa('test', ['-x', PODMAN], { reject: false })).exitCode !== 0) {
    throw new Error(`${PODMAN} is missing: install it with \`apt-get install podman\` (scripts/setup.sh does)`);
  }
  if ((await execa('test', ['-r', DEFAULT_SECCOMP], { reject: false })).exitCode !== 0) {
    throw new Error(
      `${DEFAULT_SECCOMP} is missing: install it with \`apt-get install golang-github-containers-common\` (podman's dependency)`,
    );
  }
  await checkHostFiles();
  users = await createUsers('pm');
  user = users.withRange;
  // Rootless podman maps container IDs 1..N to the user's ranges: the image's own range
  // (100000-165535) must fit in N, so the user gets a second, larger range.
  const count = POD_RANGE.start + POD_RANGE.count;
  const start = 300_000_000 + (process.pid % 1000) * count;
  const range = `${start}-${start + count - 1}`;
  await execa('usermod', ['--add-subuids', range, '--add-subgids', range, user.name]);
  work = join(user.home, 'pod');
  await writePodContext(join(work, 'context'));
  await writeSeccompProfile(join(work, 'seccomp.json'));
  await writeFile(join(work, 'empty'), '');
  await mkdir(join(work, 'xdg'), { mode: 0o700 });
  await execa('chown', ['-R', `${user.name}:`, work]);
  await emptyDir('out');

  imageRoot = await tempRoot();
  const archive = join(work, 'tsbuild-image.tar');
  await buildTsbuildImage(imageRoot.root, await tempDir('tsbuild-podimage-'), archive);
  await execa('chown', [`${user.name}:`, archive]);
  expect(await okPodman(['load', '-i', archive])).toContain(`Loaded image: docker.io/library/${IMAGE}`);
});

afterAll(async () => {
  if (users && work) {
    await podman(['rm', '--all', '--force']);
    // Rootless podman leaves a pause process holding its user namespace.
    const pid = await readFile(join(work, 'tmp', 'pause.pid'), 'utf8').catch(() => '');
    if (/^\d+$/.test(pid.trim())) await execa('kill', ['-KILL', pid.trim()], { reject: false });
    // podman's storage and the stores hold files of subordinate IDs: root removes them.
    await rm(work, { recursive: true, force: true });
  }
  await imageRoot?.cleanup();
  await removeUsers(users);
});

test("the pod's settings: tsbuild as user 1000 bootstraps busybox, builds COPY and RUN, runs and saves the image", async () => {
  const store = await emptyDir('store-pod');
  const r = await inPod(
    pod(store),
    [
      'tsbuild info',
      'tsbuild bootstrap busybox',
      'tsbuild build --progress plain -t hello /context',
      'echo "out: $(tsbuild run hello cat /out.txt)"',
      // RUN with a network namespace of its own mounts a new sysfs, under the container's masked /sys.
      'tsbuild build -q --no-cache --network none -t hello-none /context >/dev/null',
      'echo "none: $(tsbuild run hello-none cat /out.txt)"',
      'echo "owner: $(tsbuild run hello stat -c %u:%g /out.txt)"',
      'tsbuild images',
      'tsbuild save -o /out/hello.tar hello',
    ].join('\n'),
  );
  if (r.exitCode !== 0) throw new Error(`exited ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  expect(r.stdout).toMatch(/^Rootless: yes, as root of a user namespace \(subordinate ID ranges\)$/m);
  expect(r.stdout).toMatch(/^ UID map: 0 -> 1000, 1 -> 100000 \(65536\)$/m);
  expect(r.stdout).toMatch(/^Storage driver: overlay2$/m);
  expect(r.stdout).toMatch(/^out: built: hello$/m);
  expect(r.stdout).toMatch(/^none: built: hello$/m);
  // chown 1000 in the RUN: an ID of the image's subordinate range, mapped through newuidmap.
  expect(r.stdout).toMatch(/^owner: 1000:1000$/m);
  expect(r.stdout).toMatch(/^hello\s+latest\s+[0-9a-f]{12}\s/m);

  // The saved archive, read on the host: the tag, and the RUN's file in its last layer.
  const archive = join(work, 'out', 'hello.tar');
  const manifest = JSON.parse((await execa('tar', ['-xOf', archive, 'manifest.json'])).stdout) as {
    RepoTags: string[];
    Layers: string[];
  }[];
  expect(manifest[0]!.RepoTags).toEqual(['hello:latest']);
  const last = manifest[0]!.Layers.at(-1)!;
  const layer = join(work, 'out', 'last-layer.tar');
  await writeFile(layer, (await execa('tar', ['-xOf', archive, last], { encoding: 'buffer' })).stdout);
  expect((await execa('tar', ['-xOf', layer, 'out.txt'])).stdout).toBe('built: hello');
  expect((await execa('tar', ['-tvf', layer, 'out.txt'])).stdout).toMatch(/^-rw-r--r-- 1000\/1000 /);
});

test("seccomp: podman's default profile refuses the RUN step's sethostname (CAP_SYS_ADMIN only)", async () => {
  const store = await emptyDir('store-seccomp');
  const r = await inPod(pod(store, { seccomp: DEFAULT_SECCOMP }), 'tsbuild bootstrap busybox >/dev/null\ntsbuild build -t hello /context');
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(/^Error: Dockerfile:3: tsbuild-helper: sethostname [0-9a-f]+: Operation not permitted$/m);
});

test('capabilities: without SETUID and SETGID in the bounding set, newuidmap and its file capability cannot run', async () => {
  const store = await emptyDir('store-nocaps');
  const r = await inPod(pod(store, { caps: ['--cap-drop', 'ALL'] }), 'tsbuild info');
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(
    /^tsbuild-helper: exec newuidmap: Operation not permitted \(its file capability is not in the capability bounding set/m,
  );
});

test('a setuid newuidmap (instead of file capabilities) cannot map the range: it runs as root of the container', async () => {
  const store = await emptyDir('store-setuid');
  const setuid = ['-e', 'PATH=/opt/setuid-bin:/usr/local/bin:/usr/bin:/bin'];
  // With the pod's capabilities, root of the container may not even open /proc/PID/uid_map of
  // user 1000's process (no CAP_DAC_OVERRIDE).
  const r = await inPod(pod(store, { extra: setuid }), 'ls -l /opt/setuid-bin/newuidmap\ntsbuild info');
  expect(r.stdout).toMatch(/^-rwsr-xr-x .* \/opt\/setuid-bin\/newuidmap$/m);
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(/^newuidmap: open of uid_map failed: Permission denied$/m);
  expect(r.stderr).toMatch(/newuidmap \d+ failed: .* in a container, newuidmap needs file capabilities, not the setuid bit/);
  // With podman's (and a pod's) default capabilities it opens the file, and the kernel then
  // wants CAP_SYS_ADMIN of its opener over the new namespace, which a container's bounding set lacks.
  const defaults = await inPod(pod(store, { caps: [], extra: setuid }), 'tsbuild info');
  expect(defaults.exitCode).not.toBe(0);
  expect(defaults.stderr).toMatch(/^newuidmap: write to uid_map failed: Operation not permitted$/m);
  const withAdmin = await inPod(pod(store, { caps: ['--cap-add', 'SYS_ADMIN'], extra: setuid }), 'tsbuild info');
  expect(withAdmin.stderr).toBe('');
  expect(withAdmin.stdout).toMatch(/^ UID map: 0 -> 1000, 1 -> 100000 \(65536\)$/m);
});

test('a single ID (no /etc/subuid range): no capabilities, no_new_privs, every file root-owned', async () => {
  const store = await emptyDir('store-single');
  const empty = join(work, 'empty');
  const noRange = ['-v', `${empty}:/etc/subuid:ro`, '-v', `${empty}:/etc/subgid:ro`, '--security-opt', 'no-new-privileges'];
  const r = await inPod(
    pod(store, { caps: ['--cap-drop', 'ALL'], extra: noRange }),
    [
      'grep -E "^(CapBnd|NoNewPrivs):" /proc/self/status',
      'tsbuild info',
      'tsbuild bootstrap busybox >/dev/null',
      'if tsbuild build -t hello /context >/out/chown.err 2>&1; then echo "chown: ok"; else echo "chown: refused"; fi',
      'cat /out/chown.err',
      'printf "FROM busybox\\nCOPY a.txt /a.txt\\nRUN echo built: \\$(cat /a.txt) > /out.txt\\n" > /tmp/Dockerfile',
      'tsbuild build -q -t single -f /tmp/Dockerfile /context',
      'echo "out: $(tsbuild run single cat /out.txt)"',
      'echo "owner: $(tsbuild run single stat -c %u:%g /out.txt)"',
    ].join('\n'),
  );
  if (r.exitCode !== 0) throw new Error(`exited ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  expect(r.stdout).toMatch(/^CapBnd:\s+0+$/m);
  expect(r.stdout).toMatch(/^NoNewPrivs:\s+1$/m);
  expect(r.stdout).toMatch(/^Rootless: yes, as root of a user namespace \(a single ID: every file is root's\)$/m);
  expect(r.stdout).toMatch(/^chown: refused$/m);
  expect(r.stdout).toMatch(/chown: \/out.txt: Invalid argument/);
  expect(r.stdout).toMatch(/^out: built: hello$/m);
  expect(r.stdout).toMatch(/^owner: 0:0$/m);
});

test('hostUsers: false (a pod with IDs 0-65535 only): the range 1001:64535 fits, 100000:65536 does not', async () => {
  const store = await emptyDir('store-userns');
  const podIds = ['--uidmap', '0:0:65536', '--gidmap', '0:0:65536'];
  const fits = join(work, 'subid-1001');
  await writeFile(fits, 'builder:1001:64535\n');
  const ranges = ['-v', `${fits}:/etc/subuid:ro`, '-v', `${fits}:/etc/subgid:ro`];
  const r = await inPod(
    pod(store, { extra: [...podIds, ...ranges] }),
    [
      `awk '{ n += $3 } END { print "ids: " n }' /proc/self/uid_map`,
      'tsbuild info',
      'tsbuild bootstrap busybox >/dev/null',
      'tsbuild build -q -t hello /context >/dev/null',
      'echo "owner: $(tsbuild run hello stat -c %u:%g /out.txt)"',
    ].join('\n'),
  );
  if (r.exitCode !== 0) throw new Error(`exited ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  expect(r.stdout).toMatch(/^ids: 65536$/m);
  expect(r.stdout).toMatch(/^ UID map: 0 -> 1000, 1 -> 1001 \(64535\)$/m);
  expect(r.stdout).toMatch(/^owner: 1000:1000$/m);
  const tooHigh = await inPod(pod(store, { extra: podIds }), 'tsbuild info');
  expect(tooHigh.exitCode).not.toBe(0);
  expect(tooHigh.stderr).toMatch(/^newuidmap: write to uid_map failed: Operation not permitted$/m);
});

test("docs/rootless.md's jq command makes the Localhost seccomp profile the tests use", async () => {
  const doc = await readFile(join(REPO, 'docs/rootless.md'), 'utf8');
  const command = /```sh\n\s*(jq '\.syscalls[\s\S]*?)\n\s*```/.exec(doc)?.[1];
  expect(command).toContain('> /var/lib/kubelet/seccomp/tsbuild.json');
  const made = join(work, 'doc-seccomp.json');
  const r = await execa('sh', ['-c', command!.replace('/var/lib/kubelet/seccomp/tsbuild.json', made)], { reject: false });
  if (r.exitCode !== 0) throw new Error(`${r.stderr}\ninstall jq with \`apt-get install jq\` (scripts/setup.sh does)`);
  expect(JSON.parse(await readFile(made, 'utf8'))).toEqual(JSON.parse(await readFile(join(work, 'seccomp.json'), 'utf8')));
});
