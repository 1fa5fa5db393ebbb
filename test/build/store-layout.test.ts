// A build lands in Docker's overlay2 layout, and `inspect` agrees with the files on disk.
import { readFile, readdir, readlink, stat } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { chainIds, hex, parseDigest, sha256, type Digest } from '../../src/digest.js';
import { regenerateLayer } from '../../src/layer/index.js';
import { ok, REPO, rootWithBusybox } from '../helpers/tsbuild.js';

const CONTEXT = join(REPO, 'testdata/contexts/copy-basic');

async function sha256Stream(s: NodeJS.ReadableStream): Promise<Digest> {
  const h = createHash('sha256');
  for await (const chunk of s) h.update(chunk as Buffer);
  return parseDigest(`sha256:${h.digest('hex')}`);
}

describe.each(['overlay2', 'vfs'] as const)('store layout (%s)', (driver) => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  let inspect: {
    Id: Digest;
    RepoTags: string[];
    RootFS: { Layers: Digest[] };
    GraphDriver: { Name: string; Data: Record<string, string> | null };
    Config: { Env: string[]; Cmd: string[] };
  };

  beforeAll(async () => {
    env = await rootWithBusybox(driver);
    await ok(env.root, ['build', '-t', 'layout:1', CONTEXT]);
    inspect = JSON.parse(await ok(env.root, ['inspect', 'layout:1']))[0];
    expect(inspect.GraphDriver.Name).toBe(driver);
  }, 120_000);
  afterAll(async () => env?.cleanup());

  const meta = () => join(env.root, 'image', driver);

  test('the image ID is the sha256 of the stored config bytes', async () => {
    const bytes = await readFile(join(meta(), 'imagedb/content/sha256', hex(inspect.Id)));
    expect(sha256(bytes)).toBe(inspect.Id);
    const config = JSON.parse(bytes.toString());
    expect(config.rootfs).toEqual({ type: 'layers', diff_ids: inspect.RootFS.Layers });
    expect(config.config.Env).toContain('GREETING=hello');
    expect(config.config.Cmd).toEqual(['cat', '/a.txt']);
    // busybox's one layer plus the two COPY layers
    expect(inspect.RootFS.Layers).toHaveLength(3);
    expect(config.history.filter((h: { empty_layer?: boolean }) => !h.empty_layer)).toHaveLength(3);
  });

  test('each layer is at its chainID with the right diff, parent, size and cache-id', async () => {
    const chains = chainIds(inspect.RootFS.Layers);
    for (let i = 0; i < chains.length; i++) {
      const dir = join(meta(), 'layerdb/sha256', hex(chains[i]!));
      expect((await readFile(join(dir, 'diff'), 'utf8')).trim()).toBe(inspect.RootFS.Layers[i]);
      if (i === 0) await expect(stat(join(dir, 'parent'))).rejects.toThrow(/ENOENT/);
      else expect((await readFile(join(dir, 'parent'), 'utf8')).trim()).toBe(chains[i - 1]);
      expect(Number(await readFile(join(dir, 'size'), 'utf8'))).toBeGreaterThan(0);
      const cacheId = (await readFile(join(dir, 'cache-id'), 'utf8')).trim();
      const split = gunzipSync(await readFile(join(dir, 'tar-split.json.gz')))
        .toString()
        .trim()
        .split('\n');
      expect(split.length).toBeGreaterThan(0);
      split.forEach((l) => JSON.parse(l));
      // tar-split rebuilds the exact tar whose sha256 is the diffID.
      const fileRoot = driver === 'overlay2' ? join(env.root, 'overlay2', cacheId, 'diff') : join(env.root, 'vfs/dir', cacheId);
      expect(await sha256Stream(regenerateLayer(join(dir, 'tar-split.json.gz'), fileRoot))).toBe(inspect.RootFS.Layers[i]);
    }
  });

  test('the COPY layers hold exactly the copied files', async () => {
    const chains = chainIds(inspect.RootFS.Layers);
    const cacheId = (await readFile(join(meta(), 'layerdb/sha256', hex(chains[2]!), 'cache-id'), 'utf8')).trim();
    const root = driver === 'overlay2' ? join(env.root, 'overlay2', cacheId, 'diff') : join(env.root, 'vfs/dir', cacheId);
    expect(await readFile(join(root, 'opt/dir/sub/n.txt'), 'utf8')).toBe('nested\n');
    expect(await readFile(join(root, 'opt/dir/t.txt'), 'utf8')).toBe('top\n');
    if (driver === 'overlay2') expect((await readdir(root)).sort()).toEqual(['opt']);
  });

  test("repositories.json tags the image in Docker's format", async () => {
    const repos = JSON.parse(await readFile(join(meta(), 'repositories.json'), 'utf8'));
    expect(repos.Repositories.layout).toEqual({ 'layout:1': inspect.Id });
    expect(repos.Repositories.busybox['busybox:latest']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(inspect.RepoTags).toEqual(['layout:1']);
  });

  if (driver === 'overlay2') {
    test('short links, lower chains and GraphDriver data match overlay2', async () => {
      const chains = chainIds(inspect.RootFS.Layers);
      const cacheIds: string[] = [];
      for (const c of chains) cacheIds.push((await readFile(join(meta(), 'layerdb/sha256', hex(c), 'cache-id'), 'utf8')).trim());
      const links: string[] = [];
      for (const id of cacheIds) {
        const link = (await readFile(join(env.root, 'overlay2', id, 'link'), 'utf8')).trim();
        expect(link).toMatch(/^[A-Z0-9]{26}$/);
        expect(await readlink(join(env.root, 'overlay2/l', link))).toBe(`../${id}/diff`);
        links.push(link);
      }
      await expect(stat(join(env.root, 'overlay2', cacheIds[0]!, 'lower'))).rejects.toThrow(/ENOENT/);
      expect(await readFile(join(env.root, 'overlay2', cacheIds[2]!, 'lower'), 'utf8')).toBe(`l/${links[1]}:l/${links[0]}`);
      expect(inspect.GraphDriver.Name).toBe('overlay2');
      expect(inspect.GraphDriver.Data).toEqual({
        LowerDir: `${join(env.root, 'overlay2', cacheIds[1]!, 'diff')}:${join(env.root, 'overlay2', cacheIds[0]!, 'diff')}`,
        MergedDir: join(env.root, 'overlay2', cacheIds[2]!, 'merged'),
        UpperDir: join(env.root, 'overlay2', cacheIds[2]!, 'diff'),
        WorkDir: join(env.root, 'overlay2', cacheIds[2]!, 'work'),
      });
    });
  }
});
