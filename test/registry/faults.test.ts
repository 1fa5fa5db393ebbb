// A pull from a registry that misbehaves, through a proxy in front of a real docker-registry:
// bodies cut short, servers that stall, refusals (401/403/404), overload (429/5xx) and reset
// connections. Each ends in one clear line or in a pull that succeeds after retrying where
// retrying makes sense; a failed pull leaves the store as it found it. (Digest mismatches and
// Ctrl-C during a download: test/interop/registry.test.ts; credentials never shown or stored in
// clear: test/interop/registry-auth.test.ts.)
import { randomBytes } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import type http from 'node:http';
import { join } from 'node:path';
import { startProxy, startRegistry, type TestProxy, type TestRegistry } from '../helpers/registry.js';
import { ok, rootWithBusybox, tempDir, tempRoot, tsbuild } from '../helpers/tsbuild.js';

type Env = Awaited<ReturnType<typeof tempRoot>>;

describe('registry faults during pull', () => {
  let registry: TestRegistry;
  let src: Env;
  let dockerConfig: string;
  let blobs: { digest: string; size: number }[];
  const roots: Env[] = [];
  const proxies: TestProxy[] = [];

  /** Pull through a proxy with the given interception; a short timeout so stalls end quickly. */
  async function pullThrough(intercept: (req: http.IncomingMessage, res: http.ServerResponse) => boolean) {
    const proxy = await startProxy(registry.host, { intercept });
    proxies.push(proxy);
    const t = await tempRoot();
    roots.push(t);
    const r = await tsbuild(t.root, ['pull', `${proxy.host}/app:1`], {
      env: { DOCKER_CONFIG: dockerConfig, TSBUILD_REGISTRY_TIMEOUT: '1' },
    });
    return { ...r, root: t.root, log: proxy.log };
  }

  /** No image, no layer, no snapshot, no temp file. */
  async function expectEmptyStore(root: string): Promise<void> {
    expect(await ok(root, ['images'])).toBe('REPOSITORY   TAG   IMAGE ID   CREATED   SIZE\n');
    const driver = (await readdir(join(root, 'image')))[0]!;
    expect(await readdir(join(root, 'image', driver, 'layerdb/sha256')).catch(() => [])).toEqual([]);
    expect(await readdir(join(root, 'image', driver, 'imagedb/content/sha256')).catch(() => [])).toEqual([]);
    expect(await readdir(join(root, 'tmp')).catch(() => [])).toEqual([]);
    expect((await readdir(join(root, driver)).catch(() => [] as string[])).filter((n) => n !== 'l' && n !== 'dir')).toEqual([]);
  }

  const isBlob = (req: http.IncomingMessage, digest?: string) =>
    req.method === 'GET' && (digest ? req.url!.endsWith(`/blobs/${digest}`) : req.url!.includes('/blobs/'));
  const isManifest = (req: http.IncomingMessage) => req.method === 'GET' && req.url!.includes('/manifests/');
  const oneLine = (stderr: string) => stderr.trimEnd().split('\n');

  beforeAll(async () => {
    registry = await startRegistry();
    dockerConfig = await tempDir('tsbuild-dockercfg-');
    src = await rootWithBusybox();
    const ctx = await tempDir();
    // Random bytes: the compressed layer stays about as large, so a body can be cut inside it.
    await writeFile(join(ctx, 'big'), randomBytes(300_000));
    await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY big /big\n');
    await ok(src.root, ['build', '-t', `${registry.host}/app:1`, ctx]);
    await rm(ctx, { recursive: true, force: true });
    await ok(src.root, ['push', `${registry.host}/app:1`], { env: { DOCKER_CONFIG: dockerConfig } });
    const manifest = JSON.parse(
      await new Promise<string>((resolve, reject) => {
        import('node:http').then(({ get }) =>
          get(
            `http://${registry.host}/v2/app/manifests/1`,
            { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json' } },
            (res) => {
              let text = '';
              res.on('data', (c) => (text += c));
              res.on('end', () => resolve(text));
            },
          ).on('error', reject),
        );
      }),
    ) as { layers: { digest: string; size: number }[] };
    blobs = manifest.layers;
  }, 120_000);

  afterAll(async () => {
    for (const p of proxies) await p.stop();
    for (const r of roots) await r.cleanup();
    await src?.cleanup();
    await registry?.stop();
    if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
  });

  test('a body cut short once is downloaded again, and the pull succeeds', async () => {
    const big = blobs.at(-1)!;
    let cut = 0;
    const r = await pullThrough((req, res) => {
      if (!isBlob(req, big.digest) || cut++ > 0) return false;
      res.writeHead(200, { 'Content-Length': String(big.size) });
      res.write(Buffer.alloc(1000));
      res.destroy();
      return true;
    });
    expect(r.exitCode).toBe(0);
    expect(r.log.filter((l) => l.url.endsWith(big.digest))).toHaveLength(2);
  }, 120_000);

  test('a body always cut short: a bounded number of attempts, one line, nothing stored', async () => {
    const big = blobs.at(-1)!;
    const r = await pullThrough((req, res) => {
      if (!isBlob(req, big.digest)) return false;
      res.writeHead(200, { 'Content-Length': String(big.size) });
      res.write(Buffer.alloc(1000)); // 1000 bytes of many more, then a clean close
      res.socket?.end();
      return true;
    });
    expect(r.exitCode).toBe(1);
    expect(oneLine(r.stderr)).toEqual([
      expect.stringMatching(
        new RegExp(`^Error: downloading blob ${big.digest}: (the transfer ended after 1000 of ${big.size} bytes|aborted)$`),
      ),
    ]);
    expect(r.log.filter((l) => l.url.endsWith(big.digest))).toHaveLength(3);
    await expectEmptyStore(r.root);
  }, 120_000);

  test('a server that stalls mid-body trips the (configurable) idle timeout; nothing stored', async () => {
    const big = blobs.at(-1)!;
    const r = await pullThrough((req, res) => {
      if (!isBlob(req, big.digest)) return false;
      res.writeHead(200, { 'Content-Length': String(big.size) });
      res.write(Buffer.alloc(10)); // and then nothing
      return true;
    });
    expect(r.exitCode).toBe(1);
    expect(oneLine(r.stderr)).toEqual([
      expect.stringMatching(/^Error: downloading blob sha256:[0-9a-f]{64}: no data for 1s \(idle timeout\)$/),
    ]);
    await expectEmptyStore(r.root);
  }, 120_000);

  test('a server that never answers the manifest request: a bounded wait, one line', async () => {
    const r = await pullThrough((req) => isManifest(req)); // intercepted, never answered
    expect(r.exitCode).toBe(1);
    expect(oneLine(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/idle timeout/);
    await expectEmptyStore(r.root);
  }, 120_000);

  test.each([
    [401, /unauthorized|authentication required/i],
    [403, /denied|forbidden/i],
    [404, /not found|unknown/i],
  ])(
    '%i on a blob is not retried: one line, nothing stored',
    async (status, message) => {
      const r = await pullThrough((req, res) => {
        if (!isBlob(req)) return false;
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(
          JSON.stringify({
            errors: [
              { code: status === 404 ? 'BLOB_UNKNOWN' : status === 401 ? 'UNAUTHORIZED' : 'DENIED', message: 'refused by the test' },
            ],
          }),
        );
        return true;
      });
      expect(r.exitCode).toBe(1);
      expect(oneLine(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(message);
      // One request per blob the pull asked for: none was repeated.
      const asked = r.log.filter((l) => l.url.includes('/blobs/')).map((l) => l.url);
      expect(new Set(asked).size).toBe(asked.length);
      await expectEmptyStore(r.root);
    },
    120_000,
  );

  test('429 with Retry-After and a reset connection are retried, and the pull succeeds', async () => {
    const seen = new Set<string>();
    const r = await pullThrough((req, res) => {
      const key = `${req.method} ${req.url}`;
      if (seen.has(key)) return false;
      seen.add(key);
      if (isManifest(req)) {
        res.writeHead(429, { 'Retry-After': '0', 'Content-Type': 'application/json' });
        res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
        return true;
      }
      if (isBlob(req)) {
        req.socket.destroy(); // ECONNRESET before any answer
        return true;
      }
      return false;
    });
    expect(r.exitCode).toBe(0);
    expect(r.log.filter((l) => l.status === 429).length).toBeGreaterThanOrEqual(1);
  }, 120_000);

  test('a registry that keeps answering 500: a bounded number of retries, then one line', async () => {
    const r = await pullThrough((req, res) => {
      if (!isManifest(req)) return false;
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"UNKNOWN","message":"internal trouble"}]}');
      return true;
    });
    expect(r.exitCode).toBe(1);
    expect(oneLine(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/internal trouble|500/);
    const tries = r.log.filter((l) => l.url.includes('/manifests/')).length;
    expect(tries).toBeGreaterThanOrEqual(2);
    expect(tries).toBeLessThanOrEqual(8);
    await expectEmptyStore(r.root);
  }, 120_000);

  test('a bad TSBUILD_REGISTRY_TIMEOUT is one line', async () => {
    const t = await tempRoot();
    roots.push(t);
    const r = await tsbuild(t.root, ['pull', `${registry.host}/app:1`], {
      env: { DOCKER_CONFIG: dockerConfig, TSBUILD_REGISTRY_TIMEOUT: 'soon' },
    });
    expect(r.exitCode).toBe(1);
    expect(oneLine(r.stderr)).toEqual(['Error: TSBUILD_REGISTRY_TIMEOUT must be a positive number of seconds, not "soon"']);
  });
});
