// The SSH agents a build forwards to RUN --mount=type=ssh (src/builder/ssh.ts): OpenSSH's own
// tools on the host check what a step would see through the proxy socket (its keys, listed and
// signing, and nothing it may change: src/builder/agent-filter.ts), a key file's private
// ssh-agent is looked at by its PID from /proc, and nothing is left behind after close(): no
// agent process, no directory, no socket. Needs root (the sockets are given other owners) and
// OpenSSH's client tools.
import { constants } from 'node:fs';
import { access, chmod, copyFile, lstat, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import { InvalidInputError } from '../../src/errors.js';
import { parseSshFlag, SshAgents } from '../../src/builder/ssh.js';
import { tempDir } from '../helpers/tsbuild.js';
import { alive } from '../helpers/steps.js';

/** What `ssh-add -l` prints through `socket`, as the host's root or as another user. */
async function listKeys(socket: string, as?: { uid: number; gid: number }) {
  const cmd = as ? ['setpriv', `--reuid=${as.uid}`, `--regid=${as.gid}`, '--clear-groups', 'ssh-add', '-l'] : ['ssh-add', '-l'];
  return execa(cmd[0]!, cmd.slice(1), { env: { SSH_AUTH_SOCK: socket }, extendEnv: false, reject: false, stdin: 'ignore' });
}

/**
 * `ssh-add ARGS` against `socket`. A passphrase it asks for (-x, -X) comes from an askpass
 * program that prints `passphrase`: ssh-add has no terminal here.
 */
async function sshAdd(socket: string, args: string[], passphrase = 'no passphrase') {
  const askpass = join(await tempDir('tsbuild-askpass-'), 'askpass');
  await writeFile(askpass, `#!/bin/sh\necho '${passphrase}'\n`, { mode: 0o700 });
  return execa('ssh-add', args, {
    env: { SSH_AUTH_SOCK: socket, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force' },
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    cwd: keys,
  });
}

/** The public keys the host's agent holds, asked directly (ssh-add -L), without their comments. */
async function hostKeys(): Promise<string[]> {
  const { stdout } = await execa('ssh-add', ['-L'], { env: { SSH_AUTH_SOCK: hostSocket }, extendEnv: false, stdin: 'ignore' });
  return stdout.split('\n').map((line) => line.split(' ').slice(0, 2).join(' '));
}

/** One agent protocol message: uint32 length, the type, then each field as an SSH string. */
function agentMessage(type: number, ...fields: string[]): Buffer {
  const body = [Buffer.from([type])];
  for (const f of fields) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(Buffer.byteLength(f), 0);
    body.push(len, Buffer.from(f));
  }
  const len = Buffer.alloc(4);
  len.writeUInt32BE(
    body.reduce((n, b) => n + b.length, 0),
    0,
  );
  return Buffer.concat([len, ...body]);
}

/**
 * Writes `bytes` to an agent socket at once and reads replies until `count` have come or the
 * other side ends the connection. Returns the replies' types, and whether it was ended.
 */
async function agentExchange(socket: string, bytes: Buffer, count: number): Promise<{ types: number[]; ended: boolean }> {
  const conn = createConnection({ path: socket });
  let got = Buffer.alloc(0);
  const types: number[] = [];
  return new Promise((resolve, reject) => {
    conn.on('error', reject);
    conn.on('end', () => resolve({ types, ended: true }));
    conn.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      while (got.length >= 5 && got.length >= 4 + got.readUInt32BE(0)) {
        types.push(got[4]!);
        got = got.subarray(4 + got.readUInt32BE(0));
      }
      if (types.length === count) {
        conn.destroy();
        resolve({ types, ended: false });
      }
    });
    conn.write(bytes);
  });
}

/** The ssh-agent processes this test process started, by PID, with their argv (from /proc). */
async function childAgents(): Promise<{ pid: number; argv: string[] }[]> {
  const found: { pid: number; argv: string[] }[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
    const m = /^\d+ \((.*)\) \S+ (\d+) /.exec(st);
    if (!m || m[1] !== 'ssh-agent' || Number(m[2]) !== process.pid) continue;
    const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
    found.push({ pid: Number(name), argv });
  }
  return found;
}

