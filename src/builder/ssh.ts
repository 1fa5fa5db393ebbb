// The SSH agents `RUN --mount=type=ssh` reaches, by ID, from `--ssh` flags: an agent socket of
// the host (the one at $SSH_AUTH_SOCK by default), or key files, served by a private ssh-agent
// (ssh-agent.ts). Either way a step gets a socket of its own, a proxy (socket-proxy.ts) with the
// mode and owner its mount asks for, never the agent's own socket; the proxy lets only listing
// keys and signing through (agent-filter.ts), so a step cannot add, remove or lock keys.
//
// Follows docker buildx and BuildKit: the flag's syntax is buildx's (util/buildflags/ssh.go),
// and what the paths mean is BuildKit's session agent provider
// (session/sshforward/sshprovider/agentprovider.go): no path (or one empty path, what
// `default=$SSH_AUTH_SOCK` becomes when the variable is unset) means $SSH_AUTH_SOCK, for any ID;
// a path is a socket if stat says so, else a private key file; one socket at most, and sockets
// and keys are not mixed; an empty ID is `default`; an ID given twice is an error.
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InvalidInputError, TsbuildError } from '../errors.js';
import { filterAgent } from './agent-filter.js';
import type { SshSource } from './request.js';
import { proxyUnixSocket, type ProxySocket } from './socket-proxy.js';
import { PrivateAgent, readPrivateKey } from './ssh-agent.js';

/** The ID of `--ssh default` and of a `--mount=type=ssh` without `id=`. */
export const DEFAULT_SSH_ID = 'default';

/** `--ssh default|ID[=SOCKET|KEY[,KEY...]]`, split as buildx splits it: at the first `=`, then at commas. */
export function parseSshFlag(value: string): SshSource {
  const eq = value.indexOf('=');
  const id = (eq < 0 ? value : value.slice(0, eq)) || DEFAULT_SSH_ID;
  const given = eq < 0 ? [] : value.slice(eq + 1).split(',');
  const paths = given.length === 1 && given[0] === '' ? [] : given;
  if (paths.includes(''))
    throw new InvalidInputError(`invalid --ssh ${JSON.stringify(value)}: an empty path (want default|ID[=SOCKET|KEY[,KEY...]])`);
  return { id, paths };
}

/** Where and how a step's agent socket is made (BuildKit's `--mount=type=ssh` options). */
export interface SshForwardOptions {
  /** A private scratch directory of the caller's; the socket is made in it. */
  readonly dir: string;
  /** Permission bits of the socket; default 0600. */
  readonly mode?: number;
  /** Owner of the socket; default 0:0. */
  readonly uid?: number;
  readonly gid?: number;
}

export interface ForwardedAgent {
  /** The socket to mount into the step: it lists keys and signs, and refuses the rest. */
  readonly socket: string;
  /** Ends its connections and removes it. Safe to call twice. */
  close(): Promise<void>;
}

export interface SshAgentsOptions {
  /** Where $SSH_AUTH_SOCK is read (default: process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** What relative paths are relative to (default: the current directory). */
  readonly cwd?: string;
}

type Resolved = { readonly socket: string } | { readonly keys: readonly string[] };

/** The agents one build may forward; close() when the build ends, however it ends. */
export class SshAgents {
  private readonly sources = new Map<string, readonly string[]>();
  private readonly agents = new Map<string, Promise<PrivateAgent>>();
  private readonly proxies = new Set<ProxySocket>();
  private closing: Promise<void> | undefined;
  private sockets = 0;

  constructor(
    sources: readonly SshSource[],
    private readonly opts: SshAgentsOptions = {},
  ) {
    for (const s of sources) {
      const id = s.id || DEFAULT_SSH_ID;
      if (this.sources.has(id)) throw new InvalidInputError(`--ssh ${id} is given twice: each ID names one agent`);
      this.sources.set(id, s.paths);
    }
  }

  has(id: string): boolean {
    return this.sources.has(id);
  }

