// The conformance corpus: every case in testdata/corpus is built by tsbuild and by Docker
// Engine (a private daemon) from the same context and the same busybox base, both images are
// saved, and what a user sees is compared: the flattened filesystem (type, mode, owner, size,
// content, link target) and the run config.
//
// Docker builds with its classic builder (`DOCKER_BUILDKIT=0`), or with BuildKit where case.json
// says `"builder": "buildkit"`: for what the classic builder lacks (RUN --mount and the secrets
// and SSH agents it reads). Both with `--network none`: the daemon has no bridge, and BuildKit's
// RUN steps on the default network fail ("network bridge not found"); none and host both work.
// Builds are offline: `FROM busybox` resolves to the image loaded into the daemon, and no
// `# syntax=` directive can be used, so the Dockerfile frontend is the one compiled into the
// daemon. For Docker 20.10.24 (Debian's docker.io), that
// is BuildKit 0.8's, which, tried against this daemon, accepts:
//   bind   target|dst|destination, source|src, from (a stage or an image), ro|readonly,
//          rw|readwrite (writes are thrown away); the default type, and the context the
//          default source. No mode, uid, gid or required.
//   cache  target, id (default: the target), sharing=shared|locked|private, from and source (a
//          directory the cache starts as), mode, uid, gid, ro. A cache is named by its id and
//          by the directory it starts from, so the same id with and without mode/uid/gid, or
//          from=, is two caches.
//   tmpfs  target, ro. No size (`unexpected key 'size'`), no mode.
//   secret id (default: the target's base name; source is another name for it), target
//          (default /run/secrets/ID), mode (default 0400), uid, gid, required (default false:
//          a missing secret mounts nothing). No env (`unexpected key 'env'`), so a secret can
//          only be a file; `docker build --secret id=ID,env=VAR` (the source on the client
//          side) works.
//   ssh    id (default: default), target (default /run/buildkit/ssh_agent.N, and
//          $SSH_AUTH_SOCK is the first ssh mount's), mode (default 0600), uid, gid, required.
//          `docker build --ssh ID=KEYFILE` serves a private key file through an agent of the
//          client's, so no agent needs to run.
//   An unknown type is refused (`unsupported mount type "volume"`). Option values are taken
//   literally: `target=$T` mounts at "$T" (newer frontends expand ARG and ENV there).
// BuildKit 0.8 also keeps the directories it made to mount on (a target the image lacks, and
// those of its parents it had to create, e.g. /run/secrets); BuildKit 0.11 removes them when
// they are still empty (moby/buildkit#3307, #3314), and tsbuild follows it: a case lists those
// paths in mountStubs (below).
//
// A case is a directory: its Dockerfile, the files it needs, and optionally case.json
// (setup: a shell script run in a copy of the directory, for modes, owners and links git does
// not keep; buildArgs; target; fails: both builders must refuse it; serve: the context is
// served over HTTP for ADD of URLs, at --build-arg SERVED; docker: another Dockerfile
// for Docker when the classic builder lacks a flag, spelled with what it has, and dockerReason
// saying why; builder; secrets; ssh; mountStubs, see CaseSpec). Differences that are not Docker's
// own (classic vs BuildKit, see legitimateFs and legitimateConfig) fail the case unless
// testdata/corpus/allow.json lists them, and every entry there must appear in
// docs/compatibility.md with its reason.
//
// CORPUS_CASES=a,b runs only those cases (for working on them), CORPUS_DUMP=DIR writes both
// flattened images of each case there; the full run checks that every allow-list entry is still
// needed.
import { readFileSync } from 'node:fs';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI, ok, REPO, tempRoot, tsbuild, type CliResult } from '../helpers/tsbuild.js';
import { DOCKER, requireTool, startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { pipeline, scratch } from '../interop/util.js';
import { ALL_CASES, CORPUS, spec } from './cases.js';
import { CONFIG_FIELDS, readSavedImage, type FsEntry, type SavedImage } from './flatten.js';

const ALLOW_FILE = join(CORPUS, 'allow.json');
const COMPAT_DOC = join(REPO, 'docs/compatibility.md');
const SSH_KEYGEN = '/usr/bin/ssh-keygen';
/** Builds at a time, per builder: the machine has two cores and one Docker daemon. */
const POOL = 3;

interface AllowEntry {
  readonly case: string;
  /** `fs:/path` or `config:Field`, as the difference lists name them. */
  readonly key: string;
  readonly reason: string;
}

/** Both images, or what each builder said when the case is one both must refuse. */
type Built = { ours: SavedImage; docker: SavedImage } | { failed: { ours: string; docker: string } };

interface Difference {
  readonly key: string;
  readonly text: string;
}

const ONLY = process.env.CORPUS_CASES?.split(',').filter(Boolean);
const CASES = ONLY ? ALL_CASES.filter((c) => ONLY.includes(c)) : ALL_CASES;
const ALLOW = JSON.parse(readFileSync(ALLOW_FILE, 'utf8')) as AllowEntry[];

function describeEntry(e: FsEntry | undefined): string {
  if (!e) return 'absent';
  const parts = [e.type, `0${e.mode.toString(8)}`, `${e.uid}:${e.gid}`];
  if (e.size !== undefined) parts.push(`${e.size}B`, e.sha256!.slice(0, 12));
  if (e.target !== undefined) parts.push(`-> ${e.target}`);
  if (e.hardlinkGroup !== undefined) parts.push(`linked with ${e.hardlinkGroup}`);
  return parts.join(' ');
}

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Where Docker's builders differ from current BuildKit (the classic builder, and Docker 20.10's
 * BuildKit 0.8 in what it leaves behind), tsbuild may match either. This is the one place that
 * knows those differences; each rule accepts tsbuild's value only where it is BuildKit's.
 */
