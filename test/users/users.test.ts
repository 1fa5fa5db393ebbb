import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveChown, resolveUser } from '../../src/container/users.js';
import { removeTempDirs, tempDir, writeTree } from '../copy/tmp.js';

afterEach(removeTempDirs);

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'app:x:1000:1000::/home/app:/bin/sh',
  'svc:x:1001:50::/srv:/bin/false',
  '',
].join('\n');

const GROUP = [
  '# comment lines are skipped in /etc/group',
  'root:x:0:',
  'wheel:x:10:root,app',
  'daemon:x:1:',
  'staff:x:50:',
  'app:x:1000:',
  'docker:x:999:app',
  'audio:x:29:app,svc',
  '',
].join('\n');

async function image(files: { passwd?: string; group?: string } = { passwd: PASSWD, group: GROUP }): Promise<string> {
  const root = await tempDir();
  await mkdir(join(root, 'etc'));
  if (files.passwd !== undefined) await writeFile(join(root, 'etc/passwd'), files.passwd);
  if (files.group !== undefined) await writeFile(join(root, 'etc/group'), files.group);
  return root;
}

describe('resolveUser (USER, for RUN)', () => {
  it('resolves a name with its primary group first, then the groups listing it', async () => {
    const root = await image();
    expect(await resolveUser(root, 'app')).toEqual({ uid: 1000, gid: 1000, groups: [1000, 10, 999, 29] });
    expect(await resolveUser(root, 'root')).toEqual({ uid: 0, gid: 0, groups: [0, 10] });
    expect(await resolveUser(root, 'daemon')).toEqual({ uid: 1, gid: 1, groups: [1] });
  });

  it('looks a numeric uid up in passwd, and allows one that is not there (gid 0)', async () => {
    const root = await image();
    expect(await resolveUser(root, '1000')).toEqual({ uid: 1000, gid: 1000, groups: [1000, 10, 999, 29] });
    expect(await resolveUser(root, '1234')).toEqual({ uid: 1234, gid: 0, groups: [0] });
  });

  it('takes uid:gid as is, without supplementary groups', async () => {
    const root = await image();
    expect(await resolveUser(root, '1234:1234')).toEqual({ uid: 1234, gid: 1234, groups: [1234] });
    expect(await resolveUser(root, '1000:50')).toEqual({ uid: 1000, gid: 50, groups: [50] });
  });

  it('resolves name:group, uid:group and name:gid; an explicit group drops supplementary groups', async () => {
    const root = await image();
    expect(await resolveUser(root, 'app:staff')).toEqual({ uid: 1000, gid: 50, groups: [50] });
    expect(await resolveUser(root, '1234:docker')).toEqual({ uid: 1234, gid: 999, groups: [999] });
    expect(await resolveUser(root, 'svc:77')).toEqual({ uid: 1001, gid: 77, groups: [77] });
  });

  it('fails for names that are not in the image, with runc’s wording', async () => {
    const root = await image();
    await expect(resolveUser(root, 'nobody')).rejects.toThrow('unable to find user nobody: no matching entries in passwd file');
    await expect(resolveUser(root, 'app:nogroup')).rejects.toThrow('unable to find group nogroup: no matching entries in group file');
    await expect(resolveUser(root, '-1')).rejects.toThrow('uids and gids must be in range 0-2147483647');
  });

  it('works without /etc/passwd for numbers, not for names', async () => {
    const root = await image({});
    expect(await resolveUser(root, '1000')).toEqual({ uid: 1000, gid: 0, groups: [0] });
    expect(await resolveUser(root, '0:0')).toEqual({ uid: 0, gid: 0, groups: [0] });
    // An unset USER is root whatever the files say; `root` spelled out is a name like any other.
    expect(await resolveUser(root, '')).toEqual({ uid: 0, gid: 0, groups: [0] });
    await expect(resolveUser(root, 'root')).rejects.toThrow('unable to find user root: no matching entries in passwd file');
    await expect(resolveUser(root, 'app')).rejects.toThrow('unable to find user app: no matching entries in passwd file');
  });

  it('reads /etc through the image’s symlinks, never the host’s', async () => {
    const root = await tempDir();
    await writeTree(root, {
      'real/etc/passwd': 'imageuser:x:4242:4343::/:/bin/sh\n',
      'real/etc/group': 'imagegroup:x:4343:imageuser\n',
    });
    await symlink('/real/etc', join(root, 'etc')); // absolute: must resolve inside the rootfs
    expect(await resolveUser(root, 'imageuser')).toEqual({ uid: 4242, gid: 4343, groups: [4343] });
    // The host's /etc/passwd has root; the image's does not.
    await expect(resolveUser(root, 'root')).rejects.toThrow('unable to find user root');
  });
});

describe('resolveChown (--chown)', () => {
  it('uses a lone number for both uid and gid, and a lone name’s passwd entry', async () => {
    const root = await image();
    expect(await resolveChown(root, '1000')).toEqual({ uid: 1000, gid: 1000 });
    expect(await resolveChown(root, 'svc')).toEqual({ uid: 1001, gid: 50 });
    expect(await resolveChown(root, 'root')).toEqual({ uid: 0, gid: 0 });
  });

  it('resolves user:group in every combination', async () => {
    const root = await image();
    expect(await resolveChown(root, '1000:50')).toEqual({ uid: 1000, gid: 50 });
    expect(await resolveChown(root, 'app:staff')).toEqual({ uid: 1000, gid: 50 });
    expect(await resolveChown(root, '77:docker')).toEqual({ uid: 77, gid: 999 });
    expect(await resolveChown(root, 'daemon:88')).toEqual({ uid: 1, gid: 88 });
    expect(await resolveChown(root, 'root:root')).toEqual({ uid: 0, gid: 0 });
    // BuildKit: an empty group is gid 0.
    expect(await resolveChown(root, 'app:')).toEqual({ uid: 1000, gid: 0 });
  });

  it('needs no passwd for numbers or root', async () => {
    const root = await image({});
    expect(await resolveChown(root, '1:2')).toEqual({ uid: 1, gid: 2 });
    expect(await resolveChown(root, 'root')).toEqual({ uid: 0, gid: 0 });
  });

  it('refuses names the image does not have, and out-of-range ids', async () => {
    const root = await image();
    await expect(resolveChown(root, 'ghost')).rejects.toThrow('unable to find user ghost: no matching entries in passwd file');
    await expect(resolveChown(root, 'app:ghosts')).rejects.toThrow('unable to find group ghosts: no matching entries in group file');
    await expect(resolveChown(await image({}), 'app')).rejects.toThrow('unable to find user app');
    await expect(resolveChown(root, '4294967296')).rejects.toThrow('uids and gids must be in range');
    await expect(resolveChown(root, '-1')).rejects.toThrow('uids and gids must be in range');
  });
});
