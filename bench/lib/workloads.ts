// The workloads, each as: inputs (generated once, from the seed), untimed setup per
// tool (a first build to be rebuilt from cache, a base image, the image to save or push), the
// timed command of run i, untimed work around it (a fresh registry, removing an archive), and
// for some a floor: the same work done by plain tools, measured in the same run.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { manySmallFilesSpec, nodeModulesSpec, payloadSpec, writeTree, type TreeStats } from './inputs.js';
import type { Command } from './measure.js';
import type { Registry } from './registry.js';
import type { Session } from './session.js';
import { DOCKER } from './dockerd.js';
import { DockerTool, isUnsupported, type Step, type Tool, type ToolId } from './tools.js';
import { W10 } from './w10.js';

export interface RunSpec {
  readonly command: Step;
  /** Untimed, after the command (whether or not it succeeded). */
  readonly after?: () => Promise<void>;
}

export interface WorkloadEnv {
  readonly session: Session;
  readonly seed: string;
  /** Runs an untimed command of `tool` (setup, tagging, cleanup); throws with its output. */
  untimed(tool: ToolId | 'floor', cmd: Command): Promise<void>;
  startRegistry(): Promise<Registry>;
  /** Describes generated inputs, for the results. */
  note(id: string, stats: TreeStats): void;
  /** A tsbuild command on a store root of the workload's own (an empty runner's, a seeding one). */
  tsbuild(root: string, command: string, args: readonly string[]): Command;
  /** The node executable that runs tsbuild (CLI start's floor is it starting alone). */
  node(): string;
  /** The busybox base as a Docker archive (what the Docker columns load at start). */
  readonly baseArchive: string;
  floorCgroup: string | undefined;
}

export type Kind = 'light' | 'heavy' | 'cli';

export interface Workload {
  readonly id: string;
  readonly title: string;
  readonly kind: Kind;
  prepare?(env: WorkloadEnv): Promise<void>;
  setup?(tool: Tool, env: WorkloadEnv): Promise<void>;
  /** The timed command of run `run` (untimed preparation may happen here). */
  spec(tool: Tool, env: WorkloadEnv, run: number): RunSpec | Promise<RunSpec>;
  /** Images to remove after the workload (then each tool's prune), to bound disk use. */
  readonly removes?: (tool: Tool) => string[];
  readonly floor?: { readonly what: string; spec(env: WorkloadEnv, run: number): RunSpec };
}

const once = new Map<string, Promise<unknown>>();
/** Inputs shared by several workloads are made once. */
function memo<T>(key: string, make: () => Promise<T>): Promise<T> {
  if (!once.has(key)) once.set(key, make());
  return once.get(key) as Promise<T>;
}

function inputs(env: WorkloadEnv, ...parts: string[]): string {
  return env.session.path('inputs', ...parts);
}

async function context(dir: string, dockerfile: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), dockerfile);
}

function floorCmd(env: WorkloadEnv, script: string): Command {
  return { argv: ['/bin/sh', '-c', script], ...(env.floorCgroup ? { cgroup: env.floorCgroup } : {}) };
}

/** Tag names are per tool where two tools share an image store (the Docker columns). */
function tagFor(base: string, tool: Tool): string {
  return `${base}-${tool.id}`;
}

const w2Context = (env: WorkloadEnv): Promise<string> =>
  memo('w2', async () => {
    const dir = inputs(env, 'w2');
    await context(dir, 'FROM busybox\nCOPY node_modules /app/node_modules\nRUN echo built > /app/built.txt\n');
    env.note('W2 tree', await writeTree(dir, `${env.seed}:w2`, nodeModulesSpec(`${env.seed}:w2`, 20_000, 80_000_000)));
    return dir;
  });

