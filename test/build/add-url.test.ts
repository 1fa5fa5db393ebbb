// ADD of a URL in a real build: downloaded from a server on 127.0.0.1, named after the URL,
// 0600 with Last-Modified as its mtime, pinned by --checksum, and cached by content.
import { createServer, type Server } from 'node:http';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ok, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

const BODY = 'downloaded content\n';
const LAST_MODIFIED = 'Tue, 14 Nov 2023 22:13:20 GMT'; // 1700000000
let server: Server;
let base: string;
let hits = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    hits++;
    if (req.url === '/files/data.txt') {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Last-Modified': LAST_MODIFIED });
      res.end(BODY);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => new Promise<void>((r) => server.close(() => r())));

test('ADD URL, ADD --checksum, and a 404', async () => {
  const env = await rootWithBusybox('overlay2');
  try {
    const sum = `sha256:${createHash('sha256').update(BODY).digest('hex')}`;
    const ctx = await tempDir();
    await writeFile(
      join(ctx, 'Dockerfile'),
      `FROM busybox\nADD ${base}/files/data.txt /srv/\nADD --checksum=${sum} ${base}/files/data.txt /pinned.txt\n`,
    );
    await ok(env.root, ['build', '-t', 'addurl', ctx]);
    const r = await tsbuild(env.root, ['run', 'addurl', 'sh', '-c', "cat /srv/data.txt; stat -c '%a %Y' /srv/data.txt; cat /pinned.txt"]);
    expect(r.stdout).toBe(`${BODY}600 1700000000\n${BODY}`);

    const bad = await tempDir();
    await writeFile(join(bad, 'Dockerfile'), `FROM busybox\nADD --checksum=sha256:${'0'.repeat(64)} ${base}/files/data.txt /x\n`);
    const mismatch = await tsbuild(env.root, ['build', bad]);
    expect(mismatch.exitCode).toBe(1);
    expect(mismatch.stderr).toMatch(/^Error: Dockerfile:2: .*digest mismatch/);

    await writeFile(join(bad, 'Dockerfile'), `FROM busybox\nADD ${base}/nothing-here /x\n`);
    const missing = await tsbuild(env.root, ['build', bad]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/^Error: Dockerfile:2: .*404/);
    expect(hits).toBeGreaterThan(0);
  } finally {
    await env.cleanup();
  }
});
