// ADD of http(s) URLs, against a server on 127.0.0.1 started here: what lands in the rootfs.
import { execa } from 'execa';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copyIntoRootfs, type CopyIntoRootfsOptions } from '../../src/builder/copy.js';
import { Downloads, parseHttpTime, redactUrl, urlFileName } from '../../src/builder/remote.js';
import { openContext } from '../../src/context/index.js';
import { removeTempDirs, tempDir, writeTree } from './tmp.js';
import { serve, startServer, type TestServer } from './httpserver.js';

const LAST_MODIFIED = 'Wed, 21 Oct 2015 07:28:00 GMT';
const LAST_MODIFIED_MS = Date.UTC(2015, 9, 21, 7, 28, 0);

let server: TestServer;
let tarball: Buffer;
const big = randomBytes(3 * 1024 * 1024 + 17);

beforeAll(async () => {
  const work = await tempDir();
  await writeTree(work, { 'pkg/file': 'inside' });
  await execa('tar', ['-czf', join(work, 'a.tar.gz'), '-C', work, 'pkg']);
  tarball = await readFile(join(work, 'a.tar.gz'));
  server = await startServer({
    '/files/hello.txt': serve('hello\n', { 'last-modified': LAST_MODIFIED }),
    '/plain': serve('no date\n'),
    '/bad-date': serve('odd date\n', { 'last-modified': 'yesterday' }),
    '/redirect': (_req, res) => res.writeHead(302, { location: '/files/hello.txt' }).end(),
    '/a.tar.gz': serve(tarball, { 'content-type': 'application/gzip' }),
    '/named': serve('disposition\n', { 'content-disposition': 'attachment; filename="other.txt"' }),
    '/': serve('root\n'),
    '/big.bin': (_req, res) => {
      // Chunked, in pieces: the download is streamed, not one buffer.
      res.writeHead(200);
      for (let i = 0; i < big.length; i += 256 * 1024) res.write(big.subarray(i, i + 256 * 1024));
      res.end();
    },
    '/stall': (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('only part of it');
    },
    '/hang': () => undefined,
    '/to-hang': (_req, res) => res.writeHead(302, { location: '/hang' }).end(),
    '/error': (_req, res) => res.writeHead(500).end('boom'),
    '/gone': (_req, res) => res.writeHead(301, { location: '/missing.txt' }).end(),
    '/loop': (_req, res) => res.writeHead(302, { location: '/loop' }).end(),
    '/private/report.txt': (req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from('me:s3cret').toString('base64')}`) return void res.writeHead(401).end();
      res.writeHead(200, { 'content-length': '7' }).end('secret\n');
    },
  });
});
afterAll(async () => {
  await server.close();
  await removeTempDirs();
});

async function setup(context: Record<string, string> = {}) {
  const ctxDir = await tempDir('tsbuild-ctx-');
  await writeTree(ctxDir, context);
  const rootfs = await tempDir('tsbuild-rootfs-');
  await writeTree(rootfs, { 'etc/': null });
  const ctx = await openContext(ctxDir);
  return {
    ctxDir,
    rootfs,
    add: (sources: string[], dest: string, more: Partial<CopyIntoRootfsOptions> = {}) =>
      copyIntoRootfs({ context: ctx, sources, dest, workdir: '/', rootfs, isAdd: true, ...more }),
  };
}

const url = (path: string) => `${server.base}${path}`;
const sha256 = (b: string | Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('ADD <url>', () => {
  it('downloads a file into a directory, named after the URL, 0600 root, mtime from Last-Modified', async () => {
    const s = await setup();
    await s.add([url('/files/hello.txt?x=1#frag')], '/dl/');
    const p = join(s.rootfs, 'dl/hello.txt');
    const st = await lstat(p); // before reading it, which may move atime
    expect(st.mode & 0o7777).toBe(0o600);
    expect(`${st.uid}:${st.gid}`).toBe('0:0');
    expect(st.mtimeMs).toBe(LAST_MODIFIED_MS);
    expect(st.atimeMs).toBe(LAST_MODIFIED_MS);
    expect(await readFile(p, 'utf8')).toBe('hello\n');
    expect((await lstat(join(s.rootfs, 'dl'))).mode & 0o7777).toBe(0o755);
  });

  it('writes to the destination itself when it does not end in / and is not a directory', async () => {
    const s = await setup();
    await s.add([url('/files/hello.txt')], '/opt/greeting');
    expect(await readFile(join(s.rootfs, 'opt/greeting'), 'utf8')).toBe('hello\n');
    await s.add([url('/files/hello.txt')], '/etc');
    expect(await readFile(join(s.rootfs, 'etc/hello.txt'), 'utf8')).toBe('hello\n');
  });

  it('gives the epoch as mtime when Last-Modified is missing or unreadable', async () => {
    const s = await setup();
    await s.add([url('/plain'), url('/bad-date')], '/d/');
    expect((await lstat(join(s.rootfs, 'd/plain'))).mtimeMs).toBe(0);
    expect((await lstat(join(s.rootfs, 'd/bad-date'))).mtimeMs).toBe(0);
  });

  it('follows redirects, keeping the name of the URL as written; ignores Content-Disposition', async () => {
    const s = await setup();
    await s.add([url('/redirect'), url('/named')], '/r/');
    expect(await readdir(join(s.rootfs, 'r'))).toEqual(['named', 'redirect']);
    expect(await readFile(join(s.rootfs, 'r/redirect'), 'utf8')).toBe('hello\n');
    expect(await readFile(join(s.rootfs, 'r/named'), 'utf8')).toBe('disposition\n');
  });

  it('names a download whose URL has no path __unnamed__', async () => {
    const s = await setup();
    await s.add([url('/')], '/u/');
    expect(await readdir(join(s.rootfs, 'u'))).toEqual(['__unnamed__']);
  });

  it('never unpacks an archive from a URL, while a local one in the same ADD is unpacked', async () => {
    const s = await setup();
    await writeFile(join(s.ctxDir, 'local.tar.gz'), tarball);
    await s.add([url('/a.tar.gz'), 'local.tar.gz'], '/x/');
    expect((await readdir(join(s.rootfs, 'x'))).sort()).toEqual(['a.tar.gz', 'pkg']);
    expect(await readFile(join(s.rootfs, 'x/a.tar.gz'))).toEqual(tarball);
    expect(await readFile(join(s.rootfs, 'x/pkg/file'), 'utf8')).toBe('inside');
  });

  it('applies --chown and --chmod to the file and to the directories it creates', async () => {
    const s = await setup();
    await s.add([url('/files/hello.txt')], '/srv/app/', { chown: { uid: 1000, gid: 1001 }, chmod: 0o640 });
    const st = await lstat(join(s.rootfs, 'srv/app/hello.txt'));
    expect(st.mode & 0o7777).toBe(0o640);
    expect(`${st.uid}:${st.gid}`).toBe('1000:1001');
    expect(`${(await lstat(join(s.rootfs, 'srv'))).uid}`).toBe('1000');
  });

  it('streams a large download and keeps every byte', async () => {
    const s = await setup();
    await s.add([url('/big.bin')], '/big');
    const got = await readFile(join(s.rootfs, 'big'));
    expect(got.length).toBe(big.length);
    expect(sha256(got)).toBe(sha256(big));
  });

  it('mixes URLs and context files; several sources need a directory', async () => {
    const s = await setup({ 'local.txt': 'L' });
    await s.add([url('/files/hello.txt'), 'local.txt'], '/m/');
    expect((await readdir(join(s.rootfs, 'm'))).sort()).toEqual(['hello.txt', 'local.txt']);
    await writeTree(s.rootfs, { file: 'f' });
    await expect(s.add([url('/files/hello.txt'), 'local.txt'], '/file')).rejects.toThrow('the destination must be a directory');
  });

  it('fails with one clear line on an HTTP error, writing nothing', async () => {
    const s = await setup();
    await expect(s.add([url('/missing.txt')], '/e/')).rejects.toThrow(`failed to GET ${url('/missing.txt')}: 404 Not Found`);
    await expect(s.add([url('/error')], '/e/')).rejects.toThrow(`failed to GET ${url('/error')}: 500 Internal Server Error`);
    expect(existsSync(join(s.rootfs, 'e'))).toBe(false);
  });

  it('fails when nothing listens, when no answer comes, and when the body stalls', async () => {
    const s = await setup();
    const closed = await startServer({});
    await closed.close(); // its port now refuses connections
    await expect(s.add([`${closed.base}/x`], '/e/')).rejects.toThrow(new RegExp(`^failed to GET ${closed.base}/x: .*ECONNREFUSED`));
    const downloads = new Downloads({ timeouts: { connectMs: 300, idleMs: 300 } });
    try {
      await expect(s.add([url('/hang')], '/e/', { downloads })).rejects.toThrow(
        `failed to GET ${url('/hang')}: no response within the time limit (0.3s)`,
      );
      await expect(s.add([url('/stall')], '/e/', { downloads })).rejects.toThrow(
        `failed to GET ${url('/stall')}: the download stalled (0.3s)`,
      );
    } finally {
      await downloads.close();
    }
    expect(existsSync(join(s.rootfs, 'e'))).toBe(false);
  });

  it('accepts only a 2xx at the end of the redirects, and names the URL as written', async () => {
    const s = await setup();
    await expect(s.add([url('/gone')], '/e/')).rejects.toThrow(`failed to GET ${url('/gone')}: 404 Not Found`);
    const before = server.hits.get('/loop') ?? 0;
    await expect(s.add([url('/loop')], '/e/')).rejects.toThrow(`failed to GET ${url('/loop')}: too many redirects`);
    expect((server.hits.get('/loop') ?? 0) - before).toBe(21); // the first request and 20 redirects
    const downloads = new Downloads({ timeouts: { connectMs: 300, idleMs: 5000 } });
    try {
      // The time limit covers the whole wait for an answer, redirects included.
      await expect(s.add([url('/to-hang')], '/e/', { downloads })).rejects.toThrow(
        `failed to GET ${url('/to-hang')}: no response within the time limit (0.3s)`,
      );
    } finally {
      await downloads.close();
    }
    expect(existsSync(join(s.rootfs, 'e'))).toBe(false);
  });

  it("sends a URL's user:password as basic auth, not to another host it is redirected to, and never shows it", async () => {
    const s = await setup();
    await s.add([url('/private/report.txt').replace('http://', 'http://me:s3cret@')], '/p/');
    expect(await readFile(join(s.rootfs, 'p/report.txt'), 'utf8')).toBe('secret\n');
    // The same file behind a redirect from another host: the credentials stay with that host.
    const other = await startServer({ '/away': (_req, res) => res.writeHead(302, { location: url('/private/report.txt') }).end() });
    try {
      const away = `${other.base}/away`.replace('http://', 'http://me:s3cret@');
      await expect(s.add([away], '/q/')).rejects.toThrow(
        `failed to GET ${other.base.replace('http://', 'http://me:xxxxx@')}/away: 401 Unauthorized`,
      );
    } finally {
      await other.close();
    }
  });

  it('stops when the build is cancelled', async () => {
    const s = await setup();
    const abort = new AbortController();
    const downloads = new Downloads({ signal: abort.signal });
    setTimeout(() => abort.abort(new Error('build cancelled')), 200);
    try {
      await expect(s.add([url('/hang')], '/e/', { downloads })).rejects.toThrow('build cancelled');
    } finally {
      await downloads.close();
    }
  });
});

describe('ADD --checksum', () => {
  it('accepts a download with the pinned digest (sha256, sha384, sha512)', async () => {
    const s = await setup();
    await s.add([url('/files/hello.txt')], '/a/', { checksum: sha256('hello\n') });
    for (const alg of ['sha384', 'sha512']) {
      const pin = `${alg}:${createHash(alg).update('hello\n').digest('hex')}`;
      await s.add([url('/files/hello.txt')], `/${alg}/`, { checksum: pin });
      expect(await readFile(join(s.rootfs, alg, 'hello.txt'), 'utf8')).toBe('hello\n');
    }
    expect(await readFile(join(s.rootfs, 'a/hello.txt'), 'utf8')).toBe('hello\n');
  });

  it('fails on a digest mismatch, writing nothing', async () => {
    const s = await setup();
    const wrong = sha256('something else');
    await expect(s.add([url('/files/hello.txt')], '/a/', { checksum: wrong })).rejects.toThrow(
      `digest mismatch for ${url('/files/hello.txt')}: ${sha256('hello\n')} (expected: ${wrong})`,
    );
    expect(existsSync(join(s.rootfs, 'a'))).toBe(false);
  });

  it('is refused as BuildKit refuses it', async () => {
    const s = await setup({ 'local.txt': 'L' });
    const pin = sha256('hello\n');
    await expect(s.add(['local.txt'], '/a/', { checksum: pin })).rejects.toThrow('checksum requires HTTP(S) or Git sources');
    await expect(s.add([url('/never'), url('/files/hello.txt')], '/a/', { checksum: pin })).rejects.toThrow(
      "checksum can't be specified for multiple sources",
    );
    await expect(s.add([url('/never')], '/a/', { checksum: pin, isAdd: false })).rejects.toThrow("source can't be a URL for COPY");
    await expect(s.add([url('/never')], '/a/', { checksum: 'abc' })).rejects.toThrow('invalid checksum digest format');
    await expect(s.add([url('/never')], '/a/', { checksum: 'sha256:abc' })).rejects.toThrow('invalid checksum digest format');
    await expect(s.add([url('/never')], '/a/', { checksum: 'md5:0123' })).rejects.toThrow('unsupported digest algorithm');
    expect(server.hits.get('/never') ?? 0).toBe(0);
  });
});

describe('URL helpers', () => {
  it('names downloads as dockerfile2llb and pathutil.SafeFileName do', () => {
    expect(urlFileName('https://h/a/b/c.tar.gz?x=/y#z')).toBe('c.tar.gz');
    expect(urlFileName('https://h/dir/')).toBe('dir');
    expect(urlFileName('https://h')).toBe('__unnamed__');
    expect(urlFileName('https://h/')).toBe('__unnamed__');
    expect(urlFileName('https://h/a%20b')).toBe('a b');
    expect(urlFileName('https://h/x/%2e%2e')).toBe('download');
    expect(urlFileName('https://h/a%0Ab')).toBe('download');
    expect(urlFileName('https://h/bad%zz')).toBe('__unnamed__');
  });

  it("reads the three date formats of Go's http.ParseTime, and nothing else", () => {
    expect(parseHttpTime('Sun, 06 Nov 1994 08:49:37 GMT')?.getTime()).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpTime('Sunday, 06-Nov-94 08:49:37 GMT')?.getTime()).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpTime('Sun Nov  6 08:49:37 1994')?.getTime()).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpTime('Sun, 06 Nov 1994 08:49:37 UTC')).toBeUndefined();
    expect(parseHttpTime('Sun, 31 Feb 1994 08:49:37 GMT')).toBeUndefined();
    expect(parseHttpTime('1994-11-06T08:49:37Z')).toBeUndefined();
  });

  it('hides passwords in messages', () => {
    expect(redactUrl('https://user:secret@h/x')).toBe('https://user:xxxxx@h/x');
    expect(redactUrl('https://h/x:y@z')).toBe('https://h/x:y@z');
  });
});
