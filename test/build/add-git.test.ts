// ADD of git repositories in real builds, from servers this test starts on 127.0.0.1 and stops
// by PID: `git daemon` (git://), and an HTTP server of a bare repository that serves it both as
// static files (git's dumb HTTP protocol, as BuildKit's own tests serve one) and, under /smart/,
// through `git http-backend` (the smart protocol, as GitHub speaks it). Refs, `#ref:subdir`,
// --keep-git-dir, --checksum, the cache (keyed by the commit: a new commit re-runs the step),
// ssh remotes through --ssh, and the errors.
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { execa } from 'execa';
import { requireTool } from '../helpers/dockerd.js';
import { ok, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

const GIT = '/usr/bin/git';
const GIT_DAEMON = '/usr/lib/git-core/git-daemon';

let env: Awaited<ReturnType<typeof rootWithBusybox>>;
let work: string;
let bare: string;
let daemon: ChildProcess | undefined;
let http: Server | undefined;
let gitUrl: string;
let httpUrl: string;
let smartUrl: string;
const commits: Record<string, string> = {};

const git = async (cwd: string, ...args: string[]): Promise<string> =>
  (
    await execa(GIT, args, {
      cwd,
      env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', HOME: cwd },
    })
  ).stdout.trim();

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = createConnection({ host: '127.0.0.1', port }, () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`git daemon did not listen on ${port}`);
}

/** A new commit on main, changing README; the bare repository and its dumb-HTTP info follow. */
async function commitReadme(text: string): Promise<string> {
  await writeFile(join(work, 'README'), text);
  await git(work, 'commit', '-qam', text);
  await git(work, 'push', '-q', bare, 'main');
  await git(bare, 'update-server-info');
  return git(work, 'rev-parse', 'HEAD');
}

