// Ordinary users for the rootless tests (docs/rootless.md): created as root, one with a
// subordinate ID range and one without, and removed afterwards with their homes and their
// /etc/subuid and /etc/subgid lines. Each test file that uses them calls createUsers() in
// beforeAll and removeUsers() in afterAll; names carry the test process's ID, so two files
// running in parallel do not collide.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI } from '../helpers/tsbuild.js';

export interface User {
  readonly name: string;
  readonly home: string;
}

export interface Users {
  readonly withRange: User;
  readonly singleId: User;
  /** The directory that holds both homes. */
  readonly base: string;
}

/**
 * `command` as `user`, with a clean environment (HOME, PATH). With `setup`, a shell script run as
 * root first, in a mount namespace of this command alone (so the machine's mounts never change).
 */
export async function runAsUser(user: User, command: readonly string[], opts: { cwd?: string; setup?: string } = {}) {
  const setup =
    opts.setup === undefined ? [] : ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `${opts.setup} && exec "$@"`, 'sh'];
  const [program, ...prefix] = [...setup, 'runuser'];
  const env = ['env', '-i', `HOME=${user.home}`, `PATH=${process.env.PATH ?? '/usr/bin:/bin'}`];
  const r = await execa(program!, [...prefix, '-u', user.name, '--', ...env, ...command], {
    reject: false,
    cwd: opts.cwd ?? user.home,
    stdin: 'ignore',
    stripFinalNewline: false,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * `tsbuild ARGS` as `user`: the default store is ~/.local/share/tsbuild. With `fuseDevice`, that
 * device node is bound over /dev/fuse for this command alone.
 */
export async function asUser(user: User, args: readonly string[], cwd = user.home, fuseDevice?: string) {
  const setup = fuseDevice === undefined ? {} : { setup: `mount --bind '${fuseDevice}' /dev/fuse` };
  return runAsUser(user, [process.execPath, CLI, ...args], { cwd, ...setup });
}

export async function okAsUser(user: User, args: readonly string[], cwd?: string, fuseDevice?: string): Promise<string> {
  const r = await asUser(user, args, cwd, fuseDevice);
  if (r.exitCode !== 0) throw new Error(`tsbuild ${args.join(' ')} as ${user.name} exited ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** A build context owned by `user`, with a.txt and d/b.txt to COPY. */
export async function context(user: User, dockerfile: string): Promise<string> {
  const dir = join(user.home, `ctx-${Math.random().toString(36).slice(2)}`);
  await mkdir(join(dir, 'd'), { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
  await writeFile(join(dir, 'a.txt'), 'hello\n');
  await writeFile(join(dir, 'd', 'b.txt'), 'world\n');
  await execa('chown', ['-R', `${user.name}:`, dir]);
  return dir;
}

/** A directory in `user`'s home that the user owns. */
export async function userDir(user: User, name: string): Promise<string> {
  const dir = join(user.home, name);
  await mkdir(dir, { recursive: true });
  await execa('chown', [`${user.name}:`, dir]);
  return dir;
}

/** The host uid of `user`. */
export async function uidOf(user: User): Promise<number> {
  return Number((await execa('id', ['-u', user.name])).stdout);
}

/** Creates the two users; `tag` keeps the names of two test files apart. */
export async function createUsers(tag: string): Promise<Users> {
  for (const tool of ['newuidmap', 'newgidmap']) {
    const found = await execa('sh', ['-c', `command -v ${tool}`], { reject: false });
    if (found.exitCode !== 0) throw new Error(`${tool} is missing: install it with \`apt-get install uidmap\` (scripts/setup.sh does)`);
  }
  const base = await mkdtemp(join(tmpdir(), 'tsbuild-rootless-'));
  const suffix = `${process.pid % 100000}`;
  const withRange: User = { name: `tsb${tag}${suffix}s`, home: join(base, 'with-range') };
  const singleId: User = { name: `tsb${tag}${suffix}n`, home: join(base, 'single-id') };
  // The user must reach the CLI, its node_modules and the helper through the checkout.
  await chmod(base, 0o755);
  await execa('useradd', ['--create-home', '--home-dir', withRange.home, '--shell', '/bin/sh', withRange.name]);
  // No subordinate range for this one: useradd would otherwise allocate one.
  await execa('useradd', [
    '-K',
    'SUB_UID_COUNT=0',
    '-K',
    'SUB_GID_COUNT=0',
    '--create-home',
    '--home-dir',
    singleId.home,
    '--shell',
    '/bin/sh',
    singleId.name,
  ]);
  const subuid = await readFile('/etc/subuid', 'utf8');
  if (!subuid.split('\n').some((l) => l.startsWith(`${withRange.name}:`))) {
    // A useradd that allocates no ranges by itself: give one far above the usual ones.
    const start = 200_000_000 + (process.pid % 1000) * 65536;
    await execa('usermod', ['--add-subuids', `${start}-${start + 65535}`, '--add-subgids', `${start}-${start + 65535}`, withRange.name]);
  }
  const readable = await execa('runuser', ['-u', withRange.name, '--', 'test', '-r', CLI], { reject: false });
  if (readable.exitCode !== 0) throw new Error(`${CLI} is not readable by an ordinary user: make the checkout world-readable`);
  return { withRange, singleId, base };
}

export async function removeUsers(users: Users | undefined): Promise<void> {
  if (!users) return;
  for (const user of [users.withRange, users.singleId]) {
    await execa('pkill', ['-KILL', '-u', user.name], { reject: false });
    await execa('userdel', ['--remove', user.name], { reject: false });
    for (const file of ['/etc/subuid', '/etc/subgid']) {
      const text = await readFile(file, 'utf8').catch(() => '');
      const kept = text.split('\n').filter((l) => !l.startsWith(`${user.name}:`));
      if (kept.length !== text.split('\n').length) await writeFile(file, kept.join('\n'));
    }
  }
  await rm(users.base, { recursive: true, force: true });
}
