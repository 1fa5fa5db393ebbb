// The build flags for what RUN steps may reach (--secret, --ssh, --network, --add-host, --allow),
// through the CLI: a bad value, or a secret or agent that is not there, is one `Error:` line and
// a non-zero exit before anything is built, and the store is left exactly as it was. Good values
// do not stand in a build's way.
import { readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

/** What a build would add to the store: image configs, snapshot dirs, temp files. */
async function storeEntries(root: string): Promise<string[]> {
  const list = async (d: string) => (await readdir(join(root, d)).catch(() => [] as string[])).sort().map((n) => `${d}/${n}`);
  return [...(await list('overlay2')), ...(await list('image/overlay2/imagedb/content/sha256')), ...(await list('tmp'))];
}

describe('bad build flags', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  let ctx: string;
  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
    ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo built > /built\n');
  });
  afterAll(async () => env?.cleanup());

  /** Runs `tsbuild build FLAGS ctx`; expects one error line matching `pattern` and an untouched store. */
  async function refused(flags: string[], pattern: RegExp, environment: Record<string, string> = {}): Promise<void> {
    const before = await storeEntries(env.root);
    const r = await tsbuild(env.root, ['build', ...flags, ctx], { env: environment });
    expect(r.exitCode).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
    expect(r.stdout).not.toMatch(/STEP/);
    expect(await storeEntries(env.root)).toEqual(before);
  }

  test('--secret bogus', async () => {
    await refused(['--secret', 'bogus'], /^Error: invalid --secret "bogus": "bogus" is not KEY=VALUE \(want id=ID\[,src=FILE\|env=VAR\]/);
  });

  test('--secret without an id, or with an unknown key', async () => {
    await refused(['--secret', 'src=/etc/hostname'], /^Error: invalid --secret "src=\/etc\/hostname": id=ID is required/);
    await refused(['--secret', 'id=a,mode=0400'], /^Error: invalid --secret "id=a,mode=0400": unknown key "mode"/);
  });

  test('--secret naming a file or a variable that is not there', async () => {
    const missing = join(ctx, 'no-such-secret');
    await refused(['--secret', `id=tok,src=${missing}`], new RegExp(`^Error: secret "tok": cannot read ${missing}: no such file$`));
    await refused(
      ['--secret', 'id=tok,env=TSBUILD_TEST_UNSET'],
      /^Error: secret "tok": environment variable TSBUILD_TEST_UNSET is not set$/,
    );
  });

  test('--ssh with an empty path, a missing key, or default without an agent', async () => {
    await refused(['--ssh', 'a=k1,,k2'], /^Error: invalid --ssh "a=k1,,k2": an empty path/);
    await refused(['--ssh', `a=${join(ctx, 'no-key')}`], /^Error: --ssh a: .*no-key: no such socket or key file$/);
    await refused(['--ssh', 'default'], /^Error: --ssh default: SSH_AUTH_SOCK is not set/, { SSH_AUTH_SOCK: '' });
    await refused(['--ssh', 'a', '--ssh', 'a=/x'], /^Error: --ssh a is given twice/);
  });

  test('--add-host nohost', async () => {
    await refused(['--add-host', 'nohost'], /^Error: invalid --add-host "nohost": want NAME:IP or NAME=IP$/);
    await refused(['--add-host', 'db:not-an-ip'], /^Error: invalid --add-host "db:not-an-ip": "not-an-ip" is not an IPv4 or IPv6 address$/);
  });

  test('--allow frob', async () => {
    await refused(['--allow', 'frob'], /^Error: invalid --allow "frob": use network.host or security.insecure$/);
  });

  test('--network bridge', async () => {
    await refused(['--network', 'bridge'], /^Error: invalid --network "bridge": use default, none or host$/);
  });

  test('good values of every flag do not stand in the way of a build', async () => {
    await writeFile(join(ctx, 'token'), 'not printed');
    // Any Unix socket passes the up-front check (an agent is first spoken to by a RUN that mounts it).
    const sock = join(await tempDir(), 'agent.sock');
    const server: Server = createServer((c) => c.destroy());
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      const r = await tsbuild(
        env.root,
        [
          'build',
          '--progress=plain',
          ...['--secret', `id=tok,src=${join(ctx, 'token')}`, '--secret', 'id=TSBUILD_TEST_TOKEN'],
          ...['--ssh', `default=${sock}`, '--ssh', 'other'],
          ...['--network', 'default', '--add-host', 'db:10.0.0.5', '--add-host', 'v6=[::1]', '--allow', 'network.host'],
          ...['-t', 'flags:ok', ctx],
        ],
        { env: { TSBUILD_TEST_TOKEN: 'also not printed', SSH_AUTH_SOCK: sock } },
      );
      expect(r.stderr).toBe('');
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toMatch(/Successfully tagged flags:ok/);
      expect(r.stdout).not.toMatch(/not printed/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
