// The pod of docs/rootless.md ("Kubernetes") as a container of a rootful Docker daemon: like a
// Kubernetes pod without `hostUsers: false`, the container shares the host's user namespace, so
// its user 1000 is the host's 1000 and the image's /etc/subuid range is host IDs; and Docker's
// default seccomp profile is the one containerd's RuntimeDefault derives from. podman.test.ts
// covers the same image in a user namespace (rootless podman, or a pod with `hostUsers: false`).
//
// What this shows that rootless podman cannot:
//   - the runtime's default seccomp profile refuses unshare(CLONE_NEWUSER), so the pod needs
//     a profile of its own (the Localhost profile: podman's default plus sethostname);
//   - allowPrivilegeEscalation: false (no_new_privs) stops newuidmap's file capabilities here,
//     so the subordinate ranges need it true; the single-ID mode does not.
//
// Runs as root (it starts a private dockerd, test/helpers/dockerd.ts).
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { tempDir, tempRoot } from '../helpers/tsbuild.js';
import { buildTsbuildImage, checkHostFiles, IMAGE, POD_HOME, writePodContext, writeSeccompProfile } from './tsbuild-image.js';

let dockerd: Dockerd | undefined;
let imageRoot: Awaited<ReturnType<typeof tempRoot>> | undefined;
let work: string;

const CAPS = ['--cap-drop', 'ALL', '--cap-add', 'SETUID', '--cap-add', 'SETGID'];

/**
 * `sh -c SCRIPT` in the pod, as `docker run` options; `caps` and `extra` replace or add to its
 * settings, and `defaultSeccomp` leaves Docker's own profile in place.
 */
async function inPod(script: string, opts: { defaultSeccomp?: boolean; caps?: readonly string[]; extra?: readonly string[] } = {}) {
  // A fresh emptyDir (0777) for the store.
  const store = await tempDir('tsbuild-podstore-');
  await chmod(store, 0o777);
  return dockerd!.docker([
    ...['run', '--rm', '--network', 'none', '--user', '1000:1000', ...(opts.caps ?? CAPS)],
    ...(opts.defaultSeccomp ? [] : ['--security-opt', `seccomp=${join(work, 'seccomp.json')}`]),
    ...(opts.extra ?? []),
    ...['-v', `${store}:${POD_HOME}/.local/share/tsbuild`, '-v', `${join(work, 'context')}:/context:ro`],
    ...['--entrypoint', '/bin/sh', IMAGE, '-c', `set -e\n${script}`],
  ]);
}

const BUILD = [
  'tsbuild info',
  'tsbuild bootstrap busybox >/dev/null',
  'tsbuild build -q -t hello /context >/dev/null',
  'echo "out: $(tsbuild run hello cat /out.txt)"',
  'echo "owner: $(tsbuild run hello stat -c %u:%g /out.txt)"',
].join('\n');

beforeAll(async () => {
  await checkHostFiles();
  work = await tempDir('tsbuild-dockerpod-');
  await chmod(work, 0o755);
  await writePodContext(join(work, 'context'));
  await writeSeccompProfile(join(work, 'seccomp.json'));
  imageRoot = await tempRoot();
  const archive = join(work, 'tsbuild-image.tar');
  await buildTsbuildImage(imageRoot.root, await tempDir('tsbuild-podimage-'), archive);
  dockerd = await startDockerd();
  expect(await dockerd.ok(['load', '-i', archive])).toContain(`Loaded image: ${IMAGE}`);
});

afterAll(async () => {
  await dockerd?.stop();
  await imageRoot?.cleanup();
});

test("the pod's settings, without a user namespace of the pod's own: subordinate IDs through newuidmap's file capabilities", async () => {
  const r = await inPod(`grep -E "^(CapBnd|NoNewPrivs):" /proc/self/status\n${BUILD}`);
  if (r.exitCode !== 0) throw new Error(`exited ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  expect(r.stdout).toMatch(/^CapBnd:\s+0+c0$/m);
  expect(r.stdout).toMatch(/^NoNewPrivs:\s+0$/m);
  // The map's outside IDs are the host's: the image's range is the node's.
  expect(r.stdout).toMatch(/^ UID map: 0 -> 1000, 1 -> 100000 \(65536\)$/m);
  expect(r.stdout).toMatch(/^out: built: hello$/m);
  expect(r.stdout).toMatch(/^owner: 1000:1000$/m);
});

test("seccompProfile RuntimeDefault: Docker's default profile refuses the user namespace itself", async () => {
  const r = await inPod('tsbuild info', { defaultSeccomp: true });
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(
    /^tsbuild-helper: unshare\(CLONE_NEWUSER\): .* in a container, its seccomp profile.*: Operation not permitted$/m,
  );
});

test('allowPrivilegeEscalation: false (no_new_privs) keeps newuidmap from its file capability', async () => {
  const r = await inPod('grep NoNewPrivs /proc/self/status\ntsbuild info', { extra: ['--security-opt', 'no-new-privileges'] });
  expect(r.stdout).toMatch(/^NoNewPrivs:\s+1$/m);
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toMatch(/^newuidmap: write to uid_map failed: Operation not permitted$/m);
});

test('a single ID needs neither capabilities nor privilege escalation', async () => {
  const empty = join(work, 'no-range');
  await writeFile(empty, '');
  const noRange = ['-v', `${empty}:/etc/subuid:ro`, '-v', `${empty}:/etc/subgid:ro`];
  const r = await inPod(
    [
      'tsbuild info',
      'tsbuild bootstrap busybox >/dev/null',
      'printf "FROM busybox\\nCOPY a.txt /a.txt\\nRUN echo built: \\$(cat /a.txt) > /out.txt\\n" > /tmp/Dockerfile',
      'tsbuild build -q -t single -f /tmp/Dockerfile /context >/dev/null',
      'echo "out: $(tsbuild run single cat /out.txt)"',
      'echo "owner: $(tsbuild run single stat -c %u:%g /out.txt)"',
    ].join('\n'),
    { caps: ['--cap-drop', 'ALL'], extra: ['--security-opt', 'no-new-privileges', ...noRange] },
  );
  if (r.exitCode !== 0) throw new Error(`exited ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  expect(r.stdout).toMatch(/^Rootless: yes, as root of a user namespace \(a single ID: every file is root's\)$/m);
  expect(r.stdout).toMatch(/^out: built: hello$/m);
  expect(r.stdout).toMatch(/^owner: 0:0$/m);
});