function w5(count: number, label: string): Workload {
  const baseCtx = (env: WorkloadEnv): Promise<string> =>
    memo(`w5-${label}`, async () => {
      const dir = inputs(env, `w5-base-${label}`);
      await context(dir, 'FROM busybox\nCOPY base /base\n');
      env.note(
        `W5 base ${label}`,
        await writeTree(dir, `${env.seed}:w5:${label}`, manySmallFilesSpec(`${env.seed}:w5:${label}`, count, 'base')),
      );
      return dir;
    });
  const runCtx = (env: WorkloadEnv, tool: Tool): string => inputs(env, `w5-${label}-${tool.id}`);
  return {
    id: `W5-${label}`,
    title: `large base: ${count.toLocaleString('en')}-file base + one small RUN`,
    kind: count > 10_000 ? 'heavy' : 'light',
    prepare: async (env) => void (await baseCtx(env)),
    async setup(tool, env) {
      await env.untimed(tool.id, tool.build(await baseCtx(env), tagFor(`bench-w5base-${label}`, tool), { noCache: false }));
      await context(runCtx(env, tool), `FROM ${tagFor(`bench-w5base-${label}`, tool)}\nRUN echo hello > /hello.txt\n`);
    },
    spec: (tool, env) => ({ command: tool.build(runCtx(env, tool), tagFor(`bench-w5-${label}`, tool), { noCache: true }) }),
    removes: (tool) => [tagFor(`bench-w5-${label}`, tool), tagFor(`bench-w5base-${label}`, tool)],
  };
}

function deep(steps: number, id: string, title: string): Workload {
  const dir = (env: WorkloadEnv): string => inputs(env, `w6-${steps}`);
  return {
    id,
    title,
    kind: 'heavy',
    prepare: (env) =>
      context(dir(env), `FROM busybox\n${Array.from({ length: steps }, (_, i) => `RUN echo ${i + 1} > /step-${i + 1}\n`).join('')}`),
    spec: (tool, env) => ({ command: tool.build(dir(env), tagFor(`bench-w6-${steps}`, tool), { noCache: true }) }),
    removes: (tool) => [tagFor(`bench-w6-${steps}`, tool)],
  };
}

const w7Context = (env: WorkloadEnv): Promise<string> =>
  memo('w7', async () => {
    const dir = inputs(env, 'w7');
    await context(dir, 'FROM busybox\nCOPY payload /payload\n');
    env.note('W7 payload', await writeTree(dir, `${env.seed}:w7`, payloadSpec(`${env.seed}:w7`, 300_000_000, 'payload')));
    return dir;
  });

async function w7Setup(tool: Tool, env: WorkloadEnv): Promise<void> {
  // Built from cache after the first W7 workload; only the Docker columns share one image.
  if (tool.id === 'buildkit') return;
  await env.untimed(tool.id, tool.build(await w7Context(env), tagFor('bench-w7', tool), { noCache: false }));
}

function w7Push(compression: 'gzip' | 'zstd', last: boolean): Workload {
  return {
    id: `W7-push-${compression}`,
    title: `push of the ~300 MB image to a fresh registry on 127.0.0.1, ${compression}`,
    kind: 'heavy',
    prepare: async (env) => void (await w7Context(env)),
    setup: w7Setup,
    async spec(tool, env) {
      const probe = tool.push('probe', compression);
      if (isUnsupported(probe)) return { command: probe };
      // Each run pushes to a new, empty registry: every layer is compressed and uploaded.
      const registry = await env.startRegistry();
      const ref = `${registry.host}/bench-w7-${tool.id}:latest`;
      try {
        await env.untimed(tool.id, tool.tag(tagFor('bench-w7', tool), ref));
      } catch (err) {
        await registry.stop();
        throw err;
      }
      return {
        command: tool.push(ref, compression),
        async after() {
          try {
            await env.untimed(tool.id, tool.rmi([ref]));
          } finally {
            await registry.stop();
          }
        },
      };
    },
    ...(last ? { removes: (tool: Tool) => (tool.id === 'buildkit' ? [] : [tagFor('bench-w7', tool)]) } : {}),
  };
}

/**
 * W8's Dockerfile. The lockfile is copied first, as real Dockerfiles copy package.json or a
 * requirements file, so changing it re-runs the RUN. That RUN fills its cache mount with ~200 MB
 * of package-like files (500 files of 48 KiB to 768 KiB, random bytes, 25 directories) only when
 * the cache does not have them yet, and otherwise only reads them all into a small checksum file
 * in the image. A source COPY follows.
 */
