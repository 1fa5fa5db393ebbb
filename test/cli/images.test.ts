// `tsbuild images` as a docker user types it: the REPOSITORY[:TAG] argument, -a, -q, --digests,
// --no-trunc, each --filter and --format with docker's fields; and `tsbuild image SUB`, docker's
// management command. The images are built for real in a temporary store; the expected output
// is what docker 20.10 prints for the same images (checked against a private dockerd).
import { hostArchitecture } from '../../src/image/config.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { busyboxStore, contextOf, ok, tsbuild } from '../helpers/tsbuild.js';

describe('tsbuild images', () => {
  const store = busyboxStore();
  const ids: Record<string, string> = {};
  const images = (args: string[]) => ok(store.root, ['images', ...args]);
  const column = async (args: string[]) => (await images(args)).split('\n').filter((l) => l !== '');

  beforeAll(async () => {
    const build = async (name: string, dockerfile: string, tag?: string) => {
      const out = await ok(store.root, ['build', '-q', ...(tag ? ['-t', tag] : []), await contextOf({ Dockerfile: dockerfile })]);
      ids[name] = out.trim().replace(/^sha256:/, '');
    };
    await build('app', 'FROM busybox\nLABEL tier=web color=blue\nRUN echo app > /app\n', 'app:v1');
    await ok(store.root, ['tag', 'app:v1', 'app:v2']);
    await ok(store.root, ['tag', 'app:v1', 'other/app']);
    // Untagged, then the parent of a tagged image: an intermediate image, listed only with -a.
    await build('parent', 'FROM busybox\nRUN echo parent > /p\n');
    await build('child', `FROM ${ids.parent!.slice(0, 12)}\nLABEL tier=db color=blue\n`, 'child');
    // Untagged and nobody's parent: dangling.
    await build('dangling', 'FROM busybox\nRUN echo dangling > /d\n');
  }, 120_000);

  test('lists one row per tag, newest first, as docker does; intermediate images only with -a', async () => {
    const out = await images([]);
    const lines = out.trim().split('\n');
    expect(lines[0]).toMatch(/^REPOSITORY {3}TAG {7}IMAGE ID {7}CREATED +SIZE$/);
    const rows = lines.slice(1).map((l) => l.split(/ {3,}/).slice(0, 3));
    expect(rows).toEqual([
      ['<none>', '<none>', ids.dangling!.slice(0, 12)],
      ['child', 'latest', ids.child!.slice(0, 12)],
      ['app', 'v1', ids.app!.slice(0, 12)],
      ['app', 'v2', ids.app!.slice(0, 12)],
      ['other/app', 'latest', ids.app!.slice(0, 12)],
      ['busybox', 'latest', expect.stringMatching(/^[0-9a-f]{12}$/)],
    ]);
    expect(out).not.toContain(ids.parent!.slice(0, 12));
    const all = await images(['-a']);
    expect(all).toMatch(new RegExp(`^<none> +<none> +${ids.parent!.slice(0, 12)} `, 'm'));
  });

  test('-q prints an ID per row; --no-trunc the whole ID', async () => {
    expect(await column(['-q', 'app'])).toEqual([ids.app!.slice(0, 12), ids.app!.slice(0, 12)]);
    expect(await column(['-q', '--no-trunc', 'child'])).toEqual([`sha256:${ids.child}`]);
    expect(await images(['--no-trunc', 'child'])).toContain(`sha256:${ids.child}`);
  });

  test('REPOSITORY[:TAG] and reference= match as docker’s reference filter (path.Match, * stops at /)', async () => {
    const refs = (args: string[]) => column([...args, '--format', '{{.Repository}}:{{.Tag}}']);
    expect(await refs(['app'])).toEqual(['app:v1', 'app:v2']);
    expect(await refs(['app:v2'])).toEqual(['app:v2']);
    expect(await refs(['*/app'])).toEqual(['other/app:latest']);
    expect(await refs(['--filter', 'reference=app:v[2-9]'])).toEqual(['app:v2']);
    expect(await refs(['-f', 'reference=*app', '-f', 'reference=busy*'])).toEqual(['app:v1', 'app:v2', 'busybox:latest']);
    expect(await images(['nothing-here'])).toMatch(/^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE\n$/);
  });

  test('dangling, label (ANDed), before and since filters', async () => {
    const refs = (args: string[]) => column([...args, '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
    expect(await refs(['-f', 'dangling=true'])).toEqual([`<none>:<none> ${ids.dangling!.slice(0, 12)}`]);
    expect((await refs(['-f', 'dangling=false', '-a'])).some((l) => l.startsWith('<none>'))).toBe(false);
    expect(await refs(['-f', 'label=color=blue', '-f', 'label=tier'])).toHaveLength(4);
    expect(await refs(['-f', 'label=tier=web'])).toEqual(expect.arrayContaining([`app:v1 ${ids.app!.slice(0, 12)}`]));
    expect(await refs(['-f', 'label=tier=web'])).toHaveLength(3);
    expect(await refs(['-f', 'label=tier=db', '-f', 'label=nope'])).toEqual([]);
    expect(await refs(['-f', `since=${ids.app!.slice(0, 12)}`])).toEqual([
      `<none>:<none> ${ids.dangling!.slice(0, 12)}`,
      `child:latest ${ids.child!.slice(0, 12)}`,
    ]);
    expect(await refs(['-f', 'before=app:v1'])).toEqual([expect.stringMatching(/^busybox:latest /)]);
    const missing = await tsbuild(store.root, ['images', '-f', 'since=nope']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toBe('Error: No such image: nope:latest\n');
  });

  test('--format: fields, table with a header, json and {{json .}} one object per line', async () => {
    expect(await images(['--format', 'table {{.ID}}\\t{{.Repository}}', 'child'])).toBe(
      `IMAGE ID       REPOSITORY\n${ids.child!.slice(0, 12)}   child\n`,
    );
    const json = (await column(['--format', 'json', 'child'])).map((l) => JSON.parse(l) as Record<string, string>);
    expect(json).toEqual([
      {
        Containers: 'N/A',
        CreatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \w+$/),
        CreatedSince: expect.stringMatching(/ ago$/),
        Digest: '<none>',
        ID: ids.child!.slice(0, 12),
        // tsbuild's own field (docker has none): the image's platform, a multi-platform image's platforms.
        Platforms: `linux/${hostArchitecture()}`,
        Repository: 'child',
        SharedSize: 'N/A',
        Size: expect.stringMatching(/^[\d.]+[kMG]?B$/),
        Tag: 'latest',
        UniqueSize: 'N/A',
        VirtualSize: expect.stringMatching(/^[\d.]+[kMG]?B$/),
      },
    ]);
    // Go's encoding/json: keys sorted, < and > escaped.
    expect(await images(['--format', '{{json .}}', '-f', 'dangling=true'])).toMatch(
      /^\{"Containers":"N\/A",.*"Digest":"\\u003cnone\\u003e"/,
    );
    expect(await images(['--format', '{{.Tag}} {{json .Repository}}', 'child'])).toBe('latest "child"\n');
    expect(await images(['--digests', 'child'])).toMatch(
      /^REPOSITORY +TAG +DIGEST +IMAGE ID +CREATED +SIZE\nchild +latest +<none> +[0-9a-f]{12} /,
    );
  });

  test('an unknown field or action is one error line naming it, exit 2', async () => {
    const r = await tsbuild(store.root, ['images', '--format', '{{.Repository}} {{.Foo}}']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^Error: unknown field \.Foo in --format: the fields are .*\.Repository/),
    ]);
    const action = await tsbuild(store.root, ['images', '--format', '{{if .Tag}}x{{end}}']);
    expect(action.exitCode).toBe(2);
    expect(action.stderr).toMatch(/^Error: unsupported --format action \{\{if \.Tag\}\}/);
    const filter = await tsbuild(store.root, ['images', '-f', 'color=blue']);
    expect(filter.exitCode).toBe(2);
    expect(filter.stderr).toMatch(/^Error: invalid filter 'color'/);
    expect((await tsbuild(store.root, ['images', '-f', 'dangling=maybe'])).exitCode).toBe(2);
  });

  test('tsbuild image ls|rm|inspect|history|tag: docker’s management command', async () => {
    // (Not CREATED: the clock may tick between the two.)
    const rows = (out: string) => out.split('\n').map((l) => l.split(/ {3,}/).slice(0, 3).join(' '));
    expect(rows(await ok(store.root, ['image', 'ls', 'app']))).toEqual(rows(await images(['app'])));
    expect(await ok(store.root, ['image', 'list', '-q', 'child'])).toBe(`${ids.child!.slice(0, 12)}\n`);
    expect(JSON.parse(await ok(store.root, ['image', 'inspect', 'child']))[0].Id).toBe(`sha256:${ids.child}`);
    expect(await ok(store.root, ['image', 'history', 'child'])).toMatch(/^IMAGE +CREATED +CREATED BY/);
    await ok(store.root, ['image', 'tag', 'child', 'child:two']);
    expect(await ok(store.root, ['image', 'rm', 'child:two'])).toBe('Untagged: child:two\n');
    expect(await ok(store.root, ['image'])).toMatch(/^Usage: {2}tsbuild image COMMAND\n[\s\S]*\n {2}ls +List images\n/);
    const bad = await tsbuild(store.root, ['image', 'frob']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/^Error: unknown command "frob" for "tsbuild image"/);
  });
});

describe('tsbuild images --digests', () => {
  const store = busyboxStore();
  let registry: TestRegistry | undefined;
  afterAll(async () => registry?.stop());

  test('a pulled image shows its repo digest; a digest-only reference is `REPO <none>`', async () => {
    registry = await startRegistry();
    const ref = `${registry.host}/app`;
    await ok(store.root, ['tag', 'busybox', `${ref}:1`]);
    await ok(store.root, ['push', `${ref}:1`]);
    await ok(store.root, ['rmi', `${ref}:1`]);
    const digest = /^Digest: (sha256:[0-9a-f]{64})$/m.exec(await ok(store.root, ['pull', `${ref}:1`]))?.[1];
    expect(digest).toBeDefined();
    const rows = async (args: string[]) =>
      (await ok(store.root, ['images', ...args, '--format', '{{.Repository}} {{.Tag}} {{.Digest}}', ref])).trim().split('\n');
    expect(await rows([])).toEqual([`${ref} 1 <none>`]);
    expect(await rows(['--digests'])).toEqual([`${ref} 1 ${digest}`]);
    expect(await ok(store.root, ['images', '--digests', ref])).toMatch(
      new RegExp(`^REPOSITORY +TAG +DIGEST +IMAGE ID .*\\n${ref} +1 +${digest} +[0-9a-f]{12} `),
    );
    await ok(store.root, ['rmi', `${ref}:1`]);
    expect(await rows(['--digests'])).toEqual([`${ref} <none> ${digest}`]);
    expect(await rows([])).toEqual([`${ref} <none>`]); // (an empty DIGEST, as docker without --digests)
    expect(await ok(store.root, ['images', '-f', 'dangling=true', '-q'])).toBe('');
  }, 120_000);
});
