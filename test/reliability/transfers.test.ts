// Ctrl-C during a push (while a big layer is compressed and uploaded) and during a pull's unpacking
// (a layer of 60,000 files whose blob arrives at once): the command stops a small part of the way
// into what is left, exits 130, and leaves the registry without the tag and the store as it was.
// (Ctrl-C while a blob is still downloading: test/interop/registry.test.ts.)
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startProxy, startRegistry, type TestProxy, type TestRegistry } from '../helpers/registry.js';
import { waitFor } from '../helpers/steps.js';
import { CLI, ok, rootWithBusybox, tempDir, tempRoot } from '../helpers/tsbuild.js';
import { contents, inconsistencies, leftovers } from './store-check.js';

type Env = Awaited<ReturnType<typeof tempRoot>>;

let registry: TestRegistry;
let src: Env;
let dockerConfig: string;
const roots: Env[] = [];
const proxies: TestProxy[] = [];

beforeAll(async () => {
  registry = await startRegistry();
  dockerConfig = await tempDir('tsbuild-dockercfg-');
  src = await rootWithBusybox();
  const ctx = await tempDir();
  // `big`: 160 MB of random bytes, seconds of deflate. `many`: 60,000 small files, a small blob
  // that takes seconds to unpack.
  await writeFile(
    join(ctx, 'Dockerfile'),
    [
      'FROM busybox AS big',
      'RUN head -c 160000000 /dev/urandom > /big',
      'FROM busybox',
      'RUN for d in $(seq 60); do mkdir -p /m/$d; for f in $(seq 1000); do echo $f > /m/$d/$f; done; done',
      '',
    ].join('\n'),
  );
  await ok(src.root, ['build', '--target', 'big', '-t', 'big:1', ctx]);
  await ok(src.root, ['build', '-t', `${registry.host}/many:1`, ctx]);
  await ok(src.root, ['push', `${registry.host}/many:1`], { env: { DOCKER_CONFIG: dockerConfig } });
}, 300_000);

afterAll(async () => {
  for (const p of proxies) await p.stop();
  for (const r of roots) await r.cleanup();
  await src?.cleanup();
  await registry?.stop();
});

/** Runs `tsbuild ARGS` on `root`, timing it; `kill` sends a signal and says when. */
function start(root: string, args: readonly string[]) {
  const child = execa('node', [CLI, args[0]!, '--root', root, ...args.slice(1)], {
    reject: false,
    all: true,
    env: { DOCKER_CONFIG: dockerConfig, TSBUILD_ROOT: '' },
  });
  const startedAt = performance.now();
  const done = child.then((r) => ({ exitCode: r.exitCode ?? -1, all: String(r.all), endedAt: performance.now() }));
  return {
    startedAt,
    done,
    kill(signal: NodeJS.Signals): number {
      child.kill(signal);
      return performance.now();
    },
  };
}

/** True once some snapshot under `root` has the top-level directory `dir` with entries in it. */
async function unpacking(root: string, dir: string): Promise<true | undefined> {
  const snapshots = join(root, 'overlay2');
  for (const id of await readdir(snapshots).catch(() => [])) {
    const entries = await readdir(join(snapshots, id, 'diff', dir)).catch(() => []);
    if (entries.length > 0) return true;
  }
  return undefined;
}

/** The tags a registry repository has (none: it was never pushed whole). */
async function registryTags(repo: string): Promise<string[]> {
  const res = await fetch(`http://${registry.host}/v2/${repo}/tags/list`);
  if (res.status === 404) return [];
  return ((await res.json()) as { tags: string[] | null }).tags ?? [];
}

test('Ctrl-C during a push of a 160 MB layer stops it at once: exit 130, no tag in the registry, the store as it was', async () => {
  // Uploads seen as they begin (the proxy logs a request only once its body is read).
  let uploading = false;
  const proxy = await startProxy(registry.host, {
    interceptHead(req) {
      if ((req.method === 'PATCH' || req.method === 'PUT') && req.url!.includes('/blobs/uploads/')) uploading = true;
      return false;
    },
  });
  proxies.push(proxy);
  await ok(src.root, ['tag', 'big:1', `${proxy.host}/cut:1`]);
  const before = await contents(src.root);
  const push = start(src.root, ['push', `${proxy.host}/cut:1`]);
  await waitFor('an upload to begin', async () => (uploading ? true : undefined), 120_000);
  await new Promise((r) => setTimeout(r, 300));
  const sentAt = push.kill('SIGINT');
  const r = await push.done;
  expect(r.exitCode).toBe(130);
  expect(r.all).toMatch(/^Error: push interrupted$/m);
  const stopTime = r.endedAt - sentAt;
  expect(await registryTags('cut')).toEqual([]);
  expect(await contents(src.root)).toEqual(before);
  expect(await leftovers(src.root)).toEqual([]);
  expect(await inconsistencies(src.root)).toEqual([]);

  // The same push run to its end, into another repository: what stopping saved.
  await ok(src.root, ['tag', 'big:1', `${registry.host}/full:1`]);
  const full = start(src.root, ['push', `${registry.host}/full:1`]);
  const whole = await full.done;
  expect(whole.exitCode).toBe(0);
  const pushTime = whole.endedAt - full.startedAt;
  expect({ quick: stopTime < 0.2 * pushTime, stopTime, pushTime }).toMatchObject({ quick: true });
  expect(await registryTags('full')).toEqual(['1']);
}, 300_000);

test('Ctrl-C while a pull unpacks a layer of 60,000 files stops it at once: exit 130, the store as it was', async () => {
  // The same pull, run whole into a root of its own at the same time: it meets the same load
  // (this machine's disk speed moves threefold within minutes, and the other test worker's
  // I/O comes and goes), which a pull timed before or after does not.
  const timedRoot = await tempRoot();
  roots.push(timedRoot);
  const t = await tempRoot();
  roots.push(t);
  const before = await contents(t.root);
  const timed = start(timedRoot.root, ['pull', `${registry.host}/many:1`]);
  const pull = start(t.root, ['pull', `${registry.host}/many:1`]);
  // Interrupted once the layer's files are seen arriving in its snapshot: the pull is unpacking.
  // (A fixed delay raced: a second pull of the same blobs can finish in less than half the first's time.)
  await waitFor('the pull to unpack /m', () => unpacking(t.root, 'm'), 120_000);
  const sentAt = pull.kill('SIGINT');
  const r = await pull.done;
  expect(r.exitCode).toBe(130);
  expect(r.all).toMatch(/^Error: pull interrupted$/m);
  const stopTime = r.endedAt - sentAt;
  const whole = await timed.done;
  expect(whole.exitCode).toBe(0);
  const pullTime = whole.endedAt - timed.startedAt;
  // Stopped at once: in a small part of the whole pull's time (here 0.09-0.17 of it, idle or
  // beside another test's I/O); a pull that went on unpacking after Ctrl-C would take most of it.
  expect({ quick: stopTime < 0.3 * pullTime, stopTime, pullTime }).toMatchObject({ quick: true });
  await waitFor('the remover to finish', async () => ((await leftovers(t.root)).length === 0 ? true : undefined), 60_000);
  expect(await contents(t.root)).toEqual(before);
  expect(await inconsistencies(t.root)).toEqual([]);
}, 300_000);
