// Behaviours the conformance corpus (test/conformance) found tsbuild getting wrong, each pinned
// here on its own so a regression names itself without a Docker daemon.
import { createHash } from 'node:crypto';
import { readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { ok, busyboxStore, tempDir } from '../helpers/tsbuild.js';

describe('Docker parity fixes', () => {
  const env = busyboxStore();

  async function build(tag: string, dockerfile: string): Promise<void> {
    const ctx = await tempDir();
    env.removeLater(ctx);
    await writeFile(join(ctx, 'Dockerfile'), dockerfile);
    await ok(env.root, ['build', '-q', '-t', tag, ctx]);
  }

  test('ENV of a variable already set replaces it where it is in Env, as Docker does (PATH keeps its place)', async () => {
    await build('env-order', 'FROM busybox\nENV A=1 B=2\nENV PATH=/opt/bin:$PATH A=3\n');
    const [img] = JSON.parse(await ok(env.root, ['inspect', 'env-order'])) as { Config: { Env: string[] } }[];
    expect(img!.Config.Env).toEqual(['PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=3', 'B=2']);
  });

  test('a base whose Env has no PATH gets the default PATH after its own variables, as Docker does', async () => {
    // busybox re-saved with Env [A=1] (as `docker import --change 'ENV A=1'` makes them).
    const dir = await tempDir('tsbuild-noenv-');
    env.removeLater(dir);
    await ok(env.root, ['save', '-o', join(dir, 'in.tar'), 'busybox:latest']);
    await execa('tar', ['-xf', 'in.tar'], { cwd: dir });
    await unlink(join(dir, 'in.tar'));
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { Config: string; RepoTags: string[] }[];
    const config = JSON.parse(await readFile(join(dir, manifest[0]!.Config), 'utf8')) as { config: { Env?: string[] } };
    config.config.Env = ['A=1'];
    const bytes = JSON.stringify(config);
    await unlink(join(dir, manifest[0]!.Config));
    manifest[0]!.Config = `${createHash('sha256').update(bytes).digest('hex')}.json`;
    manifest[0]!.RepoTags = ['noenv:latest'];
    await writeFile(join(dir, manifest[0]!.Config), bytes);
    await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
    await rm(join(dir, 'repositories'), { force: true });
    // The archive goes in a directory of its own: beside `dir` would be /tmp itself, under a
    // name every run of this test shares.
    const out = await tempDir('tsbuild-noenv-archive-');
    env.removeLater(out);
    const archive = join(out, 'noenv.tar');
    await execa('tar', ['-cf', archive, '.'], { cwd: dir });
    await ok(env.root, ['load', '-i', archive]);

    await build('path-after', 'FROM noenv\nENV B=2\n');
    const [img] = JSON.parse(await ok(env.root, ['inspect', 'path-after'])) as { Config: { Env: string[] } }[];
    expect(img!.Config.Env).toEqual(['A=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'B=2']);
  });

  test('ENTRYPOINT [] unsets it (null in the config) while CMD [] is an empty list, as Docker does', async () => {
    await build('empty-lists', 'FROM busybox AS base\nENTRYPOINT ["/bin/echo"]\nCMD ["hi"]\nFROM base\nENTRYPOINT []\nCMD []\n');
    const [img] = JSON.parse(await ok(env.root, ['inspect', 'empty-lists'])) as { Config: { Cmd?: unknown; Entrypoint?: unknown } }[];
    expect(img!.Config.Entrypoint ?? null).toBeNull();
    expect(img!.Config.Cmd).toEqual([]);
  });

  test('COPY --from keeps the owners of what it copies unless --chown is given, as both Docker builders do', async () => {
    await build(
      'from-owners',
      [
        'FROM busybox AS src',
        'RUN mkdir -p /o/sub && echo x > /o/sub/f && ln -s f /o/sub/l && chown -R 33:100 /o/sub && chown -h 2:3 /o/sub/l',
        'FROM busybox',
        'COPY --from=src /o /kept',
        'COPY --from=src --chown=1:1 /o /chowned',
        '',
      ].join('\n'),
    );
    const out = await ok(env.root, [
      'run',
      'from-owners',
      'stat',
      '-c',
      '%u:%g %n',
      '/kept/sub',
      '/kept/sub/f',
      '/kept/sub/l',
      '/chowned/sub/f',
      '/chowned/sub/l',
    ]);
    expect(out).toBe('33:100 /kept/sub\n33:100 /kept/sub/f\n2:3 /kept/sub/l\n1:1 /chowned/sub/f\n1:1 /chowned/sub/l\n');
  });
});
