// COPY and ADD sources that once broke a build or differed from Docker, through `tsbuild build`:
// names that are not UTF-8, wildcards that match nothing, `..` in a COPY --from source. Each was
// checked against Docker 20.10's BuildKit, and the build's result is read back from the store.
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildTar, header } from '../layer/fixtures.js';
import { busyboxStore, mountsBelow, ok, tempDir } from '../helpers/tsbuild.js';

const env = busyboxStore();
afterEach(async () => {
  expect(await mountsBelow(env.root)).toEqual([]);
});

/** The diff_id of a layer tar with nothing in it. */
const EMPTY_LAYER = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

/** A context holding a Dockerfile and these files (names may be bytes). */
async function context(dockerfile: string, files: [string | Buffer, string][] = []): Promise<string> {
  const ctx = await tempDir();
  env.removeLater(ctx);
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  for (const [name, content] of files) {
    if (typeof name === 'string') {
      await mkdir(join(ctx, name, '..'), { recursive: true });
      await writeFile(join(ctx, name), content);
    } else {
      await writeFile(Buffer.concat([Buffer.from(`${ctx}/`), name]), content);
    }
  }
  return ctx;
}

/** The names in the image's top layer, as GNU tar lists them in the C locale (`\377` for byte 0xff). */
async function topLayerNames(image: string): Promise<string[]> {
  const dir = await tempDir('tsbuild-save-');
  env.removeLater(dir);
  await ok(env.root, ['save', '-o', join(dir, 'image.tar'), image]);
  await execa('tar', ['-xf', join(dir, 'image.tar'), '-C', dir]);
  const [manifest] = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
  const { stdout } = await execa('tar', ['-tf', join(dir, manifest!.Layers.at(-1)!)], { env: { LC_ALL: 'C' } });
  return stdout.split('\n');
}

/** What `cmd` prints in a container of the image. */
async function runIn(image: string, cmd: string): Promise<string> {
  return ok(env.root, ['run', '--rm', image, 'sh', '-c', cmd]);
}

describe('COPY --from with `..`', () => {
  test('climbs no higher than the stage’s root, as in BuildKit: ../../etc/x is /etc/x', async () => {
    const ctx = await context(
      [
        'FROM busybox AS s',
        'RUN mkdir -p /etc/d && echo from-stage > /etc/x && echo in-d > /etc/d/y',
        'FROM busybox',
        'COPY --from=s ../../etc/x /x1',
        'COPY --from=s /../etc/x /x2',
        'COPY --from=s etc/../../etc/d/* /d/',
        '',
      ].join('\n'),
    );
    await ok(env.root, ['build', '-q', '-t', 'from-dotdot', ctx]);
    expect(await runIn('from-dotdot', 'cat /x1 /x2 /d/y')).toBe('from-stage\nfrom-stage\nin-d\n');
  });
});

describe('a wildcard that matches nothing', () => {
  // Docker 20.10's BuildKit (and today's: AllowEmptyWildcard in dockerfile2llb, testEmptyWildcard)
  // builds these, each step an empty layer; only the classic builder failed, with "no source
  // files were specified".
  test('builds, as in BuildKit: an empty layer, no destination made, for COPY, ADD and COPY --from', async () => {
    const ctx = await context(
      ['FROM busybox AS s', 'FROM busybox', 'COPY nomatch* /x/', 'ADD nomatch* /y/', 'COPY --from=s /nomatch* /z/', ''].join('\n'),
      [['a.txt', 'a']],
    );
    await ok(env.root, ['build', '-q', '-t', 'nomatch', ctx]);
    expect(await runIn('nomatch', 'ls -d /x /y /z 2>&1; true')).toMatch(/\/x.*No such file[^]*\/y.*No such file[^]*\/z.*No such file/);
    const [image] = JSON.parse(await ok(env.root, ['inspect', 'nomatch'])) as { RootFS: { Layers: string[] } }[];
    expect(image!.RootFS.Layers.slice(-3)).toEqual(Array(3).fill(EMPTY_LAYER));
  });
});

