// COPY and ADD sources that once broke a build or differed from Docker, through `tsbuild build`:
// names that are not UTF-8, wildcards that match nothing, `..` in a COPY --from source. Each was
// checked against Docker 20.10's BuildKit, and the build's result is read back from the store.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