const W8_DOCKERFILE = `FROM busybox
COPY lock.txt /app/lock.txt
RUN --mount=type=cache,target=/var/cache/pkgs \\
    set -e; cd /var/cache/pkgs; \\
    if [ ! -e complete ]; then \\
      i=0; while [ $i -lt 500 ]; do \\
        mkdir -p pool/p$((i % 25)); \\
        head -c $(( (i * 7 % 16 + 1) * 49152 )) /dev/urandom > pool/p$((i % 25))/pkg\${i}_1.0_amd64.deb; \\
        i=$((i + 1)); \\
      done; \\
      touch complete; \\
    fi; \\
    cat pool/*/*.deb | md5sum > /app/packages.md5
COPY src/ /app/src/
`;

/** W8's context of one tool: its own lockfile, which each run changes. */
async function w8Context(env: WorkloadEnv, tool: Tool, lock: string): Promise<string> {
  const dir = inputs(env, `w8-${tool.id}`);
  await context(dir, W8_DOCKERFILE);
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(join(dir, 'src', 'main.js'), `console.log('bench ${env.seed}');\n`);
  await writeFile(join(dir, 'lock.txt'), `${lock}\n`);
  return dir;
}

/** Why a tool has no W8 time, or undefined when it runs W8. */
function w8Unsupported(tool: Tool): string | undefined {
  if (tool.id === 'classic') return 'the classic builder has no RUN --mount';
  // buildah keeps cache mounts in one directory for the whole machine (/var/tmp/buildah-cache),
  // outside this run's directory, and no prune removes them.
  if (tool.id === 'buildah') return 'cache mounts outside the run (/var/tmp/buildah-cache)';
  return undefined;
}

/**
 * W9's Dockerfile: a builder stage that copies ~300 small source files and bundles them (one
 * file and its checksum), and a final stage that takes the bundle and indexes it. A changed
 * source file misses from the builder's COPY on: its RUN, the COPY --from and the last RUN run
 * again. The base comes from the run's registry, as on a runner that has no images at all.
 */
function w9Dockerfile(host: string): string {
  return `FROM ${host}/busybox:w9 AS builder
WORKDIR /src
COPY src/ ./
RUN mkdir /out && find . -type f | sort | xargs cat > /out/bundle.js && md5sum /out/bundle.js > /out/bundle.md5
FROM ${host}/busybox:w9
COPY --from=builder /out/ /app/
RUN wc -c /app/bundle.js > /app/size.txt
`;
}

const W9_SOURCES = 300;
/** The source file W9-change rewrites in each run (one of manySmallFilesSpec's names). */
const W9_CHANGED = 'src/d0001/f000150.txt';

/**
 * The registry both W9 workloads use, with the busybox base pushed once by tsbuild from a
 * store of its own (every column pulls it from there).
 */
const w9Registry = (env: WorkloadEnv): Promise<string> =>
  memo('w9-registry', async () => {
    const registry = await env.startRegistry();
    const root = env.session.path('w9-base-root');
    const base = `${registry.host}/busybox:w9`;
    await env.untimed('tsbuild', env.tsbuild(root, 'bootstrap', ['busybox']));
    await env.untimed('tsbuild', env.tsbuild(root, 'tag', ['busybox', base]));
    await env.untimed('tsbuild', env.tsbuild(root, 'push', ['-q', base]));
    return registry.host;
  });

/** One tool's W9 context (its own, since W9-change edits it in every run). */
async function w9Context(env: WorkloadEnv, tool: Tool, variant: W9Variant): Promise<string> {
  const host = await w9Registry(env);
  const dir = inputs(env, `w9-${variant}-${tool.id}`);
  await context(dir, w9Dockerfile(host));
  const stats = await writeTree(dir, `${env.seed}:w9`, manySmallFilesSpec(`${env.seed}:w9`, W9_SOURCES, 'src'));
  env.note('W9 sources', stats);
  return dir;
}

type W9Variant = 'hit' | 'change';

/** Why a tool has no W9 time, or undefined when it runs W9. */
function w9Unsupported(tool: Tool): string | undefined {
  // buildah 1.28 has --cache-from/--cache-to for --layers, but the bench does not drive them yet.
  if (tool.id === 'buildah') return 'not measured: the registry cache of buildah bud is not wired into the bench';
  return undefined;
}

