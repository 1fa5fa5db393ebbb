// The conformance corpus built rootless and as root: with --reproducible, every case that builds
// gives the same diff_ids both ways (issue 19: owners, modes, setuid bits, xattrs, hardlinks and
// whiteouts recorded as seen inside the namespace, never as host IDs). The rootless builds run as
// an ordinary user with a subordinate range (users.ts), the root ones in a store of their own;
// both start from the same busybox archive.
//
// Cases left out, each for a reason the list says: those both builders refuse (nothing to
// compare), and those that need what this file does not set up (an HTTP server, secrets, SSH
// agents: their steps' files do not depend on who builds).
import { chmod, cp, lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { waitFor } from '../helpers/steps.js';
import { ok, tempRoot } from '../helpers/tsbuild.js';
import { pipeline } from '../interop/util.js';
import { ALL_CASES, CORPUS, spec } from '../conformance/cases.js';
import { createUsers, okAsUser, removeUsers, userDir, type User, type Users } from './users.js';

const LEFT_OUT: Record<string, string> = Object.fromEntries(
  ALL_CASES.flatMap((name) => {
    const s = spec(name);
    if (s.fails) return [[name, 'both builders refuse it']];
    if (s.serve) return [[name, 'needs the corpus test’s HTTP server']];
    if (s.secrets) return [[name, 'needs secrets']];
    if (s.ssh) return [[name, 'needs an SSH agent']];
    if (name === 'run-special-files')
      return [[name, 'makes device nodes, which a user namespace cannot (refused in one line: commands.test.ts)']];
    return [];
  }),
);
const CASES = ALL_CASES.filter((c) => !(c in LEFT_OUT));

let users: Users | undefined;
let user: User;
let root: Awaited<ReturnType<typeof tempRoot>>;
let contexts: string;

beforeAll(async () => {
  users = await createUsers('co');
  user = users.withRange;
  root = await tempRoot();
  contexts = await userDir(user, 'corpus');
  await ok(root.root, ['bootstrap', 'busybox']);
  const archive = join(contexts, 'busybox.tar');
  await ok(root.root, ['save', '-o', archive, 'busybox:latest']);
  await execa('chmod', ['a+r', archive]);
  await okAsUser(user, ['load', '-i', archive]);
}, 120_000);

afterAll(async () => {
  await root?.cleanup();
  await removeUsers(users);
});

test('the cases left out are few, and each says why', () => {
  expect(CASES.length).toBeGreaterThanOrEqual(60);
  expect(Object.keys(LEFT_OUT).length).toBeLessThan(20);
});

/** Gives every entry below `to` the mode of the same entry below `from` (symlinks have none). */
async function sameModes(from: string, to: string): Promise<void> {
  const st = await lstat(from);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) for (const e of await readdir(from)) await sameModes(join(from, e), join(to, e));
  await chmod(to, st.mode & 0o7777);
}

/** diff_ids of `ref` as `inspect` prints them. */
const diffIds = (out: string): string[] => (JSON.parse(out) as { RootFS: { Layers: string[] } }[])[0]!.RootFS.Layers;

/** Builds a case both ways; resolves with each build's diff_ids. */
async function buildBothWays(name: string): Promise<{ asRoot: string[]; rootless: string[] }> {
  const s = spec(name);
  // The context as the corpus test makes it (setup runs as root: owners and modes git does not
  // keep), owned by root for root's build; the user builds a copy of their own, as a user
  // builds their own files (its owner maps to 0 in the namespace, as root's does for root).
  const ctx = join(contexts, `${name}.root`);
  await cp(join(CORPUS, name), ctx, { recursive: true });
  await rm(join(ctx, 'case.json'), { force: true });
  if (s.setup) await pipeline(`cd ${ctx} && set -eu && ${s.setup}`);
  const own = join(contexts, name);
  await execa('cp', ['-a', ctx, own]);
  await execa('chown', ['-R', '-h', `${user.name}:`, own]);
  await sameModes(ctx, own); // chown cleared the setuid and setgid bits
  const args = [
    'build',
    '-q',
    '--reproducible',
    ...Object.entries(s.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
    ...(s.target ? ['--target', s.target] : []),
  ];
  const [asRoot, rootless] = await Promise.all([
    ok(root.root, [...args, '-t', `corpus/${name}:1`, ctx]).then(() => ok(root.root, ['inspect', `corpus/${name}:1`])),
    okAsUser(user, [...args, '-t', `corpus/${name}:1`, own]).then(() => okAsUser(user, ['inspect', `corpus/${name}:1`])),
  ]);
  return { asRoot: diffIds(asRoot), rootless: diffIds(rootless) };
}

/** Cases built two at a time (each both ways at once), started before the first test waits. */
const results = new Map<string, Promise<{ asRoot: string[]; rootless: string[] }>>();

beforeAll(() => {
  let next = 0;
  const lanes = Array.from({ length: 2 }, async () => {
    while (next < CASES.length) {
      const name = CASES[next++]!;
      const built = buildBothWays(name);
      results.set(name, built);
      await built.catch(() => undefined); // reported by the case's own test
    }
  });
  void Promise.all(lanes);
});

test.each(CASES)(
  '%s: the same diff_ids rootless and as root',
  async (name) => {
    await waitFor('the case to start', async () => (results.has(name) ? true : undefined), 600_000);
    const { asRoot, rootless } = await results.get(name)!;
    expect(rootless).toEqual(asRoot);
  },
  600_000,
);
