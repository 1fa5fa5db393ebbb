// The builders under test, as command lines: tsbuild (a snapshot of its compiled code, so a
// rebuild of dist/ during the run cannot change what is measured), Docker Engine's classic
// builder and BuildKit (one private daemon, chosen per command by DOCKER_BUILDKIT), and buildah
// (its own --root/--runroot in the work directory). Each starts from the same busybox archive.
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { capture, run, type Command } from './measure.js';
import { DOCKER, startDockerd } from './dockerd.js';
import { RootlessBuildahTool, RootlessTsbuildTool, RootlessUser } from './rootless.js';
import { currentNode, type NodeRuntime } from './node-lines.js';
import type { Session } from './session.js';

export type ToolId = 'tsbuild' | 'classic' | 'buildkit' | 'buildah' | 'tsbuild-rootless' | 'buildah-rootless';
export const TOOL_IDS: readonly ToolId[] = ['tsbuild', 'classic', 'buildkit', 'buildah', 'tsbuild-rootless', 'buildah-rootless'];
/** The peers tsbuild's targets are judged against. */
export const PEER_IDS: readonly ToolId[] = ['classic', 'buildkit', 'buildah'];
/** Opt-in columns (`--peers rootless`), as an ordinary user (lib/rootless.ts); no target is judged on them. */
export const ROOTLESS_IDS: readonly ToolId[] = ['tsbuild-rootless', 'buildah-rootless'];

/** A command the tool cannot run, and why (shown in the table instead of a time). */
export interface Unsupported {
  readonly unsupported: string;
}
export type Step = Command | Unsupported;

export function isUnsupported(s: Step): s is Unsupported {
  return (s as Unsupported).unsupported !== undefined;
}

export interface BuildOptions {
  readonly noCache: boolean;
  /** `--platform` (tsbuild and buildah only: W10). */
  readonly platform?: string;
  /** buildah: the tag names a manifest list (`bud --manifest`), as several platforms need. */
  readonly manifest?: boolean;
}

export interface Tool {
  readonly id: ToolId;
  readonly label: string;
  /** Set by start(): the version string, or why the tool could not be started. */
  version?: string;
  failure?: string;
  /** Memory is polled for this tool's commands (tsbuild only: its targets are about itself). */
  readonly pollMemory: boolean;
  start(): Promise<void>;
  build(context: string, tag: string, opts: BuildOptions): Command;
  tag(src: string, dst: string): Command;
  /** Loads a Docker image archive, keeping its tags (the tools that measure W10). */
  load?(file: string): Command;
  /** buildah: a manifest list `name` over local images (W10's two-platform base). */
  manifestList?(name: string, images: readonly string[]): Command[];
  /** Removes tags; dangling images and unused layers go with pruneAll. */
  rmi(refs: readonly string[]): Command;
  pruneAll(): Command[];
  save(tag: string, file: string): Step;
  push(ref: string, compression: 'gzip' | 'zstd'): Step;
  cliStart(): Step;
  /** The workloads this tool measures, when not all (the others show as n/a). */
  readonly workloads?: readonly string[];
  /** Untimed, before each workload's setup: makes the inputs readable where this tool reads them. */
  adoptInputs?(): Promise<void>;
}

export interface ToolContext {
  readonly session: Session;
  /** The busybox base as a Docker archive, made by tsbuild bootstrap. */
  readonly baseArchive: string;
  readonly log: (tool: ToolId) => string;
}

/**
 * Copies the compiled CLI (dist/bin, dist/cli, dist/src), the native helper and package.json from
 * `source` (a built checkout) into `dest`, with node_modules linked: what is measured is fixed
 * for the whole run.
 */