/** The images W9 leaves in a Docker column: the built one, and what the classic run pulled. */
function w9DockerImages(host: string, tool: Tool, variant: W9Variant): { out: string; caches: string[] } {
  const out = `${host}/w9app:out-${variant}-${tool.id}`;
  if (tool.id === 'buildkit') return { out, caches: [`${host}/w9app:${variant}-inline`] };
  return { out, caches: [`${host}/w9app:${variant}-classic-builder`, `${host}/w9app:${variant}-classic`] };
}

/**
 * Makes the Docker engine an empty runner: no container (a failed classic build leaves its
 * step's, which keeps its image and that image's parents), no image at all (bases, caches, built
 * images, the classic builder's intermediate images, the busybox loaded at start, which holds the
 * same layer as the registry's base) and no BuildKit cache. It fails if an image is left: a
 * leftover base makes the next Docker run a warm one (BuildKit's W9-hit: ~300 ms instead of
 * ~400). `after` loads that busybox back for the workloads that follow.
 */
function emptyDocker(tool: DockerTool): Command {
  const script = `set -e
containers=$("${DOCKER}" ps -aq)
if [ -n "$containers" ]; then "${DOCKER}" rm -f $containers >/dev/null; fi
"${DOCKER}" image prune -af >/dev/null
"${DOCKER}" builder prune -af >/dev/null
left=$("${DOCKER}" images -aq)
if [ -n "$left" ]; then echo "images left after emptying the engine: $left" >&2; exit 1; fi`;
  return { ...tool.cmd([]), argv: ['/bin/sh', '-c', script] };
}

async function w9Setup(variant: W9Variant, tool: Tool, env: WorkloadEnv): Promise<void> {
  if (w9Unsupported(tool) !== undefined) return;
  const dir = await w9Context(env, tool, variant);
  const host = await w9Registry(env);
  if (tool.id === 'tsbuild') {
    // The commit's first build, on another runner: it writes the cache every later run reads.
    const root = env.session.path(`w9-${variant}-seed-root`);
    const cacheTo = `type=registry,ref=${host}/cache:w9-${variant},mode=max`;
    await env.untimed('tsbuild', env.tsbuild(root, 'build', ['-q', '--cache-to', cacheTo, '-t', 'w9app', dir]));
    return;
  }
  if (!(tool instanceof DockerTool)) throw new Error(`W9 has no setup for ${tool.id}`);
  const { caches } = w9DockerImages(host, tool, variant);
  if (tool.id === 'buildkit') {
    const ref = caches[0]!;
    await env.untimed(
      tool.id,
      tool.cmd(['build', '--network', 'host', '--build-arg', 'BUILDKIT_INLINE_CACHE=1', '-q', '-t', ref, dir], { DOCKER_BUILDKIT: '1' }),
    );
    await env.untimed(tool.id, tool.cmd(['push', '-q', ref]));
  } else {
    // The classic builder caches only from images it has, stage by stage: the builder stage is
    // pushed too (--target), as CI setups for multi-stage builds with the classic builder do.
    const [builderRef, finalRef] = caches as [string, string];
    const classic = { DOCKER_BUILDKIT: '0' };
    await env.untimed(tool.id, tool.cmd(['build', '--network', 'none', '-q', '--target', 'builder', '-t', builderRef, dir], classic));
    await env.untimed(tool.id, tool.cmd(['build', '--network', 'none', '-q', '-t', finalRef, dir], classic));
    for (const ref of caches) await env.untimed(tool.id, tool.cmd(['push', '-q', ref]));
  }
}

