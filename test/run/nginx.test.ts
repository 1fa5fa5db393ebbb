// The end-to-end case a user expects: `tsbuild -t nginx examples/nginx` on a debootstrapped
// Debian base, then `tsbuild run --network host` serves the welcome page on a loopback port
// until it is stopped by its PID.
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI, mountsBelow, ok, REPO, tempRoot } from '../helpers/tsbuild.js';

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function fetchWithin(url: string, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      return await res.text();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`no answer from ${url} within ${ms} ms: ${String(last)}`);
}

test('examples/nginx builds on debian:bookworm, passes analyze --ci, and serves its page through tsbuild run', async () => {
  const env = await tempRoot();
  try {
    const made = await execa('bash', [join(REPO, 'scripts/debian-image.sh'), '--root', env.root], { reject: false, all: true });
    if (made.exitCode !== 0) throw new Error(`scripts/debian-image.sh failed (needs debootstrap and Debian's archive):\n${made.all}`);
    await ok(env.root, ['build', '--progress', 'plain', '-t', 'nginx', join(REPO, 'examples/nginx')]);
    const [img] = JSON.parse(await ok(env.root, ['inspect', 'nginx']));
    expect(img.Config.Cmd).toEqual(['nginx', '-g', 'daemon off;']);
    expect(img.Config.ExposedPorts).toEqual({ '80/tcp': {} });
    // Our own example passes our own gate: the base ships no apt lists or .deb files (as
    // Docker's official debian images), and the RUN cleans up after apt.
    for (const image of ['debian:bookworm', 'nginx']) {
      const gate = JSON.parse(await ok(env.root, ['analyze', '--ci', '--json', image]));
      expect({ image, pass: gate.ci.pass, rules: gate.ci.rules }).toMatchObject({ image, pass: true });
      expect(gate.hints.filter((h: { kind: string }) => h.kind === 'package-cache')).toEqual([]);
    }
    const leftover = await ok(env.root, ['run', 'nginx', 'sh', '-c', 'ls /var/lib/apt/lists /var/cache/apt/archives; ls /var/cache/apt']);
    expect(leftover.split('\n').filter((l) => l.endsWith('.deb') || l.endsWith('_Packages') || l.endsWith('.bin'))).toEqual([]);

    const port = await freePort();
    const script = [
      `sed -i -e 's/listen 80 default_server;/listen 127.0.0.1:${port} default_server;/' -e '/listen \\[::\\]:80/d' /etc/nginx/sites-enabled/default`,
      `exec nginx -g 'daemon off;'`,
    ].join(' && ');
    const server = execa('node', [CLI, 'run', '--root', env.root, '--network', 'host', 'nginx', 'sh', '-c', script], {
      reject: false,
      all: true,
    });
    try {
      const page = await fetchWithin(`http://127.0.0.1:${port}/`, 30_000);
      expect(page).toContain('Welcome to nginx!');
    } finally {
      process.kill(server.pid!, 'SIGTERM');
    }
    const done = await server;
    expect(done.exitCode).toBe(143);
    await expect(fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
    expect(await mountsBelow(env.root)).toEqual([]);
  } finally {
    await env.cleanup();
  }
}, 1_200_000);
