// Every command as an ordinary user (docs/rootless.md, issue 19): save/load, import, history,
// analyze, inspect, tag/rmi, du/prune, verify, push/pull to a registry on 127.0.0.1, and the
// build outputs and caches. Files the user's commands write outside the store must be the
// user's on the host, never a subordinate ID's. And what cannot work rootless fails in one line
// that names the instruction.
//
// Runs as root (it creates the users, test/rootless/users.ts, and starts the registry).
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { ok, tempRoot } from '../helpers/tsbuild.js';
import { asUser, context, createUsers, okAsUser, removeUsers, uidOf, userDir, type User, type Users } from './users.js';

let users: Users | undefined;
let withRange: User;
let singleId: User;
let registry: TestRegistry | undefined;

const inspect = async (user: User, ref: string) =>
  (JSON.parse(await okAsUser(user, ['inspect', ref])) as { Id: string; RootFS: { Layers: string[] } }[])[0]!;

/** Every path below `dir` (itself included) whose owner on the host is not `uid`. */
async function notOwnedBy(dir: string, uid: number): Promise<string[]> {
  const bad: string[] = [];
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    if (st.uid !== uid) bad.push(`${p} (${st.uid})`);
    if (st.isDirectory()) for (const e of await readdir(p)) await walk(join(p, e));
  };
  await walk(dir);
  return bad;
}

beforeAll(async () => {
  users = await createUsers('cm');
  ({ withRange, singleId } = users);
  registry = await startRegistry();
  await okAsUser(withRange, ['bootstrap', 'busybox']);
  await okAsUser(singleId, ['bootstrap', 'busybox']);
});

afterAll(async () => {
  await registry?.stop();
  await removeUsers(users);
});

