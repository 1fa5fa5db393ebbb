// Registries that want credentials: distribution with htpasswd (Basic) and a Docker-style token
// server in front of one (Bearer). login checks credentials before keeping them (0600, in
// $DOCKER_CONFIG/config.json), push and pull use them, logout forgets them, anonymous access
// fails in one line — and the password shows up in no output and no file but config.json's
// base64.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry, startTokenProxy, type TestRegistry, type TokenProxy } from '../helpers/registry.js';
import { rootWithBusybox, tempDir, tempRoot, tsbuild, type CliResult } from '../helpers/tsbuild.js';

type Env = Awaited<ReturnType<typeof tempRoot>>;

/** Every file below `dir` whose bytes contain `needle`. */
async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && (await readFile(p)).includes(needle)) out.push(p);
    }
  };
  await walk(dir);
  return out;
}

describe('registries with authentication', () => {
  let src: Env;
  const roots: Env[] = [];
  const outputs: CliResult[] = [];
  let dockerConfig: string;
  const cli = async (root: string, args: string[], input?: string): Promise<CliResult> => {
    const r = await tsbuild(root, args, { env: { DOCKER_CONFIG: dockerConfig }, ...(input !== undefined ? { input } : {}) });
    outputs.push(r);
    return r;
  };
  const must = async (root: string, args: string[], input?: string): Promise<string> => {
    const r = await cli(root, args, input);
    if (r.exitCode !== 0) throw new Error(`tsbuild ${args.join(' ')} exited ${r.exitCode}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const freshRoot = async (): Promise<string> => {
    const t = await tempRoot();
    roots.push(t);
    return t.root;
  };
  const imageId = async (root: string, ref: string): Promise<string> => JSON.parse(await must(root, ['inspect', ref]))[0].Id;
  const secrets: string[] = [];

  beforeAll(async () => {
    src = await rootWithBusybox();
    dockerConfig = await tempDir('tsbuild-dockercfg-');
  });
  afterAll(async () => {
    for (const r of roots) await r.cleanup();
    await src?.cleanup();
    if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
  });

  describe('Basic (htpasswd)', () => {
    const user = 'alice';
    const password = `Basic-${randomBytes(8).toString('hex')}`;
    let registry: TestRegistry;
    beforeAll(async () => {
      secrets.push(password);
      registry = await startRegistry({ basic: { user, password } });
    });
    afterAll(async () => registry?.stop());

    test('anonymous: pull and push are refused in one line', async () => {
      const pull = await cli(await freshRoot(), ['pull', `${registry.host}/app:1`]);
      expect(pull.exitCode).toBe(1);
      expect(pull.stderr).toBe(
        `Error: pull access denied for ${registry.host}/app, repository does not exist or may require authorization: unauthorized: authentication required\n`,
      );
      await must(src.root, ['tag', 'busybox', `${registry.host}/app:1`]);
      const push = await cli(src.root, ['push', `${registry.host}/app:1`]);
      expect(push.exitCode).toBe(1);
      expect(push.stderr).toBe(
        `Error: push access denied for ${registry.host}/app (no credentials for ${registry.host}: tsbuild login ${registry.host}): unauthorized: authentication required\n`,
      );
    });

    test('a wrong password is refused and nothing is kept', async () => {
      const r = await cli(src.root, ['login', '-u', user, '--password-stdin', registry.host], 'wrong-password\n');
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toBe(`Error: login attempt to http://${registry.host}/v2/ failed with status: 401 Unauthorized\n`);
      await expect(stat(join(dockerConfig, 'config.json'))).rejects.toThrow(/ENOENT/);
    });

    test('login, push, pull into an empty store, logout', async () => {
      const login = await cli(src.root, ['login', '-u', user, '--password-stdin', registry.host], `${password}\n`);
      expect(login.exitCode).toBe(0);
      expect(login.stdout).toBe('Login Succeeded\n');
      const file = join(dockerConfig, 'config.json');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      const cfg = JSON.parse(await readFile(file, 'utf8'));
      expect(cfg.auths[registry.host]).toEqual({ auth: Buffer.from(`${user}:${password}`).toString('base64') });

      await must(src.root, ['push', `${registry.host}/app:1`]);
      const dst = await freshRoot();
      await must(dst, ['pull', `${registry.host}/app:1`]);
      expect(await imageId(dst, `${registry.host}/app:1`)).toBe(await imageId(src.root, 'busybox'));

      expect(await must(src.root, ['logout', registry.host])).toBe(`Removing login credentials for ${registry.host}\n`);
      expect(JSON.parse(await readFile(file, 'utf8')).auths).toEqual({});
      expect(await must(src.root, ['logout', registry.host])).toBe(`Not logged in to ${registry.host}\n`);
      const again = await cli(await freshRoot(), ['pull', `${registry.host}/app:1`]);
      expect(again.stderr).toMatch(/^Error: pull access denied for /);
    });

    test('-p works too, with docker’s warning', async () => {
      const r = await cli(src.root, ['login', '-u', user, '-p', password, registry.host]);
      expect(r.exitCode).toBe(0);
      expect(r.stderr).toContain('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
      await must(src.root, ['logout', registry.host]);
    });
  });

  describe('Bearer (token server)', () => {
    const user = 'bob';
    const password = `Bearer-${randomBytes(8).toString('hex')}`;
    let registry: TestRegistry;
    let proxy: TokenProxy;
    beforeAll(async () => {
      secrets.push(password);
      registry = await startRegistry();
      proxy = await startTokenProxy(registry.host, { user, password });
    });
    afterAll(async () => {
      await proxy?.stop();
      await registry?.stop();
    });

    test('anonymous pull gets a token without rights, and a one-line refusal', async () => {
      const r = await cli(await freshRoot(), ['pull', `${proxy.host}/team/app:1`]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toBe(
        `Error: pull access denied for ${proxy.host}/team/app, repository does not exist or may require authorization: unauthorized: authentication required\n`,
      );
      expect(proxy.tokenRequests.at(-1)).toEqual({ scopes: ['repository:team/app:pull'], authenticated: false });
    });

    test('login asks the token server; a wrong password is refused', async () => {
      const bad = await cli(src.root, ['login', '-u', user, '--password-stdin', proxy.host], 'nope\n');
      expect(bad.exitCode).toBe(1);
      expect(bad.stderr).toBe(`Error: login attempt to http://${proxy.host}/v2/ failed with status: 401 Unauthorized\n`);
      const good = await cli(src.root, ['login', '-u', user, '--password-stdin', proxy.host], `${password}\n`);
      expect(good.stdout).toBe('Login Succeeded\n');
      expect(proxy.tokenRequests.at(-1)).toEqual({ scopes: [], authenticated: true });
    });

    test('push asks for pull,push; a second repository mounts with pull on the first; pull works', async () => {
      const ref = `${proxy.host}/team/app:1`;
      await must(src.root, ['tag', 'busybox', ref]);
      await must(src.root, ['push', ref]);
      expect(proxy.tokenRequests).toContainEqual({ scopes: ['repository:team/app:pull,push'], authenticated: true });

      const copy = `${proxy.host}/team/copy:1`;
      await must(src.root, ['tag', 'busybox', copy]);
      const out = await must(src.root, ['push', copy]);
      expect(out).toMatch(/: Mounted from team\/app$/m);
      expect(proxy.tokenRequests).toContainEqual({
        scopes: ['repository:team/copy:pull,push', 'repository:team/app:pull'],
        authenticated: true,
      });

      const dst = await freshRoot();
      await must(dst, ['pull', ref]);
      expect(await imageId(dst, ref)).toBe(await imageId(src.root, 'busybox'));
    });

    test('a token that expires while a layer streams: the upload starts again in a new session, and the push succeeds', async () => {
      // A layer no repository has yet, so that it is compressed and streamed (busybox's is mounted).
      const ctx = await tempDir();
      await writeFile(join(ctx, 'f'), randomBytes(64 * 1024));
      await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY f /f\n');
      await must(src.root, ['build', '-q', '-t', 'expiry', ctx]);
      await rm(ctx, { recursive: true, force: true });
      const ref = `${proxy.host}/team/expiry:1`;
      await must(src.root, ['tag', 'expiry', ref]);
      const isPatch = (r: { method?: string | undefined; url?: string | undefined }) =>
        r.method === 'PATCH' && r.url!.includes('/team/expiry/blobs/uploads/');
      proxy.expireTokensAt(isPatch);
      await must(src.root, ['push', ref]);
      // The first PATCH was refused; its body cannot be sent again, so a new session took it.
      expect(proxy.log.filter(isPatch).map((r) => r.status)).toEqual([401, 202]);
      const dst = await freshRoot();
      await must(dst, ['pull', ref]);
      expect(await imageId(dst, ref)).toBe(await imageId(src.root, 'expiry'));
    });
  });

  test('no password appears in any output, store file or temp file; config.json holds only base64', async () => {
    expect(secrets).toHaveLength(2);
    for (const secret of secrets) {
      for (const r of outputs) {
        expect(r.stdout).not.toContain(secret);
        expect(r.stderr).not.toContain(secret);
      }
      for (const root of [src.root, ...roots.map((r) => r.root), dockerConfig]) expect(await filesContaining(root, secret)).toEqual([]);
    }
    // Only config.json in the Docker config dir: no temp copies left beside it.
    expect(await readdir(dockerConfig)).toEqual(['config.json']);
  });
});
