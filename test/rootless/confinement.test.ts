// What a rootless RUN can reach is what its user can (issue 19, item 5): no binary of ours is
// setuid or has file capabilities; `--network none` is a namespace with only `lo`; `--network
// host` is the user's own network, where a loopback server answers but a port below 1024 cannot
// be bound; and the host's processes are out of sight and out of reach.
//
// Runs as root (it creates the users, test/rootless/users.ts, and the loopback server).
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI, REPO } from '../helpers/tsbuild.js';
import { asUser, context, createUsers, okAsUser, removeUsers, runAsUser, type User, type Users } from './users.js';

let users: Users | undefined;
let user: User;
let server: Server | undefined;

beforeAll(async () => {
  users = await createUsers('cf');
  user = users.withRange;
  await okAsUser(user, ['bootstrap', 'busybox']);
});

afterAll(async () => {
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  await removeUsers(users);
});

/** The plain progress of a build of `dockerfile` as the user (RUN output included). */
async function run(dockerfile: string, flags: readonly string[] = []) {
  return asUser(user, ['build', '--no-cache', '--progress', 'plain', ...flags, await context(user, dockerfile)]);
}

test('the helper is neither setuid nor setgid and has no file capabilities', async () => {
  const helper = join(REPO, 'native/out/tsbuild-helper');
  const { stdout } = await execa('stat', ['-c', '%a %U', helper]);
  const [mode] = stdout.split(' ');
  expect(Number.parseInt(mode!, 8) & 0o6000).toBe(0);
  const caps = await execa('getfattr', ['--absolute-names', '-n', 'security.capability', helper], { reject: false });
  expect(caps.exitCode).not.toBe(0);
  expect(caps.stderr).toMatch(/No such attribute/);
});

test('--network none: a namespace with lo alone', async () => {
  const r = await run('FROM busybox\nRUN echo interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " ")\n', ['--network', 'none']);
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toMatch(/^interfaces: lo$/m);
});

test("--network host: the user's network, where a loopback server answers and port 80 cannot be bound", async () => {
  server = createServer((s) => s.end('hello from the host\n'));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const ok = await run(`FROM busybox\nRUN nc 127.0.0.1 ${port} </dev/null\n`, ['--network', 'host']);
  expect(ok.exitCode).toBe(0);
  expect(ok.stdout).toMatch(/^hello from the host$/m);
  const low = await run('FROM busybox\nRUN timeout 2 nc -l -p 80; echo status=$?\n', ['--network', 'host']);
  expect(low.exitCode).toBe(0);
  expect(low.stdout + low.stderr).toMatch(/Permission denied/);
  expect(low.stdout).toMatch(/^status=1$/m);
});

test("the host's processes are out of sight and out of reach", async () => {
  // This test's own process: a root process of the host.
  const r = await run(
    `FROM busybox\nRUN ls /proc | grep -c '^[0-9]' > /n; echo visible=$(cat /n); kill -0 ${process.pid} 2>&1; echo kill=$?\n`,
  );
  expect(r.exitCode).toBe(0);
  expect(Number(/^visible=(\d+)$/m.exec(r.stdout)?.[1])).toBeLessThan(10);
  expect(r.stdout).toMatch(/^kill=1$/m);
});

test('under a /proc with masked paths (a pod, a podman container) RUN still runs, on the /proc it has', async () => {
  // As Kubernetes and podman mask /proc: a file hidden under /dev/null, /proc/sys read-only. In a
  // user namespace the kernel then refuses a new proc (checked first, so the test shows the case).
  const masks = 'mount --bind /dev/null /proc/timer_list && mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys';
  const inPod = (command: readonly string[]) => runAsUser(user, command, { setup: masks });
  const refused = await inPod(['unshare', '-Urpf', '--mount-proc', 'true']);
  expect(refused.stderr).toMatch(/mount \/proc failed: Operation not permitted/);
  const ctx = await context(
    user,
    'FROM busybox\nRUN echo masked: $(cat /proc/timer_list | wc -c) && ls /proc/self/fd >/dev/null && echo proc ok\n',
  );
  const r = await inPod([process.execPath, CLI, 'build', '--no-cache', '--progress', 'plain', ctx]);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  expect(String(r.stdout)).toMatch(/^masked: 0$/m);
  expect(String(r.stdout)).toMatch(/^proc ok$/m);
});
