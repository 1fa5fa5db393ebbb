// `tsbuild unshare` (cli/commands/unshare.ts): an ordinary user whose RUN steps gave store files
// to subordinate IDs can read and remove them only in rootless tsbuild's user namespace, as with
// `podman unshare`; root is told it needs none.
import { join } from 'node:path';
import { access } from 'node:fs/promises';
import { tempRoot, tsbuild } from '../helpers/tsbuild.js';
import { context, createUsers, okAsUser, removeUsers, runAsUser, type User, type Users } from './users.js';
import { CLI } from '../helpers/tsbuild.js';

let users: Users | undefined;
let user: User;

beforeAll(async () => {
  users = await createUsers('un');
  user = users.withRange;
});

afterAll(async () => {
  await removeUsers(users);
});

test('the store’s files of subordinate IDs: refused outside, removed by `tsbuild unshare rm -rf "$TSBUILD_ROOT"`', async () => {
  const store = join(user.home, '.local/share/tsbuild');
  await okAsUser(user, ['bootstrap', 'busybox']);
  const ctx = await context(user, 'FROM busybox\nRUN mkdir /owned && echo x > /owned/f && chown -R 1000:1000 /owned && chmod 700 /owned\n');
  await okAsUser(user, ['build', '-q', '-t', 'owned', ctx]);

  // Outside the namespace the directory is a subordinate ID's, closed to the user.
  const outside = await runAsUser(user, ['rm', '-rf', store]);
  expect(outside.exitCode).not.toBe(0);
  expect(outside.stderr).toMatch(/Permission denied/);
  await access(store);

  // Inside, it is the user's: TSBUILD_ROOT names the store, and the IDs are the image's own.
  expect(await okAsUser(user, ['unshare', 'sh', '-c', 'echo "$TSBUILD_ROOT"; id -u'])).toBe(`${store}\n0\n`);
  expect(await okAsUser(user, ['unshare', 'sh', '-c', 'exit 7']).catch((e: Error) => e.message)).toMatch(/exited 7/);
  await okAsUser(user, ['unshare', 'rm', '-rf', store]);
  await expect(access(store)).rejects.toThrow(/ENOENT/);
  const missing = await runAsUser(user, [process.execPath, CLI, 'unshare', 'no-such-command']);
  expect({ code: missing.exitCode, stderr: missing.stderr }).toEqual({
    code: 2,
    stderr: 'Error: unshare: no-such-command: command not found\n',
  });
});

test('root gets one line: it needs no namespace', async () => {
  const t = await tempRoot();
  try {
    const r = await tsbuild(t.root, ['unshare', 'true']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe('Error: "tsbuild unshare" is for an ordinary user (rootless tsbuild): root needs no user namespace\n');
  } finally {
    await t.cleanup();
  }
});