  /**
   * Fails, naming the ID, if an agent could not be forwarded now: $SSH_AUTH_SOCK unset, a path
   * missing, two sockets, sockets with keys, a key that is not one or needs a passphrase.
   * BuildKit checks all of it when the build starts; so should a build, before its first step.
   * Starts nothing.
   */
  async check(): Promise<void> {
    for (const id of this.sources.keys()) {
      const r = await this.resolve(id);
      if ('keys' in r) for (const path of r.keys) (await readPrivateKey(id, path)).fill(0);
    }
  }

  /** A new socket in `opts.dir` that reaches the agent of `id`, read-only. */
  async forward(id: string, opts: SshForwardOptions): Promise<ForwardedAgent> {
    this.assertOpen();
    const r = await this.resolve(id);
    const target = 'socket' in r ? r.socket : (await this.agent(id, r.keys)).socket;
    const proxy = await proxyUnixSocket(join(opts.dir, `ssh-agent-${++this.sockets}.sock`), target, {
      mode: opts.mode ?? 0o600,
      uid: opts.uid ?? 0,
      gid: opts.gid ?? 0,
      relay: filterAgent,
    });
    this.proxies.add(proxy);
    if (this.closing) {
      // close() began while this socket was made: it must not outlive it.
      await proxy.close();
      this.assertOpen();
    }
    return {
      socket: proxy.socket,
      close: async () => {
        this.proxies.delete(proxy);
        await proxy.close();
      },
    };
  }

  /**
   * Ends every forwarded socket, stops every private agent (by PID) and removes their files.
   * Safe to call twice, and after any failure, including one while an agent was starting.
   */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      for (const p of [...this.proxies]) await p.close();
      this.proxies.clear();
      const started = await Promise.allSettled(this.agents.values());
      for (const a of started) if (a.status === 'fulfilled') await a.value.stop();
    })());
  }

  private assertOpen(): void {
    if (this.closing) throw new TsbuildError('the SSH agents of this build are closed');
  }

  /** The private agent of a key-file ID: started on its first forward, once for the build. */
  private agent(id: string, paths: readonly string[]): Promise<PrivateAgent> {
    let agent = this.agents.get(id);
    if (!agent) {
      agent = (async () => {
        const keys: Buffer[] = [];
        try {
          for (const path of paths) keys.push(await readPrivateKey(id, path));
          return await PrivateAgent.start(id, keys);
        } finally {
          for (const k of keys) k.fill(0);
        }
      })();
      this.agents.set(id, agent);
    }
    return agent;
  }

  /** What the paths of `id` are: one socket, or key files. */
  private async resolve(id: string): Promise<Resolved> {
    const given = this.sources.get(id);
    if (given === undefined) throw new TsbuildError(`no --ssh ${id} was given`);
    const env = this.opts.env ?? process.env;
    let paths = given;
    if (paths.length === 0) {
      const sock = env.SSH_AUTH_SOCK;
      if (!sock)
        throw new InvalidInputError(
          `--ssh ${id}: SSH_AUTH_SOCK is not set: start an agent (eval $(ssh-agent); ssh-add) or give --ssh ${id}=SOCKET|KEY`,
        );
      paths = [sock];
    }
    const sockets: string[] = [];
    const keys: string[] = [];
    for (const p of paths) {
      const path = resolve(this.opts.cwd ?? '.', p);
      const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
        const why = err.code === 'ENOENT' ? 'no such socket or key file' : (err.code ?? err.message);
        throw new InvalidInputError(`--ssh ${id}: ${path}: ${why}`, { cause: err });
      });
      if (st.isSocket()) sockets.push(path);
      else if (st.isDirectory()) throw new InvalidInputError(`--ssh ${id}: ${path} is a directory, not a socket or key file`);
      else keys.push(path);
    }
    if (sockets.length > 1) throw new InvalidInputError(`--ssh ${id}: only one agent socket may be given`);
    if (sockets.length && keys.length) throw new InvalidInputError(`--ssh ${id}: give an agent socket or key files, not both`);
    return sockets.length ? { socket: sockets[0]! } : { keys };
  }
}
