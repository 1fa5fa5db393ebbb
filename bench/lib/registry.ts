// A registry on 127.0.0.1 for the workloads that push or pull (the W7 pushes, W9's caches):
// Debian's docker-registry (distribution 2.8) on a free loopback port, its storage and log in
// the run's scratch directory, stopped by PID. Follows test/helpers/registry.ts's start-up
// without its proxies and auth, which the bench does not need.
import { spawn } from 'node:child_process';
import { access, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { terminate, waitGone, type Session } from './session.js';

const BINARY = '/usr/bin/docker-registry';
const START_TIMEOUT_MS = 15_000;

export interface Registry {
  /** `127.0.0.1:PORT`, for references. */
  readonly host: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function status(url: string): Promise<number> {
  return new Promise((resolve) => {
    http
      .get(url, { timeout: 2000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', () => resolve(0))
      .on('timeout', function (this: http.ClientRequest) {
        this.destroy();
        resolve(0);
      });
  });
}

let started = 0;

/** Starts `docker-registry serve` with its data in a new directory of the session. */
export async function startRegistry(session: Session): Promise<Registry> {
  await access(BINARY).catch(() => {
    throw new Error(`${BINARY} is missing: apt-get install -y docker-registry`);
  });
  const dir = session.path(`registry-${started++}`);
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  await writeFile(
    join(dir, 'config.yml'),
    `version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: ${host}
`,
  );
  const logFile = join(dir, 'registry.log');
  const log = await open(logFile, 'a');
  const child = spawn(BINARY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  const pid = child.pid ?? -1;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) await terminate(pid, 5000);
      await waitGone(pid, 5000);
      await rm(dir, { recursive: true, force: true });
    })());
  // Registered before waiting, so that an interrupted start-up still stops it.
  session.defer(`docker-registry (pid ${pid})`, stop);
  const until = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const text = await readFile(logFile, 'utf8').catch(() => '');
      await stop();
      throw new Error(`docker-registry exited during start-up (${child.exitCode ?? child.signalCode}):\n${text}`);
    }
    if ((await status(`http://${host}/v2/`)) === 200) break;
    if (Date.now() > until) {
      await stop();
      throw new Error(`docker-registry did not answer on ${host} within ${START_TIMEOUT_MS / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { host, stop };
}
