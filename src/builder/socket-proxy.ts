// A Unix socket that forwards every connection to another Unix socket, through a relay its
// caller gives: how a RUN step reaches an SSH agent (ssh.ts), the relay letting only listing and
// signing through (agent-filter.ts). The step gets a socket of its own, with the owner and mode
// its `--mount=type=ssh` asks for, in a directory only tsbuild can enter; the agent's own socket,
// and the directory it lives in, stay out of the step's reach. Each connection opens a new one
// to the target, so an agent sees one client per client, as it would without the proxy.
import { chmod, chown, rm } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { TsbuildError } from '../errors.js';

/** sun_path holds 108 bytes with its terminating NUL; a longer path cannot be bound. */
const MAX_SOCKET_PATH = 107;

/**
 * Carries one connection's bytes both ways between a client of the proxy and the proxy's own
 * connection to the target, and ends each side's writing when it should. To give up on the
 * connection it destroys either socket with an error: the proxy then closes both.
 */
export type Relay = (client: Socket, target: Socket) => void;

export interface ProxyOptions {
  /** What each connection goes through (agent-filter.ts for an SSH agent). */
  readonly relay: Relay;
  /** Permission bits of the proxy socket (connecting needs write permission). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export interface ProxySocket {
  readonly socket: string;
  /** Stops listening, ends every open connection and removes the socket. Safe to call twice. */
  close(): Promise<void>;
}

/** Listens at `path` (in a directory the caller keeps private) and relays to `target`. */
export async function proxyUnixSocket(path: string, target: string, opts: ProxyOptions): Promise<ProxySocket> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH)
    throw new TsbuildError(`the socket path ${path} is longer than the ${MAX_SOCKET_PATH} bytes a Unix socket address holds`);
  const open = new Set<Socket>();
  // allowHalfOpen on both sides: a client that shuts down its writing half still gets the
  // agent's answer, as it would connected directly.
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = createConnection({ path: target, allowHalfOpen: true });
    open.add(client).add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    // An agent that is gone, a client that vanished, or a relay that gave up: the other side is
    // closed too; the client sees its connection end, as with an agent that refuses it.
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', () => open.delete(client));
    upstream.on('close', () => open.delete(upstream));
    opts.relay(client, upstream);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closed: Promise<void> | undefined;
  const close = () =>
    (closed ??= (async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of open) s.destroy();
      await stopped;
      await rm(path, { force: true });
    })());
  try {
    // The directory is private, so nobody can connect between listen and these two calls.
    await chown(path, opts.uid, opts.gid);
    await chmod(path, opts.mode);
  } catch (err) {
    await close();
    throw err;
  }
  return { socket: path, close };
}