function legitimateFs(
  caseName: string,
  path: string,
  ours: FsEntry | undefined,
  docker: SavedImage,
  oursConfig: SavedImage['config'],
): boolean {
  // A directory BuildKit 0.8 made to mount on and left (see the file's header): accepted where
  // the case lists it and Docker's image has nothing below it but other such directories.
  const stubs = spec(caseName).mountStubs ?? [];
  if (!ours && stubs.includes(path) && docker.fs.get(path)?.type === 'dir') {
    const below = [...docker.fs.keys()].filter((p) => p.startsWith(`${path}/`));
    if (below.every((p) => stubs.includes(p) && docker.fs.get(p)?.type === 'dir')) return true;
  }
  return legitimateBetweenBuilders(caseName, path, ours, docker.fs.get(path), oursConfig);
}

/** Where the classic builder and BuildKit differ. */
function legitimateBetweenBuilders(
  caseName: string,
  path: string,
  ours: FsEntry | undefined,
  docker: FsEntry | undefined,
  oursConfig: SavedImage['config'],
): boolean {
  // What a RUN writes below a VOLUME declared earlier: the classic builder runs the step with a
  // volume mounted there and discards it; BuildKit keeps it in the layer, as tsbuild does.
  const volumes = Object.keys((oursConfig.Volumes as Record<string, unknown> | undefined) ?? {});
  if (ours && !docker && volumes.some((v) => path.startsWith(`${v.replace(/\/$/, '')}/`))) return true;
  if (!ours || !docker || ours.type !== docker.type) return false;
  const same = (a: FsEntry, b: FsEntry): boolean => describeEntry(a) === describeEntry(b);
  // Files copied from the build context: the classic builder loses their setuid and setgid bits
  // (it chowns after the chmod, and chown clears them: moby/moby#36239); BuildKit keeps the
  // source's mode, as tsbuild does.
  if (ours.type === 'file' && (ours.mode & ~0o6000) === docker.mode && same({ ...ours, mode: docker.mode }, docker)) return true;
  // WORKDIR under a USER: the classic builder creates the directory (and its parents) owned by
  // root, BuildKit by the user, as tsbuild does.
  const workdir = typeof oursConfig.WorkingDir === 'string' ? oursConfig.WorkingDir : '';
  const onWorkdir = workdir === path || workdir.startsWith(`${path}/`);
  if (ours.type === 'dir' && onWorkdir && docker.uid === 0 && docker.gid === 0 && same({ ...ours, uid: 0, gid: 0 }, docker)) return true;
  // COPY --chown of a directory to a destination whose parents do not exist: the classic
  // builder creates those parents owned by root (a file's parents get the --chown owner);
  // BuildKit gives them all the --chown owner (fsutil's MkdirAll with the chowner), as tsbuild
  // does. Only copy-chown-parents' /made/for holds such a COPY.
  if (
    caseName === 'copy-chown-parents' &&
    (path === '/made' || path === '/made/for') &&
    docker.uid === 0 &&
    docker.gid === 0 &&
    same({ ...ours, uid: 0, gid: 0 }, docker)
  )
    return true;
  // ADD --chown of a local tar archive: the classic builder keeps the archive's owners (and
  // makes the destination root's); BuildKit gives the destination and everything unpacked the
  // --chown owner (solver/llbsolver/file/unpack.go), as tsbuild does. Only add-tar-chown's
  // /owned holds such an ADD.
  if (
    caseName === 'add-tar-chown' &&
    (path === '/owned' || path.startsWith('/owned/')) &&
    same({ ...ours, uid: docker.uid, gid: docker.gid }, docker)
  )
    return true;
  return false;
}

