// A private Docker daemon for interop tests: its own data root, exec root, pid file, socket and
// config, no iptables or bridge (containers run with --network none), storage driver overlay2
// on a temporary directory. Started once per test file, stopped by its PID, and everything it
// made (its managed containerd and shims, mounts, files) removed afterwards.
//
// /usr/local/bin/docker on the test machines is an unrelated newer client; the tests always
// call the Debian docker.io client at /usr/bin/docker, which matches the 20.10 daemon.
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { mountsBelow, type CliResult } from './tsbuild.js';
import { alive } from './steps.js';

export const DOCKERD = '/usr/sbin/dockerd';
export const DOCKER = '/usr/bin/docker';

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 30_000;

export interface Dockerd {
  readonly dir: string;
  readonly pid: number;
  /** Environment for /usr/bin/docker: this daemon's socket and a private client config. */
  readonly env: Record<string, string>;
  /** Runs /usr/bin/docker ARGS against this daemon; never throws on a non-zero exit. */
  docker(args: readonly string[], opts?: { input?: string | Buffer; env?: Record<string, string> }): Promise<CliResult>;
  /** Like docker(), but fails with the command's output and the daemon's log when it does not exit 0. */
  ok(args: readonly string[], opts?: { input?: string | Buffer; env?: Record<string, string> }): Promise<string>;
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** Fails (never skips) when a peer tool the interop tests need is not installed. */
export async function requireTool(path: string, aptPackage: string): Promise<void> {
  try {
    await access(path, constants.X_OK);
  } catch {
    throw new Error(`${path} is not installed; the interop tests need it: apt-get install -y ${aptPackage}`);
  }
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/** PIDs of processes whose command line names `dir`: the daemon's containerd and shims. */
async function processesUsing(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(dir)) pids.push(Number(name));
  }
  return pids;
}

async function terminate(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return; // already gone
  }
  if (!(await waitGone(pid, STOP_TIMEOUT_MS))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    await waitGone(pid, 5000);
  }
}

/** A private dockerd; `experimental` for what only an experimental daemon does (`build --squash`). */
export async function startDockerd(opts: { experimental?: boolean } = {}): Promise<Dockerd> {
  await requireTool(DOCKERD, 'docker.io');
  await requireTool(DOCKER, 'docker.io');
  // Short: the socket path must fit in sun_path (108 bytes), containerd's below it too.
  const dir = await mkdtemp(join(tmpdir(), 'tsbd-'));
  const socket = join(dir, 'docker.sock');
  const logPath = join(dir, 'dockerd.log');
  await mkdir(join(dir, 'client'));
  // An empty daemon config: nothing from /etc/docker/daemon.json leaks in.
  await writeFile(join(dir, 'daemon.json'), '{}\n');
  const args = [
    '--config-file',
    join(dir, 'daemon.json'),
    '--data-root',
    join(dir, 'data'),
    '--exec-root',
    join(dir, 'exec'),
    '--pidfile',
    join(dir, 'dockerd.pid'),
    '-H',
    `unix://${socket}`,
    '--storage-driver',
    'overlay2',
    '--iptables=false',
    '--ip-forward=false',
    '--ip-masq=false',
    '--bridge=none',
    ...(opts.experimental ? ['--experimental'] : []),
  ];
  const log = await open(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(DOCKERD, args, { stdio: ['ignore', log.fd, log.fd] });
  } finally {
    await log.close();
  }
  const readLog = (): Promise<string> => readFile(logPath, 'utf8').catch(() => '');
  const env = { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(dir, 'client') };

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.pid !== undefined && !(await exited(child, 0))) {
      child.kill('SIGTERM');
      if (!(await exited(child, STOP_TIMEOUT_MS))) {
        child.kill('SIGKILL');
        await exited(child, 5000);
      }
    }
    // What the daemon started and left behind (after a SIGKILL, or a shim that outlived it).
    for (const pid of await processesUsing(dir)) await terminate(pid);
    const mounts = await mountsBelow(dir);
    for (const m of mounts.reverse()) {
      const r = await execa('umount', [m], { reject: false });
      if (r.exitCode !== 0) await execa('umount', ['-l', m]);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const d: Dockerd = {
    dir,
    pid: child.pid ?? -1,
    env,
    async docker(cmd, opts = {}) {
      const r = await execa(DOCKER, [...cmd], {
        reject: false,
        env: { ...env, ...opts.env },
        ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' }),
      });
      return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
    },
    async ok(cmd, opts = {}) {
      const r = await d.docker(cmd, opts);
      if (r.exitCode !== 0) {
        const tail = (await readLog()).split('\n').slice(-30).join('\n');
        throw new Error(
          `docker ${cmd.join(' ')} exited ${r.exitCode}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}\ndockerd log (tail):\n${tail}`,
        );
      }
      return r.stdout;
    },
    log: readLog,
    stop,
  };

  const until = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (await exited(child, 0)) {
      const text = await readLog();
      await stop();
      throw new Error(`dockerd exited during start-up (${child.exitCode ?? child.signalCode}):\n${text.split('\n').slice(-40).join('\n')}`);
    }
    if (await ping(socket)) return d;
    if (Date.now() > until) {
      const text = await readLog();
      await stop();
      throw new Error(`dockerd did not answer on ${socket} within ${START_TIMEOUT_MS / 1000}s:\n${text.split('\n').slice(-40).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