/** The private agents SshAgents started: every child ssh-agent but the test's own. */
async function privateAgents(): Promise<{ pid: number; argv: string[] }[]> {
  return (await childAgents()).filter((a) => a.pid !== hostAgent?.pid);
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

let keys: string; // a directory of key files
let fingerprint: string;
let publicKey: string; // id_ed25519.pub without its comment, as hostKeys() gives it
let hostAgent: ChildProcess | undefined; // an agent of the "user's", as SSH_AUTH_SOCK would name
let hostSocket: string;

beforeAll(async () => {
  // No silent skip: without OpenSSH the feature cannot work, and the test says what to install.
  for (const tool of ['ssh-agent', 'ssh-add', 'ssh-keygen']) {
    const dirs = (process.env.PATH ?? '/usr/bin:/bin').split(delimiter);
    const found = await Promise.any(dirs.map((d) => access(join(d, tool), constants.X_OK))).then(
      () => true,
      () => false,
    );
    if (!found) throw new Error(`${tool} is missing: apt-get install -y openssh-client`);
  }
  keys = await tempDir('tsbuild-ssh-keys-');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tsbuild-test', '-f', join(keys, 'id_ed25519')]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-C', 'encrypted', '-f', join(keys, 'id_encrypted')]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'another', '-f', join(keys, 'id_another')]);
  publicKey = (await readFile(join(keys, 'id_ed25519.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
  fingerprint = (await execa('ssh-keygen', ['-l', '-f', join(keys, 'id_ed25519.pub')])).stdout.split(' ')[1]!;
  expect(fingerprint).toMatch(/^SHA256:/);

  // The host's agent, holding the same key.
  hostSocket = join(await tempDir('tsbuild-ssh-host-'), 'agent.sock');
  hostAgent = spawn('ssh-agent', ['-D', '-a', hostSocket], { stdio: 'ignore' });
  for (let i = 0; !(await exists(hostSocket)); i++) {
    if (i > 100) throw new Error('the test agent did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  await execa('ssh-add', ['-q', join(keys, 'id_ed25519')], { env: { SSH_AUTH_SOCK: hostSocket }, stdin: 'ignore' });
});

afterAll(async () => {
  const agent = hostAgent;
  if (agent?.pid === undefined || agent.exitCode !== null) return;
  const exit = new Promise((resolve) => agent.once('exit', resolve));
  process.kill(agent.pid, 'SIGTERM');
  await exit;
});

afterEach(async () => {
  // Every test closes what it opened: no private agent may outlive it.
  expect(await privateAgents()).toEqual([]);
});

describe('SshAgents', () => {
  test('a key file is served by a private agent: ssh-add -l through the proxy lists its fingerprint', async () => {
    const scratch = await tempDir();
    const agents = new SshAgents([parseSshFlag(`deploy=${join(keys, 'id_ed25519')}`)]);
    expect(agents.has('deploy')).toBe(true);
    expect(agents.has('default')).toBe(false);
    await agents.check();
    expect(await privateAgents()).toEqual([]); // check() starts nothing
    const fwd = await agents.forward('deploy', { dir: scratch });
    try {
      expect(dirname(fwd.socket)).toBe(scratch);
      const listed = await listKeys(fwd.socket);
      expect(listed.exitCode).toBe(0);
      expect(listed.stdout).toContain(fingerprint);
      expect(listed.stdout).toContain('tsbuild-test (ED25519)');
      // The private agent is read-only to a step too: no step removes the keys the next one needs.
      expect((await sshAdd(fwd.socket, ['-D'])).stderr).toBe('Failed to remove all identities.');
      expect((await listKeys(fwd.socket)).stdout).toContain(fingerprint);

      // One agent per ID for the build: a second forward reuses it.
      const again = await agents.forward('deploy', { dir: scratch });
      expect(again.socket).not.toBe(fwd.socket);
      expect((await listKeys(again.socket)).stdout).toContain(fingerprint);
      const started = await privateAgents();
      expect(started).toHaveLength(1);
      // Its argv holds a socket path and nothing of the key.
      const [agent] = started;
      expect(agent!.argv).toEqual(['ssh-agent', '-D', '-a', expect.stringMatching(/\/agent\.sock$/)]);
      const agentDir = dirname(agent!.argv[3]!);
      expect((await stat(agentDir)).mode & 0o777).toBe(0o700);

      await again.close();
      await again.close();
      expect(await exists(again.socket)).toBe(false);

      // close(): the agent, by its PID, is gone, and so are its directory and every proxy socket.
      await agents.close();
      expect(alive(agent!.pid)).toBe(false);
      expect(await exists(agentDir)).toBe(false);
      expect(await exists(fwd.socket)).toBe(false);
      await agents.close(); // twice is fine
      await expect(agents.forward('deploy', { dir: scratch })).rejects.toThrow('the SSH agents of this build are closed');
    } finally {
      await agents.close();
    }
  });

  test('an existing agent socket is proxied: `default` reads $SSH_AUTH_SOCK, `ID=SOCKET` names one', async () => {
    const scratch = await tempDir();
    const agents = new SshAgents([parseSshFlag('default'), parseSshFlag(`named=${hostSocket}`)], { env: { SSH_AUTH_SOCK: hostSocket } });
    try {
      await agents.check();
      for (const id of ['default', 'named']) {
        const fwd = await agents.forward(id, { dir: scratch });
        expect(fwd.socket).not.toBe(hostSocket);
        const [a, b] = await Promise.all([listKeys(fwd.socket), listKeys(fwd.socket)]);
        expect(a.stdout).toContain(fingerprint);
        expect(b.stdout).toContain(fingerprint);
      }
      // No private agent for a socket.
      expect(await privateAgents()).toEqual([]);
    } finally {
      await agents.close();
    }
    // The host's agent is untouched by close().
    expect((await listKeys(hostSocket)).stdout).toContain(fingerprint);
  });

  test('through the proxy the agent is read-only: it lists and signs; removing, adding, locking and unlocking are refused', async () => {
    const scratch = await tempDir();
    const agents = new SshAgents([parseSshFlag('default')], { env: { SSH_AUTH_SOCK: hostSocket } });
    try {
      const { socket } = await agents.forward('default', { dir: scratch });
      expect((await listKeys(socket)).stdout).toContain(fingerprint);

      // Signing: ssh-keygen -Y sign given only a public key signs with the agent's key. The
      // .pub is alone in its directory, so without the agent there is no key to sign with.
      const work = await tempDir();
      const pub = join(work, 'id_ed25519.pub');
      await copyFile(join(keys, 'id_ed25519.pub'), pub);
      await writeFile(join(work, 'data'), 'signed through the proxy\n');
      const sign = (env: Record<string, string>) =>
        execa('ssh-keygen', ['-Y', 'sign', '-f', pub, '-n', 'file', join(work, 'data')], {
          env,
          extendEnv: false,
          reject: false,
          stdin: 'ignore',
        });
      expect((await sign({})).exitCode).not.toBe(0);
      const signed = await sign({ SSH_AUTH_SOCK: socket });
      expect(signed.stderr).toContain('Write signature to');
      expect(signed.exitCode).toBe(0);
      await writeFile(join(work, 'allowed_signers'), `tsbuild-test ${publicKey}\n`);
      const verified = await execa(
        'ssh-keygen',
        ['-Y', 'verify', '-f', join(work, 'allowed_signers'), '-I', 'tsbuild-test', '-n', 'file', '-s', join(work, 'data.sig')],
        { inputFile: join(work, 'data'), reject: false },
      );
      expect(verified.stdout).toContain('Good "file" signature for tsbuild-test');

      // Changes are answered SSH_AGENT_FAILURE, which ssh-add reports as refused.
      const removeAll = await sshAdd(socket, ['-D']);
      expect([removeAll.exitCode, removeAll.stderr]).toEqual([1, 'Failed to remove all identities.']);
      const remove = await sshAdd(socket, ['-d', 'id_ed25519.pub']);
      expect([remove.exitCode, remove.stderr]).toEqual([1, 'Could not remove identity "id_ed25519.pub": agent refused operation']);
      const add = await sshAdd(socket, ['id_another']);
      expect([add.exitCode, add.stderr]).toEqual([1, 'Could not add identity "id_another": agent refused operation']);
      const lock = await sshAdd(socket, ['-x'], 'a lock passphrase');
      expect([lock.exitCode, lock.stderr]).toEqual([1, 'Failed to lock agent: agent refused operation']);
      expect(await hostKeys()).toEqual([publicKey]);
      expect((await listKeys(socket)).stdout).toContain(fingerprint); // not locked

      // Unlock too: the user locks their agent; a step that knows the passphrase cannot undo it.
      const locked = await sshAdd(hostSocket, ['-x'], 'a lock passphrase');
      expect([locked.exitCode, locked.stderr]).toEqual([0, 'Agent locked.']);
      try {
        const unlock = await sshAdd(socket, ['-X'], 'a lock passphrase');
        expect([unlock.exitCode, unlock.stderr]).toEqual([1, 'Failed to unlock agent: agent refused operation']);
        expect((await listKeys(hostSocket)).stdout).toBe('The agent has no identities.'); // still locked
      } finally {
        expect((await sshAdd(hostSocket, ['-X'], 'a lock passphrase')).stderr).toBe('Agent unlocked.');
      }
      expect(await hostKeys()).toEqual([publicKey]);
    } finally {
      await agents.close();
    }
  });

  test('requests sent at once are answered in order, the refused ones never reaching the agent; a message over 256 KiB ends the connection', async () => {
    const scratch = await tempDir();
    const agents = new SshAgents([parseSshFlag(`default=${hostSocket}`)]);
    try {
      const { socket } = await agents.forward('default', { dir: scratch });
      const requests = [
        agentMessage(11), // SSH_AGENTC_REQUEST_IDENTITIES
        agentMessage(9), // SSH_AGENTC_REMOVE_ALL_RSA_IDENTITIES: OpenSSH's agent removes every key
        agentMessage(19), // SSH2_AGENTC_REMOVE_ALL_IDENTITIES
        agentMessage(27, 'session-bind@openssh.com', 'hostkey', 'session id', 'signature'), // extension
        agentMessage(22, 'pw'), // SSH_AGENTC_LOCK
        agentMessage(20, 'reader', 'pin'), // SSH_AGENTC_ADD_SMARTCARD_KEY
        agentMessage(11),
      ];
      expect(await agentExchange(socket, Buffer.concat(requests), requests.length)).toEqual({
        types: [12, 5, 5, 5, 5, 5, 12],
        ended: false,
      });
      expect(await hostKeys()).toEqual([publicKey]);

      const tooLong = Buffer.alloc(8);
      tooLong.writeUInt32BE(256 * 1024 + 1, 0);
      tooLong[4] = 11;
      expect(await agentExchange(socket, tooLong, 1)).toEqual({ types: [], ended: true });
      expect(await agentExchange(socket, Buffer.from([0, 0, 0, 0]), 1)).toEqual({ types: [], ended: true });
      expect((await listKeys(socket)).stdout).toContain(fingerprint);

      // Asked directly, the agent does remove every key for the SSH-1 request: the filter is what
      // kept them above. (Last, so the key can be put back.)
      expect(await agentExchange(hostSocket, agentMessage(9), 1)).toEqual({ types: [6], ended: false });
      expect((await listKeys(hostSocket)).stdout).toBe('The agent has no identities.');
    } finally {
      await agents.close();
      await execa('ssh-add', ['-q', join(keys, 'id_ed25519')], { env: { SSH_AUTH_SOCK: hostSocket }, stdin: 'ignore' });
    }
    expect(await hostKeys()).toEqual([publicKey]);
  });

  test("the proxy socket gets the mount's mode and owner (0600 root:root by default); others cannot connect", async () => {
    const scratch = await tempDir();
    // Only for this test: other users may pass through the scratch dir to reach the socket.
    await chmod(scratch, 0o711);
    const agents = new SshAgents([parseSshFlag('default')], { env: { SSH_AUTH_SOCK: hostSocket } });
    try {
      const plain = await agents.forward('default', { dir: scratch });
      const st = await lstat(plain.socket);
      expect(st.isSocket()).toBe(true);
      expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o600, 0, 0]);

      const owned = await agents.forward('default', { dir: scratch, mode: 0o660, uid: 1234, gid: 5678 });
      const st2 = await lstat(owned.socket);
      expect([st2.mode & 0o7777, st2.uid, st2.gid]).toEqual([0o660, 1234, 5678]);
      expect((await listKeys(owned.socket, { uid: 1234, gid: 5678 })).stdout).toContain(fingerprint);
      expect((await listKeys(owned.socket, { uid: 4321, gid: 5678 })).stdout).toContain(fingerprint); // the group may (0660)
      const stranger = await listKeys(owned.socket, { uid: 4321, gid: 4321 });
      expect(stranger.exitCode).not.toBe(0);
      expect(stranger.stderr).toMatch(/Permission denied/);
      const notOwner = await listKeys(plain.socket, { uid: 1234, gid: 5678 });
      expect(notOwner.exitCode).not.toBe(0);
    } finally {
      await agents.close();
    }
  });

  test('an encrypted key is a clear error, at check() and at forward(), and starts no agent', async () => {
    const key = join(keys, 'id_encrypted');
    const agents = new SshAgents([parseSshFlag(`enc=${key}`)]);
    try {
      const message = `--ssh enc: ${key} is encrypted: tsbuild cannot ask for its passphrase; load it into an agent (ssh-add) and pass --ssh ID=$SSH_AUTH_SOCK`;
      await expect(agents.check()).rejects.toBeInstanceOf(InvalidInputError);
      await expect(agents.check()).rejects.toThrow(message);
      await expect(agents.forward('enc', { dir: await tempDir() })).rejects.toThrow(message);
      expect(await privateAgents()).toEqual([]);
    } finally {
      await agents.close();
    }
  });

  test('a key ssh-add refuses stops the agent started for it; close() after the failure is safe', async () => {
    const dir = await tempDir();
    const bogus = join(dir, 'bogus_key');
    await execa('sh', ['-c', `printf -- '-----BEGIN RSA PRIVATE KEY-----\\nbm90IGEga2V5\\n-----END RSA PRIVATE KEY-----\\n' > ${bogus}`]);
    const agents = new SshAgents([parseSshFlag(`bad=${join(keys, 'id_ed25519')},${bogus}`)]);
    try {
      await expect(agents.forward('bad', { dir })).rejects.toThrow(/^--ssh bad: ssh-add could not load a key/);
      expect(await privateAgents()).toEqual([]);
    } finally {
      await agents.close();
      await agents.close();
    }
  });

  test('what cannot be forwarded is a clear error naming the ID', async () => {
    const dir = await tempDir();
    const cases: [SshAgents, RegExp][] = [
      [new SshAgents([parseSshFlag('default')], { env: {} }), /^--ssh default: SSH_AUTH_SOCK is not set: start an agent/],
      [new SshAgents([parseSshFlag(`x=${join(dir, 'nope')}`)]), /^--ssh x: .*\/nope: no such socket or key file$/],
      [new SshAgents([parseSshFlag(`x=${dir}`)]), /^--ssh x: .* is a directory, not a socket or key file$/],
      [new SshAgents([parseSshFlag(`x=${hostSocket},${hostSocket}`)]), /^--ssh x: only one agent socket may be given$/],
      [
        new SshAgents([parseSshFlag(`x=${hostSocket},${join(keys, 'id_ed25519')}`)]),
        /^--ssh x: give an agent socket or key files, not both$/,
      ],
      [
        new SshAgents([parseSshFlag(`x=${join(keys, 'id_ed25519.pub')}`)]),
        /^--ssh x: .*id_ed25519\.pub is neither a private key nor a socket$/,
      ],
    ];
    for (const [agents, message] of cases) {
      await expect(agents.check()).rejects.toThrow(message);
      await expect(agents.forward(agents.has('x') ? 'x' : 'default', { dir })).rejects.toThrow(message);
      await agents.close();
    }
    expect(() => new SshAgents([parseSshFlag('a'), parseSshFlag('a=/x')])).toThrow('--ssh a is given twice: each ID names one agent');
    const none = new SshAgents([]);
    await expect(none.forward('default', { dir })).rejects.toThrow('no --ssh default was given');
    await none.close();
  });
});
