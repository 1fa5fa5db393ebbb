// The SSH agent a RUN step reaches is read-only: it may list the agent's keys and ask for a
// signature, and nothing else. A step is code from a Dockerfile and what it runs; with a plain
// forward it could also remove the user's keys (`ssh-add -D`), add its own, lock the agent with
// a passphrase of its choosing, or reach an extension, and those changes would outlive the build.
//
// Follows BuildKit, which serves a step's agent through golang.org/x/crypto's agent.ServeAgent
// around a `readOnlyAgent` (session/sshforward/sshprovider/agentprovider.go): its Add, Remove,
// RemoveAll, Lock and Extension return errors ("adding new keys not allowed by buildkit"), so a
// step gets SSH_AGENT_FAILURE for them, and List and Sign reach the agent. Two differences:
//  - BuildKit's wrapper does not override Unlock, so an unlock goes through; here it is refused
//    like a lock: a step that guessed or was given the passphrase could otherwise undo the
//    user's `ssh-add -x`, a change to the agent as much as locking it.
//  - BuildKit serves key files from a keyring in its own process without the wrapper; here the
//    private ssh-agent of key files (ssh-agent.ts) is filtered too, so one step cannot remove
//    the keys the next one needs.
// Extensions are all refused, session-bind@openssh.com included, as BuildKit refuses them: ssh
// goes on without the binding (keys added with destination constraints, `ssh-add -h`, then
// cannot sign). Every refusal is SSH_AGENT_FAILURE, what an agent answers to a request it does
// not support (draft-miller-ssh-agent). That includes the two SSH-1 requests x/crypto answers
// itself without asking the agent: OpenSSH's agent still takes SSH_AGENTC_REMOVE_ALL_RSA_IDENTITIES
// (9) as "remove every key", so it must never reach the agent.
//
// Only the client's half is parsed (draft-miller-ssh-agent: uint32 length, then the message,
// whose first byte is its type); the agent's replies pass unchanged, framed only to know when
// one is complete. Requests are handled one at a time, as ServeAgent does: the next waits until
// the agent has answered the last, so a refusal can never overtake an earlier reply. A request
// longer than OpenSSH's AGENT_MAX_LEN (256 KiB, ssh-agent.c), or without a type byte, ends the
// connection, as ssh-agent ends it; so does a longer reply, which OpenSSH's clients refuse
// (MAX_AGENT_REPLY_LEN, authfd.c).
import type { Duplex } from 'node:stream';
import { TsbuildError } from '../errors.js';

/** OpenSSH's limit on one agent message, either way. */
export const MAX_AGENT_MESSAGE = 256 * 1024;

const SSH_AGENT_FAILURE = 5;
const SSH_AGENTC_REQUEST_IDENTITIES = 11;
const SSH_AGENTC_SIGN_REQUEST = 13;

/** The requests a step may make of the agent; any other is answered SSH_AGENT_FAILURE here. */
const ALLOWED: ReadonlySet<number> = new Set([SSH_AGENTC_REQUEST_IDENTITIES, SSH_AGENTC_SIGN_REQUEST]);

/** A whole SSH_AGENT_FAILURE message: length 1, then the type. */
const FAILURE = Buffer.from([0, 0, 0, 1, SSH_AGENT_FAILURE]);

/** A peer broke the framing: a message too long or without a type. */
export class AgentProtocolError extends TsbuildError {}

/** Splits a byte stream into agent messages, however its chunks fall. */
export class AgentMessages {
  private chunks: Buffer[] = [];
  private size = 0;
  /** The body length of the message at the front, once its 4-byte prefix has arrived. */
  private body: number | undefined;

  constructor(private readonly limit = MAX_AGENT_MESSAGE) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /**
   * The next whole message, its length prefix included, or undefined until all of it has
   * arrived. Throws AgentProtocolError as soon as a prefix is out of bounds, before its body is
   * waited for. Chunks are joined once per message, never once per chunk.
   */
  next(): Buffer | undefined {
    if (this.body === undefined) {
      if (this.size < 4) return undefined;
      const length = this.joined().readUInt32BE(0);
      if (length === 0) throw new AgentProtocolError('an SSH agent message without a type');
      if (length > this.limit) throw new AgentProtocolError(`an SSH agent message of ${length} bytes, over the ${this.limit}-byte limit`);
      this.body = length;
    }
    const total = 4 + this.body;
    if (this.size < total) return undefined;
    const all = this.joined();
    this.chunks = all.length > total ? [all.subarray(total)] : [];
    this.size -= total;
    this.body = undefined;
    return all.subarray(0, total);
  }

  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks[0]!;
  }
}

/**
 * Relays one connection between a step's `client` and the `agent`, letting through only the
 * requests in ALLOWED. A broken message destroys `client` with an AgentProtocolError, which the
 * proxy handles as any error on the connection: both sides are closed, and the step sees its
 * connection end, as with ssh-agent.
 */
export function filterAgent(client: Duplex, agent: Duplex): void {
  const requests = new AgentMessages();
  const replies = new AgentMessages();
  let waiting = false; // a request is with the agent and its reply has not come back whole
  let clientEnded = false;

  const advance = (): void => {
    try {
      while (!waiting) {
        const msg = requests.next();
        if (!msg) break;
        if (ALLOWED.has(msg[4]!)) {
          waiting = true;
          agent.write(msg);
        } else {
          client.write(FAILURE);
        }
      }
    } catch (err) {
      client.destroy(err as Error);
      return;
    }
    if (waiting) client.pause();
    else if (!clientEnded) client.resume();
    // The client is done and every request it sent whole has been answered.
    else if (!agent.writableEnded) agent.end();
  };

  client.on('data', (chunk: Buffer) => {
    requests.push(chunk);
    advance();
  });
  client.on('end', () => {
    clientEnded = true; // a partial message left behind is dropped: it was never a request
    advance();
  });
  agent.on('data', (chunk: Buffer) => {
    replies.push(chunk);
    try {
      for (let reply = replies.next(); reply; reply = replies.next()) {
        client.write(reply);
        waiting = false;
      }
    } catch (err) {
      agent.destroy(err as Error);
      return;
    }
    advance();
  });
  agent.on('end', () => client.end());
}