export async function snapshotTsbuild(source: string, dest: string): Promise<void> {
  await mkdir(join(dest, 'dist'), { recursive: true });
  await cp(join(source, 'dist', 'cli'), join(dest, 'dist', 'cli'), { recursive: true });
  await cp(join(source, 'dist', 'src'), join(dest, 'dist', 'src'), { recursive: true });
  if (existsSync(join(source, 'dist', 'bin'))) await cp(join(source, 'dist', 'bin'), join(dest, 'dist', 'bin'), { recursive: true });
  await mkdir(join(dest, 'native', 'out'), { recursive: true });
  await cp(join(source, 'native', 'out', 'tsbuild-helper'), join(dest, 'native', 'out', 'tsbuild-helper'));
  await cp(join(source, 'package.json'), join(dest, 'package.json'));
  await symlink(join(source, 'node_modules'), join(dest, 'node_modules'));
}

/** The CLI's entry: the bundle, or tsc's output in revisions from before the bundle (`--rev`). */
export function cliEntry(app: string): string {
  const bundle = join(app, 'dist', 'bin', 'tsbuild.js');
  return existsSync(bundle) ? bundle : join(app, 'dist', 'cli', 'main.js');
}

/**
 * The node options of the entry's `#!/usr/bin/env -S node OPTIONS --` line: an installed
 * `tsbuild` runs with them, so the bench, which picks the node binary itself, passes them too.
 */
export function entryNodeFlags(entry: string): string[] {
  const first = readFileSync(entry, 'utf8').split('\n', 1)[0]!;
  const m = /^#!\/usr\/bin\/env -S node((?: [^ ]+)*?) --$/.exec(first);
  return m ? m[1]!.split(' ').filter(Boolean) : [];
}

export class TsbuildTool implements Tool {
  readonly id = 'tsbuild' as const;
  readonly label = 'tsbuild';
  readonly pollMemory = true;
  version?: string;
  failure?: string;
  readonly root: string;
  private cgroup: string | undefined;
  private readonly entry: string;
  /** The entry's own node options (entryNodeFlags). */
  private readonly entryFlags: string[];
  /** The node that runs it: the bench's own unless --node names others (useNode). */
  node: NodeRuntime = currentNode();

  constructor(
    private readonly ctx: ToolContext,
    app: string,
    /** Extra node flags, e.g. --cpu-prof. */
    private readonly nodeFlags: readonly string[],
  ) {
    this.root = ctx.session.path('tsbuild-root');
    this.entry = cliEntry(app);
    this.entryFlags = entryNodeFlags(this.entry);
  }

  private cmd(args: readonly string[], env?: Record<string, string>): Command {
    return {
      argv: [this.node.path, ...this.entryFlags, ...this.nodeFlags, this.entry, ...args],
      // Node's compile cache (22.1+) in the scratch directory: filled by the warm-up, as it would
      // be after a user's first build, and never left behind in ~/.cache.
      env: { TSBUILD_ROOT: '', XDG_CACHE_HOME: this.ctx.session.path('xdg-cache'), ...env },
      ...(this.cgroup ? { cgroup: this.cgroup } : {}),
    };
  }

  /** `tsbuild COMMAND --root R ARGS` (--root right after the command, as `run` needs). */
  private store(command: string, args: readonly string[]): Command {
    return this.at(this.root, command, args);
  }

  /** The same with another store root: for workloads that start from an empty store. */
  at(root: string, command: string, args: readonly string[]): Command {
    return this.cmd([command, '--root', root, ...args]);
  }

  async start(): Promise<void> {
    this.cgroup = await this.ctx.session.cgroup('tsbuild');
    this.version = (await capture([this.node.path, ...this.entryFlags, this.entry, '--version'])).trim();
    await run(this.store('bootstrap', ['busybox']), { logFile: this.ctx.log('tsbuild') });
    await run(this.store('save', ['-o', this.ctx.baseArchive, 'busybox:latest']), { logFile: this.ctx.log('tsbuild') });
  }
  build(context: string, tag: string, opts: BuildOptions): Command {
    const platform = opts.platform !== undefined ? ['--platform', opts.platform] : [];
    return this.store('build', [...(opts.noCache ? ['--no-cache'] : []), ...platform, '-q', '-t', tag, context]);
  }
  load(file: string): Command {
    return this.store('load', ['-i', file]);
  }
  tag(src: string, dst: string): Command {
    return this.store('tag', [src, dst]);
  }
  rmi(refs: readonly string[]): Command {
    return this.store('rmi', [...refs]);
  }
  pruneAll(): Command[] {
    return [this.store('prune', ['--force'])];
  }
  save(tag: string, file: string): Step {
    return this.store('save', ['-o', file, tag]);
  }
  push(ref: string, compression: 'gzip' | 'zstd'): Step {
    return this.store('push', ['--compression', compression, '-q', ref]);
  }
  cliStart(): Step {
    return {
      argv: [this.node.path, ...this.entryFlags, this.entry, '--version'],
      env: { XDG_CACHE_HOME: this.ctx.session.path('xdg-cache') },
    };
  }
}

