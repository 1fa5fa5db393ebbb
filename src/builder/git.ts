// ADD of a git repository, fetched with Debian's `git` as BuildKit's git source does it
// (source/git/source.go): the ref is resolved to a commit with `git ls-remote` (that commit, with
// the subdir and --keep-git-dir, is all the step's cache key needs, so a cached step fetches
// nothing), then the one commit is fetched shallow into a scratch repository and checked out.
//  - The ref is a branch, a tag (annotated tags are peeled to their commit), a full ref name,
//    or a full commit hash; none means the remote's HEAD. Branches win over tags of the same
//    name, as in BuildKit.
//  - ADD --checksum (or `?checksum=` / `?commit=`) pins the commit: the resolved hash must
//    start with it, else `expected checksum to match …, got …`.
//  - Without --keep-git-dir the tree is checked out into a directory of its own, so no .git is
//    copied; with it, the checkout keeps its .git (HEAD detached at the commit, the ref under
//    its own name, origin set to
//    the remote with any password replaced by xxxxx, no FETCH_HEAD or reflog left). With a subdir only that directory is copied,
//    never a .git.
//  - Submodules are checked out too (`submodule update --init --recursive --depth=1`).
//  - Modes are git's own: 0644, or 0755 for executables, and directories 0755, whatever the
//    umask of tsbuild's process (BuildKit's daemon runs with 022, which gives the same).
//  - `git@host:path` and `ssh://` go through the build's `--ssh` agent (the `default` ID), and
//    host keys are not checked (BuildKit's behaviour when no known_hosts are given).
// A dumb HTTP server cannot serve a shallow fetch: the fetch is then made whole.
import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidInputError, TsbuildError } from '../errors.js';
import { collect, exited } from '../runtime/spawn.js';
import { redactRemote, type GitRef } from './git-ref.js';

export interface GitSourcesOptions {
  /** Makes a private scratch directory, removed by close(). */
  readonly tempDir: () => Promise<string>;
  readonly signal?: AbortSignal;
  /** An agent socket for ssh remotes (the build's `--ssh default`), made on first need; closed by close(). */
  readonly sshAgent?: () => Promise<{ readonly socket: string; close(): Promise<void> } | undefined>;
}

/** A git source, resolved. */
export interface ResolvedGit {
  readonly ref: GitRef;
  /** The commit the ref names (hex). */
  readonly commit: string;
  /** The ref as fetched: a full ref name or the commit. */
  readonly fetchRef: string;
}

/** The git sources of one ADD step: each resolved once, checked out once; close() removes them. */
export class GitSources {
  private readonly resolved = new Map<string, Promise<ResolvedGit>>();
  private readonly checkouts = new Map<string, Promise<string>>();
  private readonly dirs: string[] = [];
  private agent: Promise<{ readonly socket: string; close(): Promise<void> } | undefined> | undefined;

  constructor(private readonly opts: GitSourcesOptions) {}

  /** The commit `ref` names on its remote (ls-remote only), checked against `checksum` when given. */
  resolve(ref: GitRef, checksum?: string): Promise<ResolvedGit> {
    const key = JSON.stringify([ref, checksum]);
    let r = this.resolved.get(key);
    if (!r) this.resolved.set(key, (r = this.lsRemote(ref, checksum)));
    return r;
  }

