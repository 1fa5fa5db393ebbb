// The rootless columns (`--peers rootless`): tsbuild and `buildah bud` run as an ordinary user
// that the run creates, with a subordinate ID range in /etc/subuid and /etc/subgid as
// docs/rootless.md sets one up, and removes at the end (also on failure or Ctrl-C: the undo
// step is registered before anything runs as the user). The user builds copies of the inputs
// that it owns, in its home inside the scratch directory, into its default stores
// (~/.local/share/tsbuild, ~/.local/share/containers); both start from the run's busybox archive.
// Commands go through `runuser -u USER -- env -i …`, as test/rootless/users.ts runs the CLI.
import { spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { capture, run, type Command } from './measure.js';
import { terminate } from './session.js';
import type { Session } from './session.js';
import { cliEntry, entryNodeFlags, type Step, type Tool, type ToolContext } from './tools.js';

/** The workloads the rootless columns measure (issue 19: small, many files, big output). */
export const ROOTLESS_WORKLOADS: readonly string[] = ['W1', 'W2', 'W3'];

function must(argv: readonly string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** PIDs of processes whose real uid is `uid` (what the user left running), from /proc. */
async function pidsOf(uid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readFile(join('/proc', name, 'status'), 'utf8').catch(() => '');
    const m = /^Uid:\s+(\d+)/m.exec(status);
    if (m && Number(m[1]) === uid) pids.push(Number(name));
  }
  return pids;
}

/** The run's ordinary user: created on first use by whichever rootless column starts first. */
export class RootlessUser {
  private created: Promise<void> | undefined;
  readonly name: string;
  readonly home: string;
  private uid = -1;
  /** Top-level entries of the inputs directory already copied into the home. */
  private readonly copied = new Set<string>();

  constructor(private readonly session: Session) {
    this.name = `tsbbench${process.pid % 100000}`;
    this.home = session.path('rootless-home');
  }

  /** Where `path` (under the run's inputs) is in the user's copy. */
  mapInput(path: string): string {
    const rel = relative(this.session.path('inputs'), path);
    return rel.startsWith('..') ? path : join(this.home, 'inputs', rel);
  }

  ensure(): Promise<void> {
    this.created ??= this.create();
    return this.created;
  }

  private async create(): Promise<void> {
    for (const tool of ['newuidmap', 'newgidmap', 'runuser', 'useradd']) {
      if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is missing (apt-get install uidmap passwd)`);
    }
    // The user reaches its home, the tsbuild snapshot and the archive through the scratch directory.
    await chmod(this.session.dir, 0o711);
    this.session.defer(`rootless user ${this.name}`, () => this.remove());
    must(['useradd', '--create-home', '--home-dir', this.home, '--shell', '/bin/sh', this.name]);
    this.uid = Number(must(['id', '-u', this.name]).trim());
    const subuid = await readFile('/etc/subuid', 'utf8').catch(() => '');
    if (!subuid.split('\n').some((l) => l.startsWith(`${this.name}:`))) {
      // A useradd that allocates no ranges by itself: one far above the usual ones.
      const start = 300_000_000 + (process.pid % 1000) * 65536;
      const range = `${start}-${start + 65535}`;
      must(['usermod', '--add-subuids', range, '--add-subgids', range, this.name]);
    }
    for (const dir of ['tmp', 'run', 'inputs']) await this.mkdirOwned(join(this.home, dir), 0o700);
  }

  private async mkdirOwned(dir: string, mode: number): Promise<void> {
    await mkdir(dir, { recursive: true });
    await chmod(dir, mode);
    must(['chown', `${this.name}:`, dir]);
  }

  /** Copies `file` into the home, owned by the user; returns the copy's path. */
  async adoptFile(file: string, name: string): Promise<string> {
    const dest = join(this.home, name);
    await copyFile(file, dest);
    must(['chown', `${this.name}:`, dest]);
    return dest;
  }

  /** Copies the inputs made since the last call into the home, owned by the user (untimed). */
  async adoptInputs(log: string): Promise<void> {
    const inputs = this.session.path('inputs');
    const names = await readdir(inputs).catch(() => [] as string[]);
    for (const name of names) {
      if (this.copied.has(name)) continue;
      const dest = join(this.home, 'inputs', name);
      await run({ argv: ['cp', '-a', join(inputs, name), dest] }, { logFile: log });
      await run({ argv: ['chown', '-R', `${this.name}:`, dest] }, { logFile: log });
      this.copied.add(name);
    }
  }

  /** `argv` as the user, with a clean environment: HOME, PATH, a TMPDIR and XDG_RUNTIME_DIR of its own. */
  argv(argv: readonly string[], env: Record<string, string> = {}): string[] {
    return [
      'runuser',
      '-u',
      this.name,
      '--',
      'env',
      '-i',
      `HOME=${this.home}`,
      `PATH=${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
      `TMPDIR=${join(this.home, 'tmp')}`,
      `XDG_RUNTIME_DIR=${join(this.home, 'run')}`,
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      ...argv,
    ];
  }

  /**
   * Stops what the user left running (by PID), deletes the user and its /etc/subuid and
   * /etc/subgid lines. The home goes with the scratch directory.
   */
  private async remove(): Promise<void> {
    if (this.uid >= 0) {
      for (let round = 0; round < 3; round++) {
        const pids = await pidsOf(this.uid);
        if (pids.length === 0) break;
        for (const pid of pids) await terminate(pid, 5000);
      }
    }
    const del = spawnSync('userdel', [this.name], { encoding: 'utf8' });
    const problems: string[] = [];
    // 6: no such user (useradd failed before making it).
    if (del.status !== 0 && del.status !== 6) problems.push(`userdel ${this.name}: ${del.stderr.trim()}`);
    for (const file of ['/etc/subuid', '/etc/subgid']) {
      const text = await readFile(file, 'utf8').catch(() => '');
      const lines = text.split('\n');
      const kept = lines.filter((l) => !l.startsWith(`${this.name}:`));
      if (kept.length !== lines.length) await writeFile(file, kept.join('\n'));
    }
    if (problems.length) throw new Error(problems.join('; '));
  }

  async exists(path: string): Promise<boolean> {
    return stat(path).then(
      () => true,
      () => false,
    );
  }
}

/** tsbuild as the user: its default store, ~/.local/share/tsbuild. */
export class RootlessTsbuildTool implements Tool {
  readonly id = 'tsbuild-rootless' as const;
  readonly label = 'tsbuild rootless';
  readonly pollMemory = false;
  readonly workloads = ROOTLESS_WORKLOADS;
  version?: string;
  failure?: string;
  private cgroup: string | undefined;
  private readonly entry: string;
  private readonly entryFlags: string[];

  constructor(
    private readonly ctx: ToolContext,
    private readonly user: RootlessUser,
    app: string,
  ) {
    this.entry = cliEntry(app);
    this.entryFlags = entryNodeFlags(this.entry);
  }

  private cmd(args: readonly string[]): Command {
    return {
      argv: this.user.argv([process.execPath, ...this.entryFlags, this.entry, ...args]),
      cwd: this.user.home,
      ...(this.cgroup ? { cgroup: this.cgroup } : {}),
    };
  }

  async start(): Promise<void> {
    await this.user.ensure();
    this.cgroup = await this.ctx.session.cgroup('tsbuild-rootless');
    const log = this.ctx.log('tsbuild-rootless');
    const archive = await this.user.adoptFile(this.ctx.baseArchive, 'busybox.tar');
    await run(this.cmd(['load', '-q', '-i', archive]), { logFile: log });
    const version = (await capture(this.cmd(['--version']).argv)).trim();
    const info = await capture(this.cmd(['info']).argv);
    const driver = /storage driver:?\s*(\S+)/i.exec(info)?.[1];
    this.version = `${version}, rootless as ${this.user.name}${driver ? `, ${driver}` : ''}`;
  }
  adoptInputs(): Promise<void> {
    return this.user.adoptInputs(this.ctx.log('tsbuild-rootless'));
  }
  build(context: string, tag: string, opts: { noCache: boolean }): Command {
    return this.cmd(['build', ...(opts.noCache ? ['--no-cache'] : []), '-q', '-t', tag, this.user.mapInput(context)]);
  }
  tag(src: string, dst: string): Command {
    return this.cmd(['tag', src, dst]);
  }
  rmi(refs: readonly string[]): Command {
    return this.cmd(['rmi', ...refs]);
  }
  pruneAll(): Command[] {
    return [this.cmd(['prune', '--force'])];
  }
  save(): Step {
    return { unsupported: `rootless columns: ${ROOTLESS_WORKLOADS.join(', ')} only` };
  }
  push(): Step {
    return { unsupported: `rootless columns: ${ROOTLESS_WORKLOADS.join(', ')} only` };
  }
  cliStart(): Step {
    return { unsupported: 'the same CLI start as rootful tsbuild' };
  }
}

/** `buildah bud --isolation chroot` as the user: its default store, ~/.local/share/containers, with overlay. */
export class RootlessBuildahTool implements Tool {
  readonly id = 'buildah-rootless' as const;
  readonly label = 'buildah rootless';
  readonly pollMemory = false;
  readonly workloads = ROOTLESS_WORKLOADS;
  version?: string;
  failure?: string;
  private cgroup: string | undefined;
  private env: Record<string, string> = {};

  constructor(
    private readonly ctx: ToolContext,
    private readonly user: RootlessUser,
  ) {}

  private cmd(args: readonly string[]): Command {
    return {
      // overlay, as the rootful column: without a storage.conf rootless buildah 1.28 picks vfs,
      // which copies the whole tree for every layer. The kernel's overlayfs mounts it in the
      // user's namespace (Linux 5.13 and later).
      argv: this.user.argv(['buildah', '--storage-driver', 'overlay', ...args], this.env),
      cwd: this.user.home,
      ...(this.cgroup ? { cgroup: this.cgroup } : {}),
    };
  }

  async start(): Promise<void> {
    await this.user.ensure();
    this.cgroup = await this.ctx.session.cgroup('buildah-rootless');
    const log = this.ctx.log('buildah-rootless');
    // No registry to search for short names: `FROM busybox` can only be the pulled archive.
    const conf = join(this.user.home, 'registries.conf');
    await writeFile(conf, 'unqualified-search-registries = []\nshort-name-mode = "permissive"\n');
    this.env = { CONTAINERS_REGISTRIES_CONF: conf };
    // Its containers are released (as the user, in its namespace) before the user goes.
    this.ctx.session.defer('rootless buildah containers', async () => {
      await run(this.cmd(['rm', '--all']), { logFile: log }).catch(() => undefined);
    });
    const archive = (await this.user.exists(join(this.user.home, 'busybox.tar')))
      ? join(this.user.home, 'busybox.tar')
      : await this.user.adoptFile(this.ctx.baseArchive, 'busybox.tar');
    await run(this.cmd(['pull', '-q', `docker-archive:${archive}`]), { logFile: log });
    const version = (await capture(this.cmd(['--version']).argv)).trim();
    const driver = (await capture(this.cmd(['info', '--format', '{{.store.GraphDriverName}}']).argv).catch(() => '')).trim();
    this.version = `${version}, rootless as ${this.user.name}${driver ? `, ${driver}` : ''}`;
  }
  adoptInputs(): Promise<void> {
    return this.user.adoptInputs(this.ctx.log('buildah-rootless'));
  }
  build(context: string, tag: string, opts: { noCache: boolean }): Command {
    // As the rootful buildah column: --layers, chroot isolation.
    return this.cmd([
      'bud',
      '--isolation',
      'chroot',
      '--layers',
      ...(opts.noCache ? ['--no-cache'] : []),
      '-q',
      '-t',
      tag,
      this.user.mapInput(context),
    ]);
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
  save(): Step {
    return { unsupported: `rootless columns: ${ROOTLESS_WORKLOADS.join(', ')} only` };
  }
  push(): Step {
    return { unsupported: `rootless columns: ${ROOTLESS_WORKLOADS.join(', ')} only` };
  }
  cliStart(): Step {
    return { unsupported: 'the same CLI start as rootful buildah' };
  }
}