/** One dockerd serves both Docker columns; it is started by whichever starts first. */
class DockerEngine {
  private started: Promise<{ env: Record<string, string> }> | undefined;
  cgroup: string | undefined;
  constructor(private readonly ctx: ToolContext) {}
  start(): Promise<{ env: Record<string, string> }> {
    this.started ??= (async () => {
      this.cgroup = await this.ctx.session.cgroup('docker');
      const d = await startDockerd(this.ctx.session, this.cgroup);
      await run({ argv: [DOCKER, 'load', '-i', this.ctx.baseArchive], env: d.env }, { logFile: this.ctx.log('classic') });
      return { env: d.env };
    })();
    return this.started;
  }
}

export class DockerTool implements Tool {
  readonly pollMemory = false;
  readonly label: string;
  version?: string;
  failure?: string;
  private env: Record<string, string> = {};

  constructor(
    readonly id: 'classic' | 'buildkit',
    private readonly engine: DockerEngine,
  ) {
    this.label = id === 'classic' ? 'Docker classic' : 'Docker BuildKit';
  }

  /** `docker ARGS` against the private daemon, charged to Docker's cgroup. */
  cmd(args: readonly string[], env: Record<string, string> = {}): Command {
    return { argv: [DOCKER, ...args], env: { ...this.env, ...env }, ...(this.engine.cgroup ? { cgroup: this.engine.cgroup } : {}) };
  }

  async start(): Promise<void> {
    this.env = (await this.engine.start()).env;
    const v = (await capture([DOCKER, 'version', '--format', '{{.Server.Version}}'], this.env)).trim();
    this.version = `Docker Engine ${v}${this.id === 'buildkit' ? ' (BuildKit)' : ' (classic builder)'}`;
  }
  build(context: string, tag: string, opts: BuildOptions): Command {
    // The classic builder's RUN containers have no network here (no bridge); BuildKit's use the host's.
    const network = this.id === 'classic' ? 'none' : 'host';
    return this.cmd(['build', ...(opts.noCache ? ['--no-cache'] : []), '--network', network, '-q', '-t', tag, context], {
      DOCKER_BUILDKIT: this.id === 'buildkit' ? '1' : '0',
    });
  }
  tag(src: string, dst: string): Command {
    return this.cmd(['tag', src, dst]);
  }
  rmi(refs: readonly string[]): Command {
    return this.cmd(['rmi', '-f', ...refs]);
  }
  pruneAll(): Command[] {
    // A failed classic build leaves its step's container, which keeps its images: gone first.
    return this.id === 'classic'
      ? [this.cmd(['container', 'prune', '-f']), this.cmd(['image', 'prune', '-f'])]
      : [this.cmd(['builder', 'prune', '-af'])];
  }
  save(tag: string, file: string): Step {
    if (this.id === 'buildkit') return { unsupported: 'same engine as classic' };
    return this.cmd(['save', '-o', file, tag]);
  }
  push(ref: string, compression: 'gzip' | 'zstd'): Step {
    if (this.id === 'buildkit') return { unsupported: 'same engine as classic' };
    if (compression === 'zstd') return { unsupported: 'docker push 20.10 has no zstd' };
    return this.cmd(['push', '-q', ref]);
  }
  cliStart(): Step {
    if (this.id === 'buildkit') return { unsupported: 'same client as classic' };
    return { argv: [DOCKER, '--version'] };
  }
}

