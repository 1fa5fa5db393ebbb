// The read-only SSH agent relay (src/builder/agent-filter.ts): messages are found in the byte
// stream however its chunks fall, a length out of bounds is an error as soon as its 4-byte
// prefix is in, and through a proxy socket a stand-in agent that answers slowly and in pieces
// only ever sees listing and signing, while the client gets every answer in the order it asked.
// (test/security/ssh-agents.test.ts does the same with OpenSSH's agent and tools.)
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentMessages, AgentProtocolError, MAX_AGENT_MESSAGE, filterAgent } from '../../../src/builder/agent-filter.js';
import { proxyUnixSocket, type ProxySocket } from '../../../src/builder/socket-proxy.js';

/** One framed message: uint32 length, the type, the body. */
function frame(type: number, body: Buffer | string = ''): Buffer {
  const b = Buffer.from(body);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(b.length + 1, 0);
  head[4] = type;
  return Buffer.concat([head, b]);
}

/** Every message `chunks` hold, pushed one chunk at a time and read after each. */
function readAll(chunks: Buffer[]): Buffer[] {
  const reader = new AgentMessages();
  const out: Buffer[] = [];
  for (const c of chunks) {
    reader.push(c);
    for (let m = reader.next(); m; m = reader.next()) out.push(m);
  }
  return out;
}

describe('AgentMessages', () => {
  const messages = [frame(11), frame(13, 'a sign request body'), frame(27, 'x'.repeat(300)), frame(19)];
  const stream = Buffer.concat(messages);

  test('finds the same messages whatever the chunks: whole, byte by byte, cut at every offset', () => {
    expect(readAll([stream])).toEqual(messages);
    expect(readAll([...stream].map((b) => Buffer.from([b])))).toEqual(messages);
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(readAll([stream.subarray(0, cut), Buffer.alloc(0), stream.subarray(cut)])).toEqual(messages);
    }
    for (let size = 2; size < 40; size += 3) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < stream.length; i += size) chunks.push(stream.subarray(i, i + size));
      expect(readAll(chunks)).toEqual(messages);
    }
  });

  test('a message is returned only once all of it is in', () => {
    const reader = new AgentMessages();
    const m = frame(13, 'body');
    reader.push(m.subarray(0, 3));
    expect(reader.next()).toBeUndefined();
    reader.push(m.subarray(3, m.length - 1));
    expect(reader.next()).toBeUndefined();
    reader.push(m.subarray(m.length - 1));
    expect(reader.next()).toEqual(m);
    expect(reader.next()).toBeUndefined();
  });

  test("OpenSSH's 256 KiB is the longest message; a longer one is refused before its body", () => {
    const longest = frame(13, Buffer.alloc(MAX_AGENT_MESSAGE - 1, 7));
    const chunks: Buffer[] = [];
    const both = Buffer.concat([longest, frame(11)]);
    for (let i = 0; i < both.length; i += 4096) chunks.push(both.subarray(i, i + 4096));
    const [first, second, ...rest] = readAll(chunks);
    expect(first?.equals(longest)).toBe(true); // toEqual would compare 256 Ki bytes one by one
    expect(second).toEqual(frame(11));
    expect(rest).toEqual([]);

    const reader = new AgentMessages();
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX_AGENT_MESSAGE + 1, 0);
    for (const b of head.subarray(0, 3)) {
      reader.push(Buffer.from([b]));
      expect(reader.next()).toBeUndefined();
    }
    reader.push(head.subarray(3));
    expect(() => reader.next()).toThrow(AgentProtocolError);
    expect(() => new AgentMessages().next()).not.toThrow();
  });

  test('a message without a type byte is an error', () => {
    const reader = new AgentMessages();
    reader.push(Buffer.from([0, 0, 0, 0]));
    expect(() => reader.next()).toThrow('an SSH agent message without a type');
  });
});

describe('filterAgent through a proxy socket', () => {
  let dir: string;
  let agent: Server;
  let proxy: ProxySocket;
  /** The request types the stand-in agent received. */
  const seen: number[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsbuild-agent-filter-'));
    // A stand-in agent: answers every request with its type + 1 and a body, after a pause and
    // in two writes, so a relay that did not wait for whole replies would be caught.
    agent = createServer({ allowHalfOpen: true }, (conn) => {
      const reader = new AgentMessages();
      conn.on('end', () => conn.end());
      conn.on('error', () => undefined);
      conn.on('data', (chunk: Buffer) => {
        reader.push(chunk);
        for (let m = reader.next(); m; m = reader.next()) {
          const type = m[4]!;
          seen.push(type);
          const reply = frame(type + 1, `reply to ${type}`);
          setTimeout(() => {
            conn.write(reply.subarray(0, 6));
            setTimeout(() => conn.write(reply.subarray(6)), 5);
          }, 20);
        }
      });
    });
    await new Promise<void>((resolve) => agent.listen(join(dir, 'agent.sock'), resolve));
    proxy = await proxyUnixSocket(join(dir, 'proxy.sock'), join(dir, 'agent.sock'), {
      mode: 0o600,
      uid: process.getuid!(),
      gid: process.getgid!(),
      relay: filterAgent,
    });
  });

  afterAll(async () => {
    await proxy.close();
    await new Promise((resolve) => agent.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    seen.length = 0;
  });

  /**
   * Connects to the proxy and writes `bytes` one at a time. With `end`, then ends its half and
   * waits for the proxy to end the other; without, waits up to `wait` ms for the proxy to end
   * the connection by itself (`cut`). Returns the replies.
   */
  async function exchange(bytes: Buffer, opts: { end: true } | { end: false; wait: number }) {
    const conn: Socket = createConnection({ path: proxy.socket, allowHalfOpen: true });
    const got: Buffer[] = [];
    let cut = false;
    conn.on('data', (d: Buffer) => got.push(d));
    conn.on('end', () => {
      cut = !conn.writableEnded;
      conn.end();
    });
    conn.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => conn.on('close', () => resolve()));
    for (const b of bytes) {
      conn.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    if (opts.end) conn.end();
    else setTimeout(() => conn.destroy(), opts.wait).unref();
    await closed;
    const reader = new AgentMessages();
    reader.push(Buffer.concat(got));
    const replies: Buffer[] = [];
    for (let m = reader.next(); m; m = reader.next()) replies.push(m);
    return { replies, cut };
  }

  test('only listing and signing reach the agent; every request is answered, in order', async () => {
    const requests = [
      frame(11),
      frame(19),
      frame(13, 'sign me'),
      frame(22, 'pw'),
      frame(9),
      frame(27, 'session-bind@openssh.com'),
      frame(11),
    ];
    const { replies, cut } = await exchange(Buffer.concat(requests), { end: true });
    expect(seen).toEqual([11, 13, 11]);
    expect(replies).toEqual([
      frame(12, 'reply to 11'),
      frame(5),
      frame(14, 'reply to 13'),
      frame(5),
      frame(5),
      frame(5),
      frame(12, 'reply to 11'),
    ]);
    // The client's end reached the agent after its last request was answered, and the agent's
    // end came back.
    expect(cut).toBe(false);
  });

  test('a request longer than 256 KiB cuts the connection; nothing of it reaches the agent', async () => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(MAX_AGENT_MESSAGE + 1, 0);
    const { replies, cut } = await exchange(Buffer.concat([frame(11), head, Buffer.from([11, 0, 0])]), { end: false, wait: 5000 });
    expect(replies).toEqual([frame(12, 'reply to 11')]);
    expect(cut).toBe(true);
    expect(seen).toEqual([11]);
  });
});
