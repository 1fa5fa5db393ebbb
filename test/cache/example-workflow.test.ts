// examples/github-actions/build.yml's build step, run as written (sudo and the GitHub
// expressions stood in for) on two empty runners sharing a registry on 127.0.0.1 and a cache
// directory: the second runs no step and gets the first's image. Keeps the example true.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { CLI, ok, REPO, rootWithBusybox, tempDir, tempRoot } from '../helpers/tsbuild.js';

type Env = Awaited<ReturnType<typeof tempRoot>>;

/** The `run: |` block of the step named `name`. */
function runBlock(yaml: string, name: string): string {
  const lines = yaml.split('\n');
  const at = lines.findIndex((l) => l.trim() === `- name: ${name}`);
  if (at < 0) throw new Error(`no step ${name}`);
  const run = lines.findIndex((l, i) => i > at && l.trim() === 'run: |');
  const indent = (l: string) => l.length - l.trimStart().length;
  const body: string[] = [];
  for (const l of lines.slice(run + 1)) {
    if (l.trim() !== '' && indent(l) <= indent(lines[run]!)) break;
    body.push(l.trim());
  }
  return body.join('\n');
}

describe('the GitHub Actions example', () => {
  let registry: TestRegistry;
  const roots: Env[] = [];

  afterAll(async () => {
    for (const r of roots) await r.cleanup();
    await registry?.stop();
  });

  test('its build step fills both caches, and a second runner builds nothing', async () => {
    registry = await startRegistry();
    const src = await rootWithBusybox();
    roots.push(src);
    const base = `${registry.host}/busybox:1`;
    await ok(src.root, ['tag', 'busybox', base]);
    await ok(src.root, ['push', base]);
    const ctx = await tempDir();
    await writeFile(join(ctx, 'app.txt'), 'app\n');
    await writeFile(join(ctx, 'Dockerfile'), `FROM ${base}\nCOPY app.txt /app.txt\nRUN cat /app.txt > /copy.txt\n`);

    const step = runBlock(await readFile(join(REPO, 'examples/github-actions/build.yml'), 'utf8'), 'Build and push');
    expect(step).toContain('--cache-to type=registry');
    const cacheDir = join(await tempDir(), 'cache');
    const script = step
      .replaceAll('${{ github.sha }}', 'c0ffee')
      .replaceAll('/tmp/tsbuild-cache', cacheDir)
      .replaceAll('/tmp/metadata.json', join(cacheDir, '..', 'metadata.json'));
    const runOn = async (root: string) =>
      execa('bash', ['-euo', 'pipefail', '-c', `sudo() { "$@"; }\ntsbuild() { node ${CLI} "$1" --root ${root} "\${@:2}"; }\n${script}`], {
        cwd: ctx,
        env: { IMAGE: `${registry.host}/app`, TSBUILD_ROOT: '' },
        reject: false,
      });
    const first = await tempRoot();
    const second = await tempRoot();
    roots.push(first, second);
    const a = await runOn(first.root);
    expect(a.exitCode).toBe(0);
    // The first run finds no cache yet: one line for each source, nothing else.
    expect(a.stderr.trimEnd().split('\n')).toEqual([
      `--cache-from ${cacheDir}: no cache there yet; building without it`,
      `--cache-from ${registry.host}/app:buildcache: no cache there yet; building without it`,
    ]);
    const b = await runOn(second.root);
    expect(b.exitCode).toBe(0);
    expect(b.stderr).toBe('');
    expect(b.stdout).not.toMatch(/^--> [0-9a-f]{12} \(/m);
    const digest = (out: string) => /"containerimage.config.digest": "(sha256:[0-9a-f]{64})"/.exec(out)?.[1];
    expect(digest(b.stdout)).toBe(digest(a.stdout));
    expect(digest(a.stdout)).toBeDefined();
  });
});