beforeAll(async () => {
  await requireTool(GIT, 'git');
  await requireTool(GIT_DAEMON, 'git');
  env = await rootWithBusybox('overlay2');
  work = await tempDir('tsbuild-git-work-');
  const served = await tempDir('tsbuild-git-served-');
  bare = join(served, 'repo.git');
  await git(work, 'init', '-q', '-b', 'main');
  await writeFile(join(work, 'README'), 'first\n');
  await execa('mkdir', ['-p', join(work, 'sub'), join(work, 'bin')]);
  await writeFile(join(work, 'sub/file.txt'), 'in sub\n');
  await writeFile(join(work, 'bin/run.sh'), '#!/bin/sh\n', { mode: 0o755 });
  await git(work, 'add', '.');
  await git(work, 'commit', '-qm', 'first');
  await git(work, 'tag', '-a', '-m', 'version 1', 'v1');
  commits.v1 = await git(work, 'rev-parse', 'HEAD');
  await git(served, 'init', '-q', '--bare', '-b', 'main', 'repo.git');
  await git(work, 'push', '-q', '--tags', bare, 'main');
  commits.main = await commitReadme('second\n');

  const port = await freePort();
  daemon = spawn(GIT_DAEMON, ['--reuseaddr', '--export-all', `--base-path=${served}`, '--listen=127.0.0.1', `--port=${port}`, served], {
    stdio: 'ignore',
  });
  await waitForPort(port);
  gitUrl = `git://127.0.0.1:${port}/repo.git`;

  http = createHttpServer((req, res) => {
    if (req.url?.startsWith('/smart/')) return smartHttp(served, req, res);
    const path = normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!));
    const file = join(served, path);
    stat(file).then(
      (st) => {
        if (!st.isFile()) return void res.writeHead(404).end();
        res.writeHead(200, { 'Content-Length': st.size });
        createReadStream(file).pipe(res);
      },
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((r) => http!.listen(0, '127.0.0.1', r));
  httpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/repo.git`;
  smartUrl = httpUrl.replace('/repo.git', '/smart/repo.git');
});

/** git's smart HTTP protocol: one `git http-backend` (a CGI program) per request. */
function smartHttp(root: string, req: IncomingMessage, res: ServerResponse): void {
  const [path, query = ''] = (req.url ?? '').slice('/smart'.length).split('?');
  const cgi = spawn(GIT, ['http-backend'], {
    env: {
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: path,
      QUERY_STRING: query,
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
    },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  req.pipe(cgi.stdin!);
  let head = Buffer.alloc(0);
  let sent = false;
  cgi.stdout!.on('data', (chunk: Buffer) => {
    if (sent) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    const headers: Record<string, string> = {};
    let status = 200;
    for (const line of head.subarray(0, end).toString().split('\r\n')) {
      const colon = line.indexOf(':');
      const [k, v] = [line.slice(0, colon).trim(), line.slice(colon + 1).trim()];
      if (k.toLowerCase() === 'status') status = Number.parseInt(v, 10);
      else headers[k] = v;
    }
    res.writeHead(status, headers);
    res.write(head.subarray(end + 4));
    sent = true;
  });
  cgi.stdout!.on('end', () => res.end());
}

afterAll(async () => {
  if (daemon?.pid !== undefined) {
    const exit = new Promise((r) => daemon!.once('exit', r));
    process.kill(daemon.pid, 'SIGTERM');
    await exit;
  }
  if (http) await new Promise<void>((r) => http!.close(() => r()));
  await env?.cleanup();
});

async function build(tag: string, dockerfile: string, args: string[] = []): Promise<string> {
  const ctx = await tempDir();
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  return ok(env.root, ['build', '--progress', 'plain', ...args, '-t', tag, ctx]);
}

async function buildFails(dockerfile: string): Promise<string> {
  const ctx = await tempDir();
  await writeFile(join(ctx, 'Dockerfile'), dockerfile);
  const r = await tsbuild(env.root, ['build', ctx]);
  expect(r.exitCode).not.toBe(0);
  return r.stderr;
}

const sh = (image: string, script: string): Promise<string> => ok(env.root, ['run', image, 'sh', '-c', script]);

test('ADD of a git:// repository copies the tree of its HEAD, without .git, with git’s modes', async () => {
  await build('git-head', `FROM busybox\nADD ${gitUrl} /src/\n`);
  expect((await sh('git-head', "cd /src && find . | sort && cat README && stat -c '%a %u:%g %n' bin/run.sh sub/file.txt sub")).trim()).toBe(
    [
      '.',
      './README',
      './bin',
      './bin/run.sh',
      './sub',
      './sub/file.txt',
      'second',
      '755 0:0 bin/run.sh',
      '644 0:0 sub/file.txt',
      '755 0:0 sub',
    ].join('\n'),
  );
});

test('#ref:subdir picks a tag (annotated: its commit) and copies one directory of it', async () => {
  await build('git-sub', `FROM busybox\nADD --chown=5:6 ${gitUrl}#v1:sub /only-sub/\n`);
  expect((await sh('git-sub', "find /only-sub | sort; stat -c '%u:%g' /only-sub/file.txt")).trim().split('\n')).toEqual([
    '/only-sub',
    '/only-sub/file.txt',
    '5:6',
  ]);
});

test('--keep-git-dir over dumb HTTP keeps .git: HEAD at the commit, the branch under its name', async () => {
  await build('git-keep', `FROM busybox\nADD --keep-git-dir=true ${httpUrl}#main /kept\n`);
  expect((await sh('git-keep', 'cat /kept/.git/HEAD /kept/README /kept/.git/refs/heads/main')).trim().split('\n')).toEqual([
    commits.main,
    'second',
    commits.main,
  ]);
});

test('--keep-git-dir leaves no password of the remote in .git/config', async () => {
  const withPassword = httpUrl.replace('http://', 'http://user:s3cret@');
  await build('git-keep-auth', `FROM busybox\nADD --keep-git-dir ${withPassword} /kept\n`);
  const config = await sh('git-keep-auth', 'cat /kept/.git/config');
  expect(config).toContain(`url = ${httpUrl.replace('http://', 'http://user:xxxxx@')}`);
  expect(config).not.toContain('s3cret');
});

test('--checksum pins the commit; another commit fails the step', async () => {
  await build('git-pinned', `FROM busybox\nADD --checksum=${commits.v1} ${gitUrl}#v1 /pinned/\n`);
  expect((await sh('git-pinned', 'cat /pinned/README')).trim()).toBe('first');
  const err = await buildFails(`FROM busybox\nADD --checksum=${commits.v1} ${gitUrl}#main /pinned/\n`);
  expect(err).toContain(`Dockerfile:2: ADD failed: expected checksum to match ${commits.v1}, got ${commits.main}`);
});

test('the step is cached by commit: a new commit on the branch runs it again', async () => {
  const dockerfile = `FROM busybox\nADD ${gitUrl}#main /c/\n`;
  await build('git-cache', dockerfile);
  expect((await build('git-cache', dockerfile)).match(/--> CACHED/g)).toHaveLength(1);
  await commitReadme('third\n');
  expect(await build('git-cache', dockerfile)).not.toMatch(/--> CACHED/);
  expect((await sh('git-cache', 'cat /c/README')).trim()).toBe('third');
});

test('errors: COPY of a repository, a missing ref, an ssh remote without --ssh', async () => {
  expect(await buildFails(`FROM busybox\nCOPY ${gitUrl} /x/\n`)).toContain("Dockerfile:2: COPY failed: source can't be a git ref for COPY");
  expect(await buildFails(`FROM busybox\nADD ${gitUrl}#nope /x/\n`)).toContain('Dockerfile:2: ADD failed: git ref "nope" not found in');
  expect(await buildFails('FROM busybox\nADD git@127.0.0.1:repo.git /x/\n')).toContain(
    'Dockerfile:2: ADD failed: git@127.0.0.1:repo.git is an ssh remote: give the build an agent with --ssh default',
  );
});

test('the smart HTTP protocol, shallow: a branch by its full ref name', async () => {
  await build('git-smart', `FROM busybox\nADD ${smartUrl}#refs/heads/main:sub /s/\n`);
  expect((await sh('git-smart', 'cat /s/file.txt')).trim()).toBe('in sub');
});

test('an ssh remote goes through the --ssh agent (here to a port where nothing listens)', async () => {
  await requireTool('/usr/bin/ssh', 'openssh-client');
  const keys = await tempDir('tsbuild-git-key-');
  await execa('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keys, 'id')]);
  const ctx = await tempDir();
  const port = await freePort();
  await writeFile(join(ctx, 'Dockerfile'), `FROM busybox\nADD ssh://git@127.0.0.1:${port}/repo.git /x/\n`);
  const r = await tsbuild(env.root, ['build', '--ssh', `default=${join(keys, 'id')}`, ctx]);
  expect(r.exitCode).not.toBe(0);
  // ssh itself ran and was refused: the agent was there (no "give the build an agent" error).
  expect(r.stderr).toMatch(
    /Dockerfile:2: ADD failed: git ls-remote of ssh:\/\/git@127\.0\.0\.1:\d+\/repo\.git failed: .*(refused|Could not read)/,
  );
});

test('--exclude applies to a git source too', async () => {
  await build('git-exclude', `FROM busybox\nADD --exclude=bin --exclude=*.txt ${gitUrl}#v1 /e/\n`);
  expect((await sh('git-exclude', 'cd /e && find . | sort')).trim().split('\n')).toEqual(['.', './README', './sub', './sub/file.txt']);
});
