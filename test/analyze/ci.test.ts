// `analyze --ci`'s package-cache rule (--max-cache-bytes), thresholds from `.tsbuild-ci.yaml`, and
// hints about the base image's layers, on images built from testdata/waste/apt-cache (a RUN that
// leaves apt's lists and a .deb of sizes the test chooses).
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { busyboxStore, ok, REPO, tempDir, tsbuild } from '../helpers/tsbuild.js';

const MB = 1_000_000;

interface Json {
  [k: string]: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const env = busyboxStore();
let small: string; // 3 MB of lists + 2 MB of .deb: under the default 10MB
let big: string; // 12 MB + 3 MB: over it

async function aptCache(tag: string, lists: number, deb: number): Promise<string> {
  const ctx = await tempDir('tsbuild-ci-');
  env.removeLater(ctx);
  await cp(join(REPO, 'testdata/waste/apt-cache'), ctx, { recursive: true });
  await ok(env.root, ['build', '-q', '-t', tag, '--build-arg', `LISTS_BYTES=${lists}`, '--build-arg', `DEB_BYTES=${deb}`, ctx]);
  return ctx;
}

async function runLine(ctx: string): Promise<number> {
  return (await readFile(join(ctx, 'Dockerfile'), 'utf8')).split('\n').findIndex((l) => l.startsWith('RUN')) + 1;
}

const ci = async (args: string[], cwd?: string) => tsbuild(env.root, ['analyze', '--ci', ...args], cwd ? { cwd } : {});
const ciJson = async (args: string[], cwd?: string): Promise<Json> => JSON.parse((await ci(['--json', ...args], cwd)).stdout) as Json;
const cacheRule = (j: Json): Json => j.ci.rules.find((r: Json) => r.rule === 'max-cache-bytes');

beforeAll(async () => {
  small = await aptCache('caches-small', 3 * MB, 2 * MB);
  big = await aptCache('caches-big', 12 * MB, 3 * MB);
}, 120_000);

test('package caches in the Dockerfile’s layers over 10MB fail --ci, naming the RUN line and its fix', async () => {
  const r = await ci(['caches-big']);
  expect(r.exitCode).toBe(1);
  expect(r.stdout).toMatch(/FAIL\s+max-cache-bytes: 15MB of package caches in the Dockerfile's layers is more than 10MB/);
  const line = await runLine(big);
  // Under the rule: each RUN that leaves a cache, and the cache mount that keeps it out.
  expect(r.stdout).toContain(`Dockerfile:${line} \`RUN mkdir -p /var/lib/apt/lists/partial`);
  expect(r.stdout).toMatch(/Fix: In that RUN, keep the cache in a cache mount: `RUN --mount=type=cache,target=\/var\/cache\/apt/);
  expect(r.stdout).toMatch(/Result: FAIL \(1 of 4 checks failed\)/);
  const rule = cacheRule(await ciJson(['caches-big']));
  expect(rule).toMatchObject({ status: 'fail', threshold: 10 * MB, value: 15 * MB });
  expect(rule.causes.map((h: Json) => [h.kind, h.bytes])).toEqual([
    ['package-cache', 12 * MB],
    ['package-cache', 3 * MB],
  ]);
  expect((await ciJson(['caches-big'])).userCacheBytes).toBe(15 * MB);
});

test('under the threshold it passes; --max-cache-bytes moves the bound, "disabled" skips the rule', async () => {
  expect(cacheRule(await ciJson(['caches-small']))).toMatchObject({ status: 'pass', value: 5 * MB });
  expect((await ci(['caches-small'])).exitCode).toBe(0);
  expect((await ci(['caches-small', '--max-cache-bytes', '4MB'])).exitCode).toBe(1);
  expect((await ci(['caches-small', '--max-cache-bytes', '5MB'])).exitCode).toBe(0); // the bound is exclusive
  expect((await ci(['caches-big', '--max-cache-bytes', 'disabled'])).stdout).toMatch(/SKIP\s+max-cache-bytes: disabled/);
  const bad = await tsbuild(env.root, ['analyze', '--ci', 'caches-small', '--max-cache-bytes', 'lots']);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr).toMatch(/^Error: --max-cache-bytes: invalid size "lots"/);
  expect((await tsbuild(env.root, ['analyze', 'caches-small', '--max-cache-bytes', '1MB'])).exitCode).toBe(2);
});

test('.tsbuild-ci.yaml next to the Dockerfile sets the thresholds (dive’s .dive-ci keys); flags win', async () => {
  await writeFile(
    join(small, '.tsbuild-ci.yaml'),
    '# as dive\'s .dive-ci\nrules:\n  lowestEfficiency: 90%\n  highestWastedBytes: disabled\n  maxCacheBytes: "1MB"\n',
  );
  try {
    const r = await ci(['caches-small']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(`CI checks (thresholds from ${join(small, '.tsbuild-ci.yaml')}):`);
    expect(r.stdout).toMatch(/SKIP\s+highest-wasted-bytes: disabled/);
    const j = await ciJson(['caches-small']);
    expect(j.ci.config).toBe(join(small, '.tsbuild-ci.yaml'));
    expect(cacheRule(j)).toMatchObject({ status: 'fail', threshold: 1 * MB });
    expect((await ci(['caches-small', '--max-cache-bytes', '100MB'])).exitCode).toBe(0);
  } finally {
    await rm(join(small, '.tsbuild-ci.yaml'));
  }
});

test('--ci-config FILE; a bad file fails in one line naming the file and the line', async () => {
  const dir = await tempDir('tsbuild-ci-config-');
  env.removeLater(dir);
  const file = join(dir, 'gate.yaml');
  await writeFile(file, 'rules:\n  maxCacheBytes: 20MB\n');
  // The big image passes a 20MB gate; the file is named in the output.
  const r = await ci(['caches-big', '--ci-config', file]);
  expect(r.exitCode).toBe(0);
  expect(r.stdout).toContain(`(thresholds from ${file})`);
  // A .tsbuild-ci.yaml in the current directory applies to an image whose Dockerfile has none.
  await writeFile(join(dir, '.tsbuild-ci.yaml'), 'rules:\n  maxCacheBytes: 20MB\n');
  expect((await ci(['caches-big'], dir)).exitCode).toBe(0);

  await writeFile(file, 'rules:\n  maxCacheBytes: 20MB\n  lowestEficiency: 0.9\n');
  const unknown = await ci(['caches-big', '--ci-config', file]);
  expect(unknown.exitCode).not.toBe(0);
  expect(unknown.stderr).toBe(
    `Error: ${file}:3: unknown rule "lowestEficiency" (known: lowestEfficiency, highestWastedBytes, highestUserWastedPercent, maxCacheBytes)\n`,
  );
  await writeFile(file, 'rules:\n  maxCacheBytes: [20MB\n');
  const broken = await ci(['caches-big', '--ci-config', file]);
  expect(broken.stderr).toMatch(new RegExp(`^Error: ${file}:\\d: not valid YAML: .*\\n$`));
  await writeFile(file, 'rules:\n  highestWastedBytes: 20 parsecs\n');
  expect((await ci(['caches-big', '--ci-config', file])).stderr).toBe(
    `Error: ${file}:2: highestWastedBytes: invalid size "20 parsecs": want e.g. 20MB, 1.5GiB, 500000 or disabled\n`,
  );
  expect((await ci(['caches-big', '--ci-config', join(dir, 'missing.yaml')])).stderr).toBe(
    `Error: ${join(dir, 'missing.yaml')}: cannot read the CI config: ENOENT\n`,
  );
});

test('caches in the base image: a hint to choose or rebuild a slimmer base (never .dockerignore), and no CI failure', async () => {
  const ctx = await tempDir('tsbuild-ci-base-');
  env.removeLater(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM caches-big\nRUN echo hi > /greeting\n');
  await ok(env.root, ['build', '-q', '-t', 'on-caches', ctx]);
  const j = await ciJson(['on-caches']);
  const hints = j.hints.filter((h: Json) => h.kind === 'package-cache');
  expect(hints).toHaveLength(2);
  for (const h of hints) {
    expect(j.layers[h.layer].origin.base).toBe(true);
    expect(h.fix).toMatch(/belongs to the base image: no step of this Dockerfile can shrink its layers\. Choose a slimmer base image/);
    expect(h.fix).not.toMatch(/dockerignore|--mount=type=cache/);
  }
  expect(j.userCacheBytes).toBe(0);
  expect(cacheRule(j)).toMatchObject({ status: 'pass', value: 0 });
});
