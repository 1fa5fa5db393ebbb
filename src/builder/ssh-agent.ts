// A private ssh-agent that serves the key files of one `--ssh ID=KEY[,KEY...]` flag. BuildKit
// parses the keys into an agent inside its own process (sshprovider/agentprovider.go); Node has
// no SSH agent, so OpenSSH's runs instead, one per ID, for one build:
//  - `ssh-agent -D -a SOCKET`: in the foreground, so it stays tsbuild's child (reaped by Node,
//    stopped by its PID, never by name), its socket in a directory of its own with mode 0700;
//  - the keys reach it through `ssh-add -` on a pipe: no key material in any argv, and, as with
//    BuildKit, a key file is read whatever its permission bits (ssh-add refuses a key file
//    others may read when it is given by name);
//  - ssh-add has no terminal (a new session) and no askpass program, so it can never stop to
//    ask for a passphrase; an encrypted key is recognised first and refused with a clear error.
// Nothing is written to a log: errors carry ssh-agent's or ssh-add's own words and the path.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidInputError, TsbuildError } from '../errors.js';
import { collect, exited } from '../runtime/spawn.js';

const SSH_AGENT = 'ssh-agent';
const SSH_ADD = 'ssh-add';
const INSTALL_HINT = 'install OpenSSH (apt-get install -y openssh-client)';

/** BuildKit reads at most this much of a key file (agentprovider.go's LimitedReader). */
const MAX_KEY_SIZE = 100 * 1024;

/** How long ssh-agent may take to listen, and ssh-add to load a key, before that is an error. */
const START_TIMEOUT_MS = 10_000;

/**
 * A private key file's bytes, checked to be a key that needs no passphrase. The caller zeroes
 * them once used.
 */
export async function readPrivateKey(id: string, path: string): Promise<Buffer> {
  const bytes = await readFile(path).catch((err: NodeJS.ErrnoException) => {
    throw new InvalidInputError(`--ssh ${id}: cannot read the key file ${path}: ${err.code ?? err.message}`, { cause: err });
  });
  const problem = bytes.length > MAX_KEY_SIZE ? `is larger than ${MAX_KEY_SIZE / 1024} KiB` : keyProblem(bytes);
  if (problem !== undefined) {
    bytes.fill(0);
    throw new InvalidInputError(`--ssh ${id}: ${path} ${problem}`);
  }
  return bytes;
}

/**
 * Why `bytes` cannot be served without a passphrase, or undefined. Covers the formats ssh-add
 * reads: OpenSSH's own (the cipher name is the first field of the decoded body; `none` when
 * unencrypted), PEM with a `Proc-Type: 4,ENCRYPTED` header, and encrypted PKCS#8.
 */
export function keyProblem(bytes: Buffer): string | undefined {
  const text = bytes.toString('latin1');
  const encrypted = 'is encrypted: tsbuild cannot ask for its passphrase; load it into an agent (ssh-add) and pass --ssh ID=$SSH_AUTH_SOCK';
  const openssh = /-----BEGIN OPENSSH PRIVATE KEY-----([^-]*)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (openssh) {
    const body = Buffer.from(openssh[1]!.replace(/\s+/g, ''), 'base64');
    const magic = 'openssh-key-v1\0';
    if (body.length < magic.length + 4 || body.toString('latin1', 0, magic.length) !== magic) return 'is not a valid OpenSSH private key';
    const len = body.readUInt32BE(magic.length);
    const cipher = body.toString('latin1', magic.length + 4, magic.length + 4 + len);
    return cipher === 'none' ? undefined : encrypted;
  }
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text) || /^Proc-Type:\s*4,ENCRYPTED/m.test(text)) return encrypted;
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) return undefined;
  return 'is neither a private key nor a socket';
}

/** One running ssh-agent holding the keys of one ID. */
export class PrivateAgent {
  private stopped: Promise<void> | undefined;
  private readonly removeExitHook: () => void;