function legitimateConfig(field: string, ours: unknown, docker: unknown): boolean {
  // An image config without PATH: BuildKit always writes the default PATH into Env; the classic
  // builder only when a step after FROM commits (a lone FROM just tags the base image).
  if (field === 'Env' && Array.isArray(ours)) {
    const rest = ours.filter((kv) => kv !== DEFAULT_PATH);
    const dockerEnv = Array.isArray(docker) ? (docker as string[]) : [];
    if (!dockerEnv.some((kv) => kv.startsWith('PATH=')) && JSON.stringify(rest) === JSON.stringify(dockerEnv)) return true;
  }
  return false;
}

/** null, absent, "" and empty maps say the same thing in a config. */
function normaliseConfigValue(v: unknown): unknown {
  if (v === null || v === undefined || v === '') return undefined;
  if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0) return undefined;
  return v;
}

function compareImages(caseName: string, ours: SavedImage, docker: SavedImage): Difference[] {
  const diffs: Difference[] = [];
  const paths = [...new Set([...ours.fs.keys(), ...docker.fs.keys()])].sort();
  for (const p of paths) {
    const a = ours.fs.get(p);
    const b = docker.fs.get(p);
    const da = describeEntry(a);
    const db = describeEntry(b);
    if (da === db || legitimateFs(caseName, p, a, docker, ours.config)) continue;
    diffs.push({ key: `fs:${p}`, text: `${p}: tsbuild ${da}, docker ${db}` });
  }
  for (const f of CONFIG_FIELDS) {
    const a = JSON.stringify(normaliseConfigValue(ours.config[f]));
    const b = JSON.stringify(normaliseConfigValue(docker.config[f]));
    if (a !== b && !legitimateConfig(f, ours.config[f], docker.config[f]))
      diffs.push({ key: `config:${f}`, text: `config ${f}: tsbuild ${a}, docker ${b}` });
  }
  return diffs;
}

/** Runs `fn` over `items` with at most `n` at a time; the promises keep the input order. */
function pool<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R>[] {
  let running = 0;
  const waiting: (() => void)[] = [];
  return items.map(async (item) => {
    if (running >= n) await new Promise<void>((r) => waiting.push(r));
    running++;
    try {
      return await fn(item);
    } finally {
      running--;
      waiting.shift()?.();
    }
  });
}

