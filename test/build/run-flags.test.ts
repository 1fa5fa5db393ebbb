// The build flags that shape every RUN step, as docker buildx spells them: --network (and RUN
// --network winning over it), --add-host, and --allow security.insecure with RUN
// --security=insecure.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ok, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';
import { hostInterfaces } from '../helpers/steps.js';

async function context(dockerfile: string): Promise<string> {
  const ctx = await tempDir();
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  return ctx;
}

describe('RUN flags of a build', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
  });
  afterAll(async () => env?.cleanup());

  const cat = (image: string, path: string) => ok(env.root, ['run', image, 'cat', path]);

  test('--network none gives every RUN only a loopback; RUN --network=host overrides it', async () => {
    const ctx = await context('FROM busybox\nRUN ls /sys/class/net > /nets\nRUN --network=host ls /sys/class/net > /host-nets\n');
    await ok(env.root, ['build', '--network', 'none', '-t', 'net-none', ctx]);
    expect(await cat('net-none', '/nets')).toBe('lo\n');
    // The host's own interfaces, as the host lists them.
    const host = await hostInterfaces();
    expect((await cat('net-none', '/host-nets')).trim().split('\n').sort()).toEqual(host);
    // Without the flag a RUN shares the host's network, as docker build does.
    await ok(env.root, ['build', '-t', 'net-default', ctx]);
    expect((await cat('net-default', '/nets')).trim().split('\n').sort()).toEqual(host);
  });

  test('--add-host lines are in the step’s /etc/hosts, and a changed one is a new cache key', async () => {
    // Anchored at the end: the step's own line ends with its random hex hostname, which may hold "db".
    const ctx = await context('FROM busybox\nRUN grep -E "(db\\.internal|cache)$" /etc/hosts > /hosts\n');
    await ok(env.root, ['build', '--add-host', 'db.internal:10.1.2.3', '--add-host', 'cache=fd00::7', '-t', 'hosts', ctx]);
    expect(await cat('hosts', '/hosts')).toBe('10.1.2.3\tdb.internal\nfd00::7\tcache\n');
    await ok(env.root, ['build', '--add-host', 'db.internal:10.9.9.9', '-t', 'hosts2', ctx]);
    expect(await cat('hosts2', '/hosts')).toBe('10.9.9.9\tdb.internal\n');
    // /etc/hosts is the init layer's: never in the image.
    expect(await cat('hosts2', '/etc/hosts')).not.toContain('db.internal');
  });

  test('RUN --security=insecure runs with every capability, with --allow security.insecure only', async () => {
    const ctx = await context(
      'FROM busybox\nRUN grep CapEff /proc/self/status > /sandbox-caps\nRUN --security=insecure grep CapEff /proc/self/status > /insecure-caps\n',
    );
    const refused = await tsbuild(env.root, ['build', '-t', 'insecure', ctx]);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toMatch(
      /Dockerfile:3: RUN --security=insecure needs the security.insecure entitlement: build with --allow security.insecure/,
    );
    await ok(env.root, ['build', '--allow', 'security.insecure', '-t', 'insecure', ctx]);
    const bounding = /CapBnd:\s*(\S+)/.exec(await readFile('/proc/self/status', 'utf8'))![1];
    expect(await cat('insecure', '/insecure-caps')).toBe(`CapEff:\t${bounding}\n`);
    expect(await cat('insecure', '/sandbox-caps')).not.toBe(`CapEff:\t${bounding}\n`);
  });
});
