// Behaviours the conformance corpus (test/conformance) found tsbuild getting wrong, each pinned
// here on its own so a regression names itself without a Docker daemon.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ok, rootWithBusybox, tempDir } from '../helpers/tsbuild.js';

describe('Docker parity fixes', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  const dirs: string[] = [];
  beforeAll(async () => {
    env = await rootWithBusybox();
  });
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
    await env?.cleanup();
  });

  async function build(tag: string, dockerfile: string): Promise<void> {
    const ctx = await tempDir();
    dirs.push(ctx);
    await writeFile(join(ctx, 'Dockerfile'), dockerfile);
    await ok(env.root, ['build', '-q', '-t', tag, ctx]);
  }

  test('ENV of a variable already set replaces it where it is in Env, as Docker does (PATH keeps its place)', async () => {
    await build('env-order', 'FROM busybox\nENV A=1 B=2\nENV PATH=/opt/bin:$PATH A=3\n');
    const [img] = JSON.parse(await ok(env.root, ['inspect', 'env-order'])) as { Config: { Env: string[] } }[];
    expect(img!.Config.Env).toEqual(['PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=3', 'B=2']);
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
    const out = await ok(env.root, ['run', 'from-owners', 'stat', '-c', '%u:%g %n', '/kept/sub', '/kept/sub/f', '/kept/sub/l', '/chowned/sub/f', '/chowned/sub/l']);
    expect(out).toBe('33:100 /kept/sub\n33:100 /kept/sub/f\n2:3 /kept/sub/l\n1:1 /chowned/sub/f\n1:1 /chowned/sub/l\n');
  });
});