async function w9Spec(variant: W9Variant, tool: Tool, env: WorkloadEnv, run: number): Promise<RunSpec> {
  const unsupported = w9Unsupported(tool);
  if (unsupported !== undefined) return { command: { unsupported } };
  const host = await w9Registry(env);
  const dir = inputs(env, `w9-${variant}-${tool.id}`);
  if (variant === 'change') await writeFile(join(dir, W9_CHANGED), `changed in run ${run} of ${env.seed}\n`);
  if (tool.id === 'tsbuild') {
    // An empty runner: a new, empty store root (made untimed), gone after the run.
    const root = env.session.path(`w9-${variant}-run-${run}`);
    await mkdir(root);
    const cacheFrom = `type=registry,ref=${host}/cache:w9-${variant}`;
    return {
      command: env.tsbuild(root, 'build', ['-q', '--cache-from', cacheFrom, '-t', 'w9app', dir]),
      after: () => rm(root, { recursive: true, force: true }),
    };
  }
  if (!(tool instanceof DockerTool)) throw new Error(`W9 has no run for ${tool.id}`);
  await env.untimed(tool.id, emptyDocker(tool));
  const after = (): Promise<void> => env.untimed(tool.id, tool.cmd(['load', '-q', '-i', env.baseArchive]));
  const { out, caches } = w9DockerImages(host, tool, variant);
  if (tool.id === 'buildkit') {
    const args = ['build', '--network', 'host', '--cache-from', caches[0]!, '-q', '-t', out, dir];
    return { command: tool.cmd(args, { DOCKER_BUILDKIT: '1' }), after };
  }
  // The classic builder uses only --cache-from images it has: pulling them is part of the run.
  const q = (s: string): string => `'${s}'`;
  const script = [
    ...caches.map((ref) => `"${DOCKER}" pull -q ${q(ref)} >/dev/null`),
    `DOCKER_BUILDKIT=0 "${DOCKER}" build --network none ${caches.map((ref) => `--cache-from ${q(ref)}`).join(' ')} -q -t ${q(out)} ${q(dir)}`,
  ].join(' && ');
  return { command: { ...tool.cmd([]), argv: ['/bin/sh', '-c', script] }, after };
}

function w9(variant: W9Variant, title: string): Workload {
  return {
    id: `W9-${variant}`,
    title,
    kind: 'light',
    prepare: async (env) => void (await w9Registry(env)),
    setup: (tool, env) => w9Setup(variant, tool, env),
    spec: (tool, env, run) => w9Spec(variant, tool, env, run),
  };
}