describe('every command, rootless with a subordinate range', () => {
  // A file of a subordinate owner, so that owners travel through each command.
  const dockerfile = 'FROM busybox\nCOPY a.txt /a.txt\nRUN touch /f && chown 1000:1000 /f\n';

  test('build outputs, --iidfile and a local cache are the user’s files; the cache carries the build', async () => {
    const uid = await uidOf(withRange);
    const ctx = await context(withRange, dockerfile);
    const out = await userDir(withRange, 'out');
    const flags = [
      'build',
      '--progress',
      'plain',
      '--iidfile',
      join(out, 'iid'),
      '--cache-to',
      `type=local,dest=${join(out, 'cache')},mode=max`,
    ];
    await okAsUser(withRange, [...flags, '-o', `type=local,dest=${join(out, 'fs')}`, '-t', 'cm:out', ctx]);
    await okAsUser(withRange, [
      'build',
      '-o',
      `type=tar,dest=${join(out, 'fs.tar')}`,
      '-o',
      `type=docker,dest=${join(out, 'img.tar')}`,
      ctx,
    ]);
    expect(await readFile(join(out, 'fs', 'a.txt'), 'utf8')).toBe('hello\n');
    expect(await notOwnedBy(out, uid)).toEqual([]);
    // The tar keeps the owner the image has.
    const listing = (await execa('tar', ['-tvf', join(out, 'fs.tar'), 'f'])).stdout;
    expect(listing).toMatch(/^-\S+ 1000\/1000 /);

    // Another store of the same user, empty but for busybox: every step comes from the cache.
    const other = join(withRange.home, 'other-store');
    await okAsUser(withRange, ['--root', other, 'bootstrap', 'busybox']);
    const again = await okAsUser(withRange, [
      '--root',
      other,
      'build',
      '--progress',
      'plain',
      '--cache-from',
      `type=local,src=${join(out, 'cache')}`,
      ctx,
    ]);
    expect(again.match(/^--> CACHED$/gm)?.length).toBe(2);
  });

  test('save, rmi, load, tag, history, analyze, du, prune and verify', async () => {
    const uid = await uidOf(withRange);
    const ctx = await context(withRange, dockerfile);
    await okAsUser(withRange, ['build', '-t', 'cm:save', ctx]);
    const before = await inspect(withRange, 'cm:save');
    const dir = await userDir(withRange, 'save');
    await okAsUser(withRange, ['save', '-o', join(dir, 'img.tar'), 'cm:save']);
    await okAsUser(withRange, ['save', '--format', 'oci', '-o', join(dir, 'oci.tar'), 'cm:save']);
    expect(await notOwnedBy(dir, uid)).toEqual([]);

    await okAsUser(withRange, ['tag', 'cm:save', 'cm:other']);
    await okAsUser(withRange, ['rmi', 'cm:save', 'cm:other']);
    await okAsUser(withRange, ['prune', '-f']);
    expect(await okAsUser(withRange, ['load', '-i', join(dir, 'img.tar')])).toContain('Loaded image: cm:save');
    expect((await inspect(withRange, 'cm:save')).Id).toBe(before.Id);
    expect(await okAsUser(withRange, ['run', 'cm:save', 'stat', '-c', '%u:%g', '/f'])).toBe('1000:1000\n');

    expect(await okAsUser(withRange, ['history', 'cm:save'])).toMatch(/chown 1000:1000/);
    expect(await okAsUser(withRange, ['analyze', 'cm:save'])).toMatch(/^\s+2\s+0B\s.*RUN .*touch \/f && chown 1000:1000 \/f/m);
    expect(await okAsUser(withRange, ['du'])).toMatch(/^cm\s+save\s/m);
    expect(await okAsUser(withRange, ['verify'])).toMatch(/^OK: \d+ images?, \d+ layers? verified$/m);
  });

  test('import a tarball', async () => {
    const dir = await userDir(withRange, 'import');
    await execa('sh', [
      '-c',
      `mkdir -p ${dir}/root/etc && echo hi > ${dir}/root/etc/hi && tar -C ${dir}/root --owner=1000 --group=1000 -cf ${dir}/root.tar .`,
    ]);
    await execa('chown', ['-R', `${withRange.name}:`, dir]);
    await okAsUser(withRange, ['import', join(dir, 'root.tar'), 'cm:imported']);
    const layers = (await inspect(withRange, 'cm:imported')).RootFS.Layers;
    expect(layers).toHaveLength(1);
  });

  test('push to and pull from a registry on 127.0.0.1', async () => {
    const ctx = await context(withRange, dockerfile);
    const ref = `${registry!.host}/rootless/app:1`;
    await okAsUser(withRange, ['build', '-t', ref, ctx]);
    const pushed = await inspect(withRange, ref);
    await okAsUser(withRange, ['push', ref]);
    await okAsUser(withRange, ['rmi', ref]);
    await okAsUser(withRange, ['prune', '-f']);
    await okAsUser(withRange, ['pull', ref]);
    expect((await inspect(withRange, ref)).RootFS.Layers).toEqual(pushed.RootFS.Layers);
    expect(await okAsUser(withRange, ['run', ref, 'stat', '-c', '%u:%g', '/f'])).toBe('1000:1000\n');
  });
  test('login, push to a registry that asks for a password, logout: ~/.docker/config.json is the user’s', async () => {
    const creds = { user: 'alice', password: 'rootless-secret' };
    const auth = await startRegistry({ basic: creds });
    try {
      const ctx = await context(withRange, 'FROM busybox\nCOPY a.txt /a.txt\n');
      const ref = `${auth.host}/rootless/auth:1`;
      await okAsUser(withRange, ['build', '-t', ref, ctx]);
      expect((await asUser(withRange, ['push', ref])).exitCode).not.toBe(0);
      await okAsUser(withRange, ['login', '-u', creds.user, '-p', creds.password, auth.host]);
      const config = join(withRange.home, '.docker', 'config.json');
      expect(await notOwnedBy(join(withRange.home, '.docker'), await uidOf(withRange))).toEqual([]);
      expect((await lstat(config)).mode & 0o077).toBe(0);
      await okAsUser(withRange, ['push', ref]);
      await okAsUser(withRange, ['logout', auth.host]);
      expect(await readFile(config, 'utf8')).not.toContain(auth.host);
    } finally {
      await auth.stop();
    }
  });
});