  /** A host directory holding what the step copies: the checkout, or its subdir. */
  checkout(ref: GitRef, keepGitDir: boolean, checksum?: string): Promise<string> {
    const key = JSON.stringify([ref, keepGitDir, checksum]);
    let c = this.checkouts.get(key);
    if (!c) this.checkouts.set(key, (c = this.fetchAndCheckout(ref, keepGitDir, checksum)));
    return c;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.checkouts.values()]);
    await Promise.allSettled([...this.resolved.values()]);
    await Promise.all(this.dirs.map((d) => rm(d, { recursive: true, force: true })));
    await (await this.agent?.catch(() => undefined))?.close();
  }

  private async lsRemote(ref: GitRef, checksum: string | undefined): Promise<ResolvedGit> {
    const pin = checksum ?? ref.checksum;
    if (pin !== undefined && !/^[0-9a-fA-F]+$/.test(pin)) {
      throw new InvalidInputError(`invalid checksum ${pin} for Git URL, expected hex commit hash`);
    }
    let commit: string;
    let fetchRef: string;
    let tagObject: string | undefined;
    if (/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(ref.ref)) {
      commit = ref.ref;
      fetchRef = ref.ref;
    } else {
      const out = await this.git(ref, ['ls-remote', '--', ref.remote, ...(ref.ref ? [ref.ref, `${ref.ref}^{}`] : ['HEAD'])], undefined);
      // `NAME^{}` is asked for too: ls-remote's patterns match whole tails, and an annotated
      // tag's commit is on that line.
      const refs = new Map<string, string>();
      for (const line of out.split('\n')) {
        const [sha, name] = line.split('\t');
        if (sha && name) refs.set(name, sha);
      }
      const wanted = ref.ref || 'HEAD';
      const name = [wanted, `refs/heads/${wanted}`, `refs/tags/${wanted}`].find((n) => refs.has(n));
      if (!name) throw new InvalidInputError(`git ref ${JSON.stringify(wanted)} not found in ${redactRemote(ref.remote)}`);
      const peeled = refs.get(`${name}^{}`);
      tagObject = peeled !== undefined ? refs.get(name) : undefined;
      commit = peeled ?? refs.get(name)!;
      fetchRef = name;
    }
    if (pin !== undefined && !commit.startsWith(pin.toLowerCase()) && !(tagObject ?? '').startsWith(pin.toLowerCase())) {
      throw new InvalidInputError(`expected checksum to match ${pin}, got ${commit}`);
    }
    return { ref, commit, fetchRef };
  }

  private async fetchAndCheckout(ref: GitRef, keepGitDir: boolean, checksum: string | undefined): Promise<string> {
    const { commit, fetchRef } = await this.resolve(ref, checksum);
    const dir = await this.opts.tempDir();
    this.dirs.push(dir);
    const repo = join(dir, 'repo');
    const keep = keepGitDir && ref.subdir === '';
    await this.git(ref, ['init', '-q', repo], undefined);
    await this.git(ref, ['remote', 'add', 'origin', ref.remote], repo);
    const fetch = ['fetch', '-q', '--no-tags', 'origin', fetchRef];
    try {
      await this.git(ref, [...fetch.slice(0, 2), '--depth=1', ...fetch.slice(2)], repo);
    } catch (err) {
      // The dumb HTTP protocol has no shallow fetch.
      if (!/shallow|dumb/i.test((err as Error).message)) throw err;
      await this.git(ref, fetch, repo);
    }
    const fetched = (await this.git(ref, ['rev-parse', 'FETCH_HEAD^{commit}'], repo)).trim();
    if (fetched !== commit) {
      throw new InvalidInputError(`git ref ${fetchRef} of ${redactRemote(ref.remote)} moved while fetching (${commit} → ${fetched})`);
    }
    let tree: string;
    if (keep) {
      await this.git(ref, ['checkout', '-q', '--detach', commit], repo);
      // The ref keeps its name in the copy, as BuildKit's `fetch origin REF:REF` leaves it.
      if (fetchRef.startsWith('refs/')) await this.git(ref, ['update-ref', fetchRef, 'FETCH_HEAD'], repo);
      await this.git(ref, ['reflog', 'expire', '--all', '--expire=now'], repo);
      // The .git copied into the image must not hold a password of the remote (BuildKit redacts it too).
      if (redactRemote(ref.remote) !== ref.remote) await this.git(ref, ['remote', 'set-url', 'origin', redactRemote(ref.remote)], repo);
      await rm(join(repo, '.git', 'FETCH_HEAD'), { force: true });
      tree = repo;
    } else {
      tree = join(dir, 'tree');
      await this.git(ref, ['--work-tree', tree, 'checkout', '-q', commit, '--', '.'], repo, { mkdir: tree });
    }
    const work = keep ? repo : tree;
    if ((await stat(join(work, '.gitmodules')).catch(() => undefined))?.isFile()) {
      await this.git(ref, ['--work-tree', work, 'submodule', 'update', '-q', '--init', '--recursive', '--depth=1'], repo);
    }
    await normalizeModes(work, keep ? join(work, '.git') : undefined);
    if (ref.subdir === '') return work;
    const sub = join(work, ref.subdir);
    // Every component must be a real directory of the checkout, never a symlink out of it.
    let at = work;
    for (const c of ref.subdir.split('/')) {
      at = join(at, c);
      const st = await lstat(at).catch(() => undefined);
      if (!st?.isDirectory()) throw new InvalidInputError(`invalid subdir ${ref.subdir}: not a directory in ${redactRemote(ref.remote)}`);
    }
    return sub;
  }

  /** Runs git; its output, or an error with its stderr. */
  private async git(ref: GitRef, args: readonly string[], cwd: string | undefined, opts: { mkdir?: string } = {}): Promise<string> {
    if (opts.mkdir) await mkdir(opts.mkdir, { recursive: true });
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_TERMINAL_PROMPT: '0',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      HOME: '/nonexistent',
      // git's own `file://` and `ext::` transports stay off: a Dockerfile names network remotes.
      GIT_ALLOW_PROTOCOL: 'http:https:git:ssh',
    };
    if (ref.scheme === 'ssh') {
      this.agent ??= this.opts.sshAgent?.() ?? Promise.resolve(undefined);
      const socket = (await this.agent)?.socket;
      if (!socket) {
        throw new InvalidInputError(`${redactRemote(ref.remote)} is an ssh remote: give the build an agent with --ssh default`);
      }
      env.SSH_AUTH_SOCK = socket;
      env.GIT_SSH_COMMAND =
        'ssh -F /dev/null -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR';
    }
    const child = spawn('git', args, {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(this.opts.signal ? { signal: this.opts.signal } : {}),
    });
    const done = exited(child);
    const [stdout, stderr] = [collect(child.stdout), collect(child.stderr)];
    const result = await done;
    if (result.code === 'ENOENT') throw new TsbuildError('ADD of a git repository needs git (apt-get install git)');
    if (result.exitCode !== 0) {
      // What git says before its advice (ssh's own reason, then git's `fatal:` line).
      const said = (await stderr)
        .trim()
        .split(/\n\s*\n/)[0]
        ?.split('\n')
        .filter(Boolean)
        .join('; ');
      const why = said || `exit ${result.exitCode ?? result.signal}`;
      throw new InvalidInputError(`git ${args[0] === '--work-tree' ? args[2] : args[0]} of ${redactRemote(ref.remote)} failed: ${why}`);
    }
    return stdout;
  }
}

/** Files 0644 or 0755 (by their owner's execute bit), directories 0755; `skip` (.git) is left as git made it. */
async function normalizeModes(dir: string, skip: string | undefined): Promise<void> {
  await chmod(dir, 0o755);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (p === skip) continue;
    if (e.isDirectory()) await normalizeModes(p, skip);
    else if (e.isFile()) await chmod(p, ((await lstat(p)).mode & 0o100) !== 0 ? 0o755 : 0o644);
  }
}