export const WORKLOADS: readonly Workload[] = [
  {
    id: 'CLI',
    title: 'CLI start: --version',
    kind: 'cli',
    spec: (tool) => ({ command: tool.cliStart() }),
    // Not a ratio target: what no Node.js program can start below, shown beside the Go peers.
    floor: {
      what: "Node.js's own start, `node -e 0` with the node that runs tsbuild (no Node.js program starts faster)",
      spec: (env) => ({ command: { argv: [env.node(), '-e', '0'] } }),
    },
  },
  {
    id: 'W1',
    title: 'small: RUN echo, COPY of a small file, ENV, CMD; --no-cache',
    kind: 'light',
    prepare: (env) =>
      memo('w1', async () => {
        const dir = inputs(env, 'w1');
        await context(dir, 'FROM busybox\nRUN echo hello > /hello.txt\nCOPY small.txt /small.txt\nENV APP=bench\nCMD ["sh"]\n');
        await writeFile(join(dir, 'small.txt'), `small file for ${env.seed}\n`);
      }),
    spec: (tool, env) => ({ command: tool.build(inputs(env, 'w1'), tagFor('bench-w1', tool), { noCache: true }) }),
    removes: (tool) => [tagFor('bench-w1', tool)],
  },
  {
    id: 'W2',
    title: 'many files: COPY of a 20,000-file, ~80 MB node_modules-like tree + a small RUN; --no-cache',
    kind: 'heavy',
    prepare: async (env) => void (await w2Context(env)),
    spec: (tool, env) => ({ command: tool.build(inputs(env, 'w2'), tagFor('bench-w2', tool), { noCache: true }) }),
    removes: (tool) => [tagFor('bench-w2', tool)],
    floor: {
      what: '`cp -a` of the tree, then sha256 of a tar of it',
      spec(env) {
        const copy = env.session.path('floor-w2-copy');
        return {
          command: floorCmd(
            env,
            `cp -a '${inputs(env, 'w2', 'node_modules')}' '${copy}' && tar -C '${inputs(env, 'w2')}' -cf - node_modules | sha256sum`,
          ),
          after: () => rm(copy, { recursive: true, force: true }),
        };
      },
    },
  },
  {
    id: 'W2c',
    title: 'cached rebuild of W2, nothing changed',
    kind: 'light',
    prepare: async (env) => void (await w2Context(env)),
    setup: async (tool, env) => env.untimed(tool.id, tool.build(await w2Context(env), tagFor('bench-w2c', tool), { noCache: false })),
    spec: (tool, env) => ({ command: tool.build(inputs(env, 'w2'), tagFor('bench-w2c', tool), { noCache: false }) }),
    removes: (tool) => [tagFor('bench-w2c', tool)],
  },
  {
    id: 'W3',
    title: 'big output: a RUN writing 256 MB from /dev/urandom; --no-cache',
    kind: 'heavy',
    prepare: (env) => context(inputs(env, 'w3'), 'FROM busybox\nRUN dd if=/dev/urandom of=/random.bin bs=1048576 count=256\n'),
    spec: (tool, env) => ({ command: tool.build(inputs(env, 'w3'), tagFor('bench-w3', tool), { noCache: true }) }),
    removes: (tool) => [tagFor('bench-w3', tool)],
    floor: {
      what: 'the same `dd`, then sha256 of the file',
      spec(env) {
        const file = env.session.path('floor-w3.bin');
        return {
          command: floorCmd(env, `dd if=/dev/urandom of='${file}' bs=1048576 count=256 2>/dev/null && sha256sum '${file}'`),
          after: () => rm(file, { force: true }),
        };
      },
    },
  },
  w5(1_000, '1k'),
  w5(100_000, '100k'),
  deep(150, 'W6', 'deep: 150 RUN steps; --no-cache'),
  // An extra case: Docker's overlay2 and buildah's overlay refuse images deeper than about 125
  // layers ("max depth exceeded"), so W6 has no peer time. 100 steps gives one to compare with.
  deep(100, 'W6-100', "deep, within the peers' layer limit: 100 RUN steps; --no-cache"),
  {
    id: 'W7-save',
    title: 'save of a ~300 MB image to an archive file',
    kind: 'heavy',
    prepare: async (env) => void (await w7Context(env)),
    setup: w7Setup,
    spec(tool, env) {
      const file = env.session.path(`w7-${tool.id}.tar`);
      return { command: tool.save(tagFor('bench-w7', tool), file), after: () => rm(file, { force: true }) };
    },
  },
  w7Push('gzip', false),
  w7Push('zstd', true),
  {
    id: 'W8',
    title: 'cache-mount rebuild: a changed lockfile re-runs a RUN that reads ~200 MB from its cache mount, then a COPY',
    kind: 'light',
    async setup(tool, env) {
      if (w8Unsupported(tool) !== undefined) return;
      // The first build fills the tool's cache mount; every later one only reads it.
      await env.untimed(tool.id, tool.build(await w8Context(env, tool, 'setup'), tagFor('bench-w8', tool), { noCache: false }));
    },
    async spec(tool, env, run) {
      const unsupported = w8Unsupported(tool);
      if (unsupported !== undefined) return { command: { unsupported } };
      const dir = await w8Context(env, tool, `run ${run}`);
      return { command: tool.build(dir, tagFor('bench-w8', tool), { noCache: false }) };
    },
    removes: (tool) => (w8Unsupported(tool) === undefined ? [tagFor('bench-w8', tool)] : []),
  },
  w9('hit', 'empty runner, registry cache, nothing changed: a two-stage build of 300 source files'),
  w9('change', 'empty runner, registry cache, one source file changed: the same build from the COPY on'),
  W10,
];

/** `W5` selects W5-1k and W5-100k, `W7` the three W7 workloads; ids are case-insensitive. */
export function selectWorkloads(only: string | undefined): Workload[] {
  if (!only) return [...WORKLOADS];
  const wanted = only
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const picked = WORKLOADS.filter((w) => wanted.some((x) => w.id.toLowerCase() === x || w.id.toLowerCase().startsWith(`${x}-`)));
  const unknown = wanted.filter((x) => !WORKLOADS.some((w) => w.id.toLowerCase() === x || w.id.toLowerCase().startsWith(`${x}-`)));
  if (unknown.length) throw new Error(`unknown workload(s): ${unknown.join(', ')} (known: ${WORKLOADS.map((w) => w.id).join(', ')})`);
  return picked;
}
