// Build contexts that are not a directory here, as `docker build` takes them: a Git repository
// (`https://host/repo.git#ref:subdir`, `git://…`, `git@host:repo`), an HTTP(S) tarball, and `-`
// (stdin: a tar archive, or a lone Dockerfile with an empty context). Each is made into a
// directory of its own under the system's temporary directory, and the build reads that
// directory as it reads any context; `dispose` removes it.
//
// What lands follows BuildKit's sources: a Git context is the tree of the ref (default: the
// remote's HEAD) with its submodules, without `.git` (llb.Git without KeepGitDir), and `:subdir`
// is the directory the build sees; a tarball is unpacked with Docker's Untar rules (compressed or
// not). The Git work runs the `git` program, as BuildKit's git source does.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { InvalidInputError } from '../errors.js';
import { isTarArchive, untar } from '../layer/untar.js';

export interface FetchedContext {
  /** The directory the build reads as its context. */
  readonly dir: string;
  /** `-` gave a Dockerfile rather than a tar: its text (the context is then empty). */
  readonly dockerfileText?: string;
  /** Removes what was fetched. */
  dispose(): Promise<void>;
}

/**
 * Docker's test for a Git context (the CLI's urlutil.IsGitURL): `git://`, `git@`, `github.com/`,
 * or an http(s) URL whose path ends in `.git` (before a `#fragment`).
 */
export function isGitContext(spec: string): boolean {
  if (/^(git:\/\/|git@|github\.com\/)/.test(spec)) return true;
  return /^https?:\/\//.test(spec) && /\.git(?:#.+)?$/.test(spec);
}

/** A context that must be fetched first: `-`, a Git repository or an HTTP(S) URL. */
export function isRemoteContext(spec: string): boolean {
  return spec === '-' || isGitContext(spec) || /^https?:\/\//.test(spec);
}

export interface FetchContextOptions {
  /** Where `-` is read from (default: process.stdin). */
  readonly stdin?: NodeJS.ReadableStream;
  readonly signal?: AbortSignal;
}

export async function fetchContext(spec: string, opts: FetchContextOptions = {}): Promise<FetchedContext> {
  const work = await mkdtemp(join(tmpdir(), 'tsbuild-context-'));
  const dispose = () => rm(work, { recursive: true, force: true });
  try {
    if (isGitContext(spec)) return { dir: await gitContext(spec, work, opts.signal), dispose };
    const archive = join(work, 'archive');
    if (spec === '-') await pipeline(opts.stdin ?? process.stdin, createWriteStream(archive, { mode: 0o600 }));
    else await httpGet(spec, archive, opts.signal);
    const dir = join(work, 'context');
    await mkdir(dir);
    if (await isTarArchive(archive)) {
      const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
      await untar({ archive, dest: dir, name: spec === '-' ? 'the context on stdin' : spec, owner });
      return { dir, dispose };
    }
    // Not an archive: a Dockerfile, with nothing else in the context (as docker build takes one).
    return { dir, dockerfileText: await readFile(archive, 'utf8'), dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** `URL#ref:subdir` into its parts; `ref` and `subdir` may be empty. */
export function parseGitContext(spec: string): { url: string; ref: string; subdir: string } {
  const hash = spec.indexOf('#');
  const url = hash < 0 ? spec : spec.slice(0, hash);
  const fragment = hash < 0 ? '' : spec.slice(hash + 1);
  const colon = fragment.indexOf(':');
  const ref = colon < 0 ? fragment : fragment.slice(0, colon);
  const subdir = colon < 0 ? '' : fragment.slice(colon + 1);
  const clean = subdir === '' ? '.' : posix.normalize(subdir).replace(/^\/+|\/+$/g, '');
  if (clean === '..' || clean.startsWith('../'))
    throw new InvalidInputError(`invalid git context ${spec}: the subdirectory climbs out of the repository`);
  return { url: url.startsWith('github.com/') ? `https://${url}` : url, ref, subdir: clean === '.' || clean === '' ? '' : clean };
}

async function gitContext(spec: string, work: string, signal: AbortSignal | undefined): Promise<string> {
  const { url, ref, subdir } = parseGitContext(spec);
  const repo = join(work, 'repo');
  const git = (...args: string[]) => run('git', args, repo, signal);
  await mkdir(repo);
  await git('init', '-q');
  await git('remote', 'add', 'origin', url);
  // A branch or tag fetches shallow; a commit ID may not be fetchable by itself (servers refuse
  // unadvertised objects by default), so then the whole history comes and the commit is checked out.
  const want = ref || 'HEAD';
  try {
    await git('fetch', '-q', '--depth=1', '--no-tags', 'origin', want);
    await git('checkout', '-q', 'FETCH_HEAD');
  } catch (err) {
    if (!/^[0-9a-f]{7,40}$/.test(ref)) throw new InvalidInputError(`unable to fetch the git context ${spec}: ${(err as Error).message}`);
    await git('fetch', '-q', '--tags', 'origin');
    await git('checkout', '-q', ref);
  }
  await git('submodule', 'update', '-q', '--init', '--recursive', '--depth=1');
  await rm(join(repo, '.git'), { recursive: true, force: true });
  const dir = join(repo, subdir);
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new InvalidInputError(`the git context ${spec} has no directory ${subdir}`);
  return dir;
}

/** Runs a program; its stderr's last line is the error when it fails. */
function run(cmd: string, args: readonly string[], cwd: string, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    // No prompt for credentials: a build must not hang on a terminal question.
    const child = spawn(cmd, args, {
      cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
      ...(signal ? { signal } : {}),
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) =>
      reject(
        (err as NodeJS.ErrnoException).code === 'ENOENT'
          ? new InvalidInputError(`${cmd} is needed for a git context and is not installed (apt package git)`)
          : err,
      ),
    );
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new InvalidInputError(stderr.trim().split('\n').at(-1) || `${cmd} ${args[0]} exited with ${code}`));
    });
  });
}

async function httpGet(url: string, path: string, signal: AbortSignal | undefined): Promise<void> {
  const { Transport } = await import('../http/transport.js');
  const transport = new Transport(signal ? { signal } : {});
  try {
    const res = await transport.send({ method: 'GET', url: new URL(url) });
    if (res.status < 200 || res.status > 299) {
      await res.discard();
      throw new InvalidInputError(`unable to download the context ${url}: ${res.status} ${res.statusText}`.trimEnd());
    }
    await pipeline(res.body, createWriteStream(path, { mode: 0o600 }));
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    throw new InvalidInputError(`unable to download the context ${url}: ${(err as Error).message}`, { cause: err });
  } finally {
    transport.close();
  }
}
