// The Docker Engine peer: a private dockerd, started as test/helpers/dockerd.ts starts one (its
// own data root, exec root, socket and empty config; no iptables or bridge), with two
// additions for measuring: the daemon starts inside the bench's cgroup for Docker, and its
// containers (classic RUN steps and BuildKit's) are placed below that cgroup, so the CPU a
// build costs in the daemon is charged to Docker and not lost.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { terminate, type Session } from './session.js';

export const DOCKERD = '/usr/sbin/dockerd';
/** The Debian client that matches the 20.10 daemon (/usr/local/bin/docker is another one). */
export const DOCKER = '/usr/bin/docker';

const START_TIMEOUT_MS = 60_000;

export interface Dockerd {
  readonly pid: number;
  readonly env: Record<string, string>;
  readonly logFile: string;
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

/** Starts dockerd; registers its stop (by PID) with the session before waiting for it. */
export async function startDockerd(session: Session, cgroup: string | undefined): Promise<Dockerd> {
  const dir = session.path('docker');
  await mkdir(join(dir, 'client'), { recursive: true });
  await writeFile(join(dir, 'daemon.json'), '{}\n');
  const socket = join(dir, 'docker.sock');
  const logFile = session.path('logs', 'dockerd.log');
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
    ...(cgroup ? ['--cgroup-parent', `${session.cgroupName}/docker/containers`] : []),
  ];
  const argv = cgroup ? ['/bin/sh', '-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup, DOCKERD, ...args] : [DOCKERD, ...args];
  const log = await open(logFile, 'a');
  let child: ChildProcess;
  try {
    // Its own process group: a Ctrl-C in the terminal reaches the bench, which stops it in order.
    child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', log.fd, log.fd], detached: true });
  } finally {
    await log.close();
  }
  const pid = child.pid ?? -1;
  session.defer(`dockerd (pid ${pid})`, async () => {
    if (child.exitCode === null && child.signalCode === null) await terminate(pid, 30_000);
  });
  const readLog = async (): Promise<string> => (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-30).join('\n');
  const until = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`dockerd exited during start-up (${child.exitCode ?? child.signalCode}):\n${await readLog()}`);
    if (await ping(socket)) break;
    if (Date.now() > until) throw new Error(`dockerd did not answer on ${socket} within ${START_TIMEOUT_MS / 1000} s:\n${await readLog()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { pid, env: { DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(dir, 'client') }, logFile };
}