describe('file names that are not UTF-8', () => {
  // Docker copies such names byte for byte (its layer holds them in a PAX `path` record, as
  // tsbuild's does). tsbuild read them as UTF-8, so every COPY failed with
  // `ENOENT ... lstat '.../bad\ufffd\ufffdname'`, even one whose wildcard did not match them.
  const bad = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x6e, 0x61, 0x6d, 0x65]); // bad\xff\xfename
  const dir = Buffer.from([0x64, 0xe9, 0x6a, 0xe0]); // d\xe9j\xe0: Latin-1, not UTF-8

  test('COPY . and COPY plain* copy them with their bytes, links, fifos and .dockerignore included', async () => {
    const ctx = await context('FROM busybox\nCOPY plain* /p/\nCOPY . /c/\n', [
      ['plain1', 'p'],
      ['sub/keep', 'k'],
      ['.dockerignore', 'ign*\n'],
    ]);
    await writeFile(Buffer.concat([Buffer.from(`${ctx}/`), bad]), 'b');
    await writeFile(Buffer.concat([Buffer.from(`${ctx}/sub/`), dir]), 'd');
    await mkdir(Buffer.concat([Buffer.from(`${ctx}/`), dir]));
    await writeFile(Buffer.concat([Buffer.from(`${ctx}/`), dir, Buffer.from('/in')]), 'i');
    await writeFile(Buffer.concat([Buffer.from(`${ctx}/ign`), Buffer.of(0xfb)]), 'ignored');
    await symlink(bad, Buffer.concat([Buffer.from(`${ctx}/lnk`), Buffer.of(0xfd)]));
    await execa('sh', ['-c', `mkfifo "$(printf 'fifo\\374')"`], { cwd: join(ctx, 'sub') });
    await ok(env.root, ['build', '-q', '-t', 'bytes', ctx]);

    expect(await topLayerNames('bytes')).toEqual([
      'c/',
      'c/.dockerignore',
      'c/Dockerfile',
      'c/bad\\377\\376name',
      'c/d\\351j\\340/',
      'c/d\\351j\\340/in',
      'c/lnk\\375',
      'c/plain1',
      'c/sub/',
      'c/sub/d\\351j\\340',
      'c/sub/fifo\\374',
      'c/sub/keep',
    ]);
    // In a container: the same bytes, the content, and the link to the name.
    expect(await runIn('bytes', 'cd /c && printf "%s/" * | od -An -tx1 | tr -s " \\n" " "')).toBe(
      ' 44 6f 63 6b 65 72 66 69 6c 65 2f 62 61 64 ff fe 6e 61 6d 65 2f 64 e9 6a e0 2f 6c 6e 6b fd 2f 70 6c 61 69 6e 31 2f 73 75 62 2f ',
    );
    expect(await runIn('bytes', 'cat /c/bad* /c/lnk* /c/sub/d*j* /c/d*/in /p/plain1')).toBe('bbdip');
    // A second build reads the same names from the context's checksum cache: every step hits.
    const again = await ok(env.root, ['build', '--progress', 'plain', '-t', 'bytes', ctx]);
    expect(again.match(/CACHED/g)).toHaveLength(2);
  });

  test('ADD keeps them too, in an archive’s entries and link targets', async () => {
    // Docker's Untar keeps the bytes; tsbuild's ADD read them as UTF-8 (each bad byte a U+FFFD).
    const d = dir.toString('latin1');
    const tar = buildTar([
      { h: { ...header(`${d}/`, { type: 'dir' }), name: Buffer.concat([dir, Buffer.from('/')]) } },
      { h: { ...header('x'), name: Buffer.concat([dir, Buffer.from('/'), bad]) }, content: Buffer.from('b') },
      { h: { ...header('l', { type: 'symlink' }), linkname: Buffer.concat([dir, Buffer.from('/'), bad]) } },
      { h: { ...header('h', { type: 'hardlink' }), linkname: Buffer.concat([dir, Buffer.from('/'), bad]) } },
    ]);
    const ctx = await context('FROM busybox\nADD a.tar /a/\n');
    await writeFile(join(ctx, 'a.tar'), tar);
    await ok(env.root, ['build', '-q', '-t', 'add-bytes', ctx]);
    expect(await topLayerNames('add-bytes')).toEqual(['a/', 'a/d\\351j\\340/', 'a/d\\351j\\340/bad\\377\\376name', 'a/h', 'a/l']);
    expect(await runIn('add-bytes', 'cat /a/h /a/l; readlink /a/l | od -An -tx1')).toBe(
      'bb 64 e9 6a e0 2f 62 61 64 ff fe 6e 61 6d 65 0a\n',
    );
  });
});