describe('conformance corpus: tsbuild and Docker build the same images', () => {
  let dockerd: Dockerd;
  const tmp = scratch();
  let baseArchive: string;
  const results = new Map<string, Promise<Built>>();
  const usedAllowances = new Set<AllowEntry>();
  /** Case name → its context directory, for the cases whose files are served over HTTP. */
  const served = new Map<string, string>();
  let server: Server | undefined;
  let serverBase = '';

  /** GET /<case>/<file>: the file from that case's context, with a fixed Last-Modified. */
  async function startFileServer(): Promise<void> {
    server = createServer((req, res) => {
      const [, name, ...rest] = new URL(req.url ?? '/', 'http://x').pathname.split('/');
      const dir = served.get(name ?? '');
      const file = rest.join('/');
      if (!dir || file === '' || file.split('/').includes('..')) {
        res.writeHead(404).end();
        return;
      }
      readFile(join(dir, file)).then(
        (body) => res.writeHead(200, { 'content-length': String(body.length), 'last-modified': 'Tue, 01 Jan 2019 00:00:00 GMT' }).end(body),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    serverBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  let sshKey: Promise<string> | undefined;
  /**
   * One private key (no passphrase) for every `ssh` id of the cases: `--ssh ID=KEYFILE` has the
   * build command serve it through an agent of its own, so no agent process is needed.
   */
  function sshKeyFile(): Promise<string> {
    sshKey ??= (async () => {
      await requireTool(SSH_KEYGEN, 'openssh-client');
      const file = join(await tmp.dir('tsbuild-corpus-ssh-'), 'id_ed25519');
      await execa(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'tsbuild corpus', '-f', file]);
      return file;
    })();
    return sshKey;
  }

  async function buildCase(name: string): Promise<Built> {
    const s = spec(name);
    const ctx = await tmp.dir(`tsbuild-corpus-${name}-`);
    await cp(join(CORPUS, name), ctx, { recursive: true });
    await rm(join(ctx, 'case.json'), { force: true });
    if (s.setup) await pipeline(`cd ${ctx} && set -eu && ${s.setup}`);
    if (s.serve) served.set(name, ctx);
    // Secrets from the environment are set for both build commands, each its own process.
    const env: Record<string, string> = {};
    const secretArgs = Object.entries(s.secrets ?? {}).flatMap(([id, from]) => {
      if (typeof from === 'string') return ['--secret', `id=${id},src=${join(ctx, from)}`];
      env[from.env] = from.value;
      return ['--secret', `id=${id},env=${from.env}`];
    });
    const sshArgs = s.ssh?.length ? await sshKeyFile().then((key) => s.ssh!.flatMap((id) => ['--ssh', `${id}=${key}`])) : [];
    const args = [
      ...Object.entries(s.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
      ...(s.serve ? ['--build-arg', `SERVED=${serverBase}/${name}`] : []),
      ...(s.target ? ['--target', s.target] : []),
      ...secretArgs,
      ...sshArgs,
    ];
    const ref = `corpus/${name}:1`;
    // --no-cache: cases build side by side and each removes its image when saved, which takes
    // its intermediate images along; a cache hit on another case's step could vanish mid-build.
    // (BuildKit keeps its cache mounts all the same: the cases name theirs apart.)
    const dockerBuild = ['build', '--network', 'none', '--no-cache', '-q', '-t', ref];
    const dockerEnv = { ...env, DOCKER_BUILDKIT: s.builder === 'buildkit' ? '1' : '0' };
    if (s.fails) {
      const root = await tempRoot();
      try {
        await ok(root.root, ['load', '-i', baseArchive]);
        const ours = await tsbuild(root.root, ['build', '-q', '-t', ref, ...args, ctx], { env });
        const docker = await dockerd.docker([...dockerBuild, ...args, ctx], { env: dockerEnv });
        const said = (r: CliResult): string => (r.exitCode === 0 ? 'built it' : `failed: ${r.stderr.trim().split('\n').at(-1)}`);
        return { failed: { ours: said(ours), docker: said(docker) } };
      } finally {
        await root.cleanup();
      }
    }

    const ours = (async () => {
      const root = await tempRoot();
      try {
        await ok(root.root, ['load', '-i', baseArchive]);
        await ok(root.root, ['build', '-q', '-t', ref, ...args, ctx], { env });
        const saved = await execa('node', [CLI, 'save', '--root', root.root, ref], { encoding: 'buffer', env: { TSBUILD_ROOT: '' } });
        return readSavedImage(Buffer.from(saved.stdout as Uint8Array));
      } finally {
        await root.cleanup();
      }
    })();
    const docker = (async () => {
      // -f only when it names a file in the context: for one outside, the docker CLI adds it to
      // the context under a random name and appends that name to the .dockerignore it sends.
      const file = s.docker ? ['-f', join(ctx, s.docker)] : [];
      await dockerd.ok([...dockerBuild, ...file, ...args, ctx], { env: dockerEnv });
      const saved = await execa(DOCKER, ['save', ref], { encoding: 'buffer', env: dockerd.env });
      await dockerd.ok(['rmi', ref]);
      return readSavedImage(Buffer.from(saved.stdout as Uint8Array));
    })();
    const [a, b] = await Promise.allSettled([ours, docker]);
    if (a.status === 'fulfilled' && b.status === 'fulfilled') return { ours: a.value, docker: b.value };
    const failed = (r: PromiseSettledResult<SavedImage>, who: string): string =>
      r.status === 'rejected' ? `${who} failed: ${(r.reason as Error).message}` : `${who} built it`;
    throw new Error(`${failed(a, 'tsbuild')}\n${failed(b, 'docker')}`);
  }

  beforeAll(async () => {
    const base = await tempRoot();
    try {
      dockerd = await startDockerd();
      await ok(base.root, ['bootstrap', 'busybox']);
      baseArchive = join(await tmp.dir('tsbuild-corpus-base-'), 'busybox.tar');
      await ok(base.root, ['save', '-o', baseArchive, 'busybox:latest']);
    } finally {
      await base.cleanup();
    }
    await pipeline(`${DOCKER} load -i ${baseArchive}`, dockerd.env);
    await startFileServer();
    const started = pool(CASES, POOL, buildCase);
    started.forEach((p, i) => {
      p.catch(() => undefined); // reported by the case's own test
      results.set(CASES[i]!, p);
    });
  }, 180_000);

  afterAll(async () => {
    // Let running builds finish before the daemon and the directories go away.
    await Promise.allSettled([...results.values()]);
    await dockerd?.stop();
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
    }
    await tmp.cleanup();
  }, 600_000);

  test('the corpus has at least 30 cases', () => {
    expect(ALL_CASES.length).toBeGreaterThanOrEqual(30);
  });

  test.each(CASES)(
    '%s',
    async (name) => {
      const built = await results.get(name)!;
      if ('failed' in built) {
        // Both refuse; the messages are shown, not compared.
        expect(built.failed.ours).toMatch(/^failed: /);
        expect(built.failed.docker).toMatch(/^failed: /);
        return;
      }
      const { ours, docker } = built;
      if (process.env.CORPUS_DUMP) {
        const dump = (img: SavedImage): string =>
          JSON.stringify({ config: img.config, fs: [...img.fs].map(([p, e]) => `${p} ${describeEntry(e)}`) }, null, 1);
        await writeFile(join(process.env.CORPUS_DUMP, `${name}.tsbuild.json`), dump(ours));
        await writeFile(join(process.env.CORPUS_DUMP, `${name}.docker.json`), dump(docker));
      }
      const diffs = compareImages(name, ours, docker).filter((d) => {
        const allowed = ALLOW.find((a) => a.case === name && a.key === d.key);
        if (allowed) usedAllowances.add(allowed);
        return !allowed;
      });
      expect(diffs.map((d) => d.text)).toEqual([]);
      const stubs = spec(name).mountStubs ?? [];
      // The list says what BuildKit 0.8 does: each entry must be in Docker's image...
      expect(stubs.filter((p) => docker.fs.get(p)?.type !== 'dir')).toEqual([]);
      // ...and none in tsbuild's, which removes what it made to mount on, as current BuildKit does.
      expect(stubs.filter((p) => ours.fs.has(p))).toEqual([]);
    },
    480_000,
  );

  test('every allow-list entry is in docs/compatibility.md with its reason, and still needed', async () => {
    const doc = await readFile(COMPAT_DOC, 'utf8');
    for (const a of ALLOW) {
      expect(ALL_CASES).toContain(a.case);
      expect(a.reason.length).toBeGreaterThan(0);
      const line = doc.split('\n').find((l) => l.includes(`\`${a.case}\``) && l.includes(`\`${a.key}\``));
      expect({ entry: a, inDoc: line !== undefined && line.includes(a.reason) }).toEqual({ entry: a, inDoc: true });
    }
    const unused = ALLOW.filter((a) => CASES.includes(a.case) && !usedAllowances.has(a));
    expect(unused).toEqual([]);
  });

  test('every case Docker builds from another Dockerfile says why, and docs/compatibility.md names it', async () => {
    const doc = await readFile(COMPAT_DOC, 'utf8');
    for (const name of ALL_CASES) {
      const s = spec(name);
      if (!s.docker) continue;
      expect({ name, reason: s.dockerReason ?? '' }).toEqual({ name, reason: expect.stringMatching(/\S/) });
      expect({ name, inDoc: doc.includes(`\`${name}\``) && doc.includes(s.dockerReason!) }).toEqual({ name, inDoc: true });
    }
  });
});