export class BuildahTool implements Tool {
  readonly id = 'buildah' as const;
  readonly label = 'buildah';
  readonly pollMemory = false;
  version?: string;
  failure?: string;
  private cgroup: string | undefined;
  private readonly dir: string;
  private env: Record<string, string> = {};

  constructor(private readonly ctx: ToolContext) {
    this.dir = ctx.session.path('buildah');
  }

  private cmd(args: readonly string[]): Command {
    return {
      argv: ['buildah', '--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'run'), '--storage-driver', 'overlay', ...args],
      env: this.env,
      ...(this.cgroup ? { cgroup: this.cgroup } : {}),
    };
  }

  async start(): Promise<void> {
    this.cgroup = await this.ctx.session.cgroup('buildah');
    await mkdir(this.dir, { recursive: true });
    // No registry to search for short names: `FROM busybox` can only be the imported image.
    const conf = join(this.dir, 'registries.conf');
    await writeFile(conf, 'unqualified-search-registries = []\nshort-name-mode = "permissive"\n');
    this.env = { CONTAINERS_REGISTRIES_CONF: conf };
    this.version = (await capture(['buildah', '--version'])).trim();
    // Whatever happens to the run, its mounts are released before the directory goes.
    this.ctx.session.defer('buildah containers', async () => {
      await run(this.cmd(['rm', '--all']), { logFile: this.ctx.log('buildah') }).catch(() => undefined);
    });
    await run(this.cmd(['pull', '-q', `docker-archive:${this.ctx.baseArchive}`]), { logFile: this.ctx.log('buildah') });
  }
  build(context: string, tag: string, opts: BuildOptions): Command {
    // --layers: one image layer per step and a layer cache, as Docker and tsbuild make.
    const platform = opts.platform !== undefined ? ['--platform', opts.platform] : [];
    // A manifest list names the base too (W10): --pull=never takes the local list, which buildah
    // would otherwise look up in a registry.
    const name = opts.manifest ? ['--pull=never', '--manifest', tag] : ['-t', tag];
    return this.cmd([
      'bud',
      '--isolation',
      'chroot',
      '--layers',
      ...(opts.noCache ? ['--no-cache'] : []),
      ...platform,
      '-q',
      ...name,
      context,
    ]);
  }
  load(file: string): Command {
    return this.cmd(['pull', '-q', `docker-archive:${file}`]);
  }
  manifestList(name: string, images: readonly string[]): Command[] {
    return [this.cmd(['manifest', 'create', name]), ...images.map((i) => this.cmd(['manifest', 'add', name, `containers-storage:${i}`]))];
  }
  tag(src: string, dst: string): Command {
    return this.cmd(['tag', src, dst]);
  }
  rmi(refs: readonly string[]): Command {
    return this.cmd(['rmi', '-f', ...refs]);
  }
  pruneAll(): Command[] {
    return [this.cmd(['rmi', '--prune'])];
  }
  save(tag: string, file: string): Step {
    return this.cmd(['push', '-q', tag, `docker-archive:${file}:${tag}`]);
  }
  push(ref: string, compression: 'gzip' | 'zstd'): Step {
    return this.cmd(['push', '-q', '--tls-verify=false', '--compression-format', compression, ref, `docker://${ref}`]);
  }
  cliStart(): Step {
    return { argv: ['buildah', '--version'] };
  }
}

export function makeTools(ctx: ToolContext, tsbuildApp: string, nodeFlags: readonly string[], peers: readonly ToolId[]): Tool[] {
  const engine = new DockerEngine(ctx);
  const all: Tool[] = [new TsbuildTool(ctx, tsbuildApp, nodeFlags)];
  if (peers.includes('classic')) all.push(new DockerTool('classic', engine));
  if (peers.includes('buildkit')) all.push(new DockerTool('buildkit', engine));
  if (peers.includes('buildah')) all.push(new BuildahTool(ctx));
  const user = new RootlessUser(ctx.session);
  if (peers.includes('tsbuild-rootless')) all.push(new RootlessTsbuildTool(ctx, user, tsbuildApp));
  if (peers.includes('buildah-rootless')) all.push(new RootlessBuildahTool(ctx, user));
  return all;
}