describe('what cannot work rootless fails in one line naming the instruction', () => {
  test('RUN mknod: device nodes', async () => {
    const ctx = await context(withRange, 'FROM busybox\nRUN mknod /dev/x c 1 3\n');
    const r = await asUser(withRange, ['build', ctx]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Dockerfile:2: .*device node/);
  });

  test('RUN --security=insecure', async () => {
    const ctx = await context(withRange, 'FROM busybox\nRUN --security=insecure true\n');
    const r = await asUser(withRange, ['build', '--allow', 'security.insecure', ctx]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/Dockerfile:2: .*--security=insecure.*rootless/);
  });

  test('a loaded layer with owners outside a single-ID map names the IDs and how to add a range', async () => {
    const ctx = await context(withRange, 'FROM busybox\nRUN touch /f && chown 1000:1001 /f\n');
    await okAsUser(withRange, ['build', '-t', 'cm:owners', ctx]);
    const dir = await userDir(withRange, 'owners');
    await okAsUser(withRange, ['save', '-o', join(dir, 'img.tar'), 'cm:owners']);
    await execa('chmod', ['-R', 'a+rX', dir]);
    const r = await asUser(singleId, ['load', '-i', join(dir, 'img.tar')]);
    expect(r.exitCode).not.toBe(0);
    // Progress lines come first; the error is the last line, and the only one.
    const errors = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('Error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/"f" is owned by 1000:1001: uid 1000 and gid 1001 are not mapped in tsbuild's user namespace/);
    expect(errors[0]).toContain(`usermod --add-subuids`);
  });
  test('a pulled layer with owners outside a single-ID map fails the same way', async () => {
    const ctx = await context(withRange, 'FROM busybox\nRUN touch /f && chown 1000:0 /f\n');
    const ref = `${registry!.host}/rootless/owned:1`;
    await okAsUser(withRange, ['build', '-t', ref, ctx]);
    await okAsUser(withRange, ['push', ref]);
    const r = await asUser(singleId, ['pull', ref]);
    expect(r.exitCode).not.toBe(0);
    const errors = `${r.stdout}${r.stderr}`
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('Error'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/"f" is owned by 1000:0: uid 1000 is not mapped in tsbuild's user namespace .*usermod --add-subuids/);
    // Nothing half-made is left in the store.
    expect(await okAsUser(singleId, ['verify'])).toMatch(/^OK: /);
    expect(await okAsUser(singleId, ['images'])).not.toContain('rootless/owned');
  });

  test('ADD of an archive with owners outside a single-ID map names the line', async () => {
    const ctx = await context(singleId, 'FROM busybox\nADD owned.tar /x/\n');
    await execa('sh', [
      '-c',
      `echo hi > ${ctx}/hi && tar -C ${ctx} --owner=1000 --group=0 -cf ${ctx}/owned.tar hi && chown ${singleId.name}: ${ctx}/owned.tar`,
    ]);
    const r = await asUser(singleId, ['build', ctx]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/^Error: Dockerfile:2: .*"hi" is owned by 1000:0: uid 1000 is not mapped in tsbuild's user namespace/m);
  });

  test('a loaded layer with a device node names the entry', async () => {
    // Made as root, where RUN may mknod (Docker's default capabilities allow it).
    const t = await tempRoot();
    const dir = await userDir(withRange, 'devices');
    try {
      await ok(t.root, ['bootstrap', 'busybox']);
      const ctx = await context(withRange, 'FROM busybox\nRUN mknod /null2 c 1 3\n');
      await ok(t.root, ['build', '-t', 'cm:dev', ctx]);
      await ok(t.root, ['save', '-o', join(dir, 'img.tar'), 'cm:dev']);
    } finally {
      await t.cleanup();
    }
    await execa('chmod', ['-R', 'a+rX', dir]);
    const r = await asUser(withRange, ['load', '-i', join(dir, 'img.tar')]);
    expect(r.exitCode).not.toBe(0);
    const errors = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('Error'));
    expect(errors).toEqual(['Error: layer entry "null2" is a device node (char 1:3): a user namespace cannot create one (rootless)']);
  });
});

describe('a single ID', () => {
  test('save, load, push and pull an image of root-owned files', async () => {
    const ctx = await context(singleId, 'FROM busybox\nCOPY a.txt /a.txt\n');
    const ref = `${registry!.host}/rootless/single:1`;
    await okAsUser(singleId, ['build', '-t', ref, ctx]);
    await okAsUser(singleId, ['push', ref]);
    const dir = await userDir(singleId, 'save');
    await okAsUser(singleId, ['save', '-o', join(dir, 'img.tar'), ref]);
    await okAsUser(singleId, ['rmi', ref]);
    await okAsUser(singleId, ['prune', '-f']);
    await okAsUser(singleId, ['pull', ref]);
    await okAsUser(singleId, ['rmi', ref]);
    await okAsUser(singleId, ['load', '-i', join(dir, 'img.tar')]);
    expect(await okAsUser(singleId, ['run', ref, 'cat', '/a.txt'])).toBe('hello\n');
    expect(await notOwnedByUser(singleId, dir)).toEqual([]);
  });
});

async function notOwnedByUser(user: User, dir: string): Promise<string[]> {
  return notOwnedBy(dir, await uidOf(user));
}