  private constructor(
    readonly socket: string,
    readonly pid: number,
    private readonly dir: string,
    private readonly child: ChildProcess,
    private readonly exit: Promise<unknown>,
  ) {
    // If tsbuild exits without stop() (process.exit, an uncaught error), the agent and its
    // keys must not outlive it. SIGINT and SIGTERM abort the build, whose cleanup calls stop();
    // only SIGKILL can leave an agent behind, in its 0700 directory.
    const hook = () => {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // Already gone: nothing to stop.
      }
    };
    process.once('exit', hook);
    this.removeExitHook = () => process.off('exit', hook);
  }

  /** Starts an agent and loads `keys` into it; stops it again if any step fails. */
  static async start(id: string, keys: readonly Buffer[]): Promise<PrivateAgent> {
    const dir = await mkdtemp(join(tmpdir(), 'tsbuild-ssh-'));
    const socket = join(dir, 'agent.sock');
    let agent: PrivateAgent | undefined;
    try {
      agent = await PrivateAgent.spawnAgent(dir, socket);
      for (const key of keys) await agent.add(id, key);
      return agent;
    } catch (err) {
      if (agent) await agent.stop();
      else await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  private static async spawnAgent(dir: string, socket: string): Promise<PrivateAgent> {
    const child = spawn(SSH_AGENT, ['-D', '-a', socket], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Only PATH, to find the program: the agent needs nothing of tsbuild's environment.
      env: pathOnly(),
    });
    const exit = exited(child);
    const stderr = collect(child.stderr);
    // In the foreground ssh-agent prints `echo Agent pid N;` once its socket listens.
    const ready = await new Promise<boolean>((resolve) => {
      let out = '';
      const timer = setTimeout(() => resolve(false), START_TIMEOUT_MS);
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (/echo Agent pid \d+;/.test(out)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      void exit.then(() => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ready && child.pid !== undefined) return new PrivateAgent(socket, child.pid, dir, child, exit);
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    const e = await exit;
    await rm(dir, { recursive: true, force: true });
    if (e.code === 'ENOENT') throw new TsbuildError(`--ssh with key files needs ${SSH_AGENT}: ${INSTALL_HINT}`);
    const said = (await stderr).trim();
    throw new TsbuildError(`${SSH_AGENT} did not start${said ? `: ${said}` : ''}`);
  }

  private async add(id: string, key: Buffer): Promise<void> {
    const child = spawn(SSH_ADD, ['-q', '-'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // No DISPLAY, no askpass, a new session without a terminal: ssh-add cannot prompt.
      env: { ...pathOnly(), SSH_AUTH_SOCK: this.socket, SSH_ASKPASS_REQUIRE: 'never' },
      detached: true,
      timeout: START_TIMEOUT_MS,
    });
    const done = exited(child);
    const [, stderr] = [collect(child.stdout), collect(child.stderr)];
    child.stdin!.on('error', () => undefined); // EPIPE when ssh-add exits without reading: its exit says why
    child.stdin!.end(key);
    const e = await done;
    if (e.exitCode === 0) return;
    if (e.code === 'ENOENT') throw new TsbuildError(`--ssh with key files needs ${SSH_ADD}: ${INSTALL_HINT}`);
    const said = (await stderr).replace(/Enter passphrase[^:]*:\s*/g, '').trim();
    throw new InvalidInputError(`--ssh ${id}: ${SSH_ADD} could not load a key${said ? `: ${said}` : ''}`);
  }

  /** Stops the agent by its PID, waits for it to exit and removes its directory. Safe to call twice. */
  stop(): Promise<void> {
    return (this.stopped ??= (async () => {
      if (this.child.exitCode === null && this.child.signalCode === null) {
        try {
          process.kill(this.pid, 'SIGTERM');
        } catch {
          // It exited meanwhile; `exit` below has resolved or will.
        }
      }
      await this.exit;
      this.removeExitHook();
      await rm(this.dir, { recursive: true, force: true });
    })());
  }
}

function pathOnly(): NodeJS.ProcessEnv {
  return process.env.PATH !== undefined ? { PATH: process.env.PATH } : {};
}
