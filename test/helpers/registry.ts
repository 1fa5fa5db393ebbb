// Registries for tests, all on 127.0.0.1: Debian's docker-registry (distribution 2.8) with its
// storage in a temp dir, and a small Node proxy in front of it that can log, corrupt, fail or
// demand Bearer tokens (with its own token endpoint), for what the real registry cannot be
// made to do.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

const BINARY = '/usr/bin/docker-registry';

export interface RequestRecord {
  readonly method: string;
  /** Path and query, e.g. `/v2/app/blobs/uploads/?mount=...`. */
  readonly url: string;
  readonly status: number;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`, for references. */
  readonly host: string;
  readonly dir: string;
  /** Requests the registry served, from its access log. */
  requests(): Promise<RequestRecord[]>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/**
 * The htpasswd line distribution accepts (bcrypt only), made with the C library's crypt(3)
 * through perl, which every Debian has (perl-base is essential): no apache2-utils needed.
 */
async function htpasswdLine(user: string, password: string): Promise<string> {
  const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(21);
  // The 22nd salt character carries only 2 bits; these four are the valid ones.
  const salt = [...bytes].map((b) => alphabet[b % 64]).join('') + '.Oeu'[bytes[0]! % 4];
  const r = await execa('perl', ['-e', 'print crypt($ENV{PW}, $ENV{SALT})'], { env: { PW: password, SALT: `$2b$05$${salt}` } });
  if (!r.stdout.startsWith('$2b$')) throw new Error('crypt(3) did not produce a bcrypt hash');
  return `${user}:${r.stdout}\n`;
}

async function waitForRegistry(url: string, proc: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null)
      throw new Error(`docker-registry exited with ${proc.exitCode}:\n${await readFile(log, 'utf8').catch(() => '')}`);
    const status = await new Promise<number>((resolve) => {
      http
        .get(url, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', () => resolve(0));
    });
    if (status === 200 || status === 401) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not answer at ${url}:\n${await readFile(log, 'utf8').catch(() => '')}`);
}

/** Starts `docker-registry serve` on a free loopback port; with `basic`, behind htpasswd auth. */
export async function startRegistry(opts: { basic?: { user: string; password: string } } = {}): Promise<TestRegistry> {
  try {
    await access(BINARY);
  } catch {
    throw new Error(`${BINARY} is missing: apt-get install -y docker-registry (scripts/setup.sh installs it)`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-registry-'));
  const port = await freePort();
  const auth = opts.basic ? `auth:\n  htpasswd:\n    realm: tsbuild-test\n    path: ${join(dir, 'htpasswd')}\n` : '';
  if (opts.basic) await writeFile(join(dir, 'htpasswd'), await htpasswdLine(opts.basic.user, opts.basic.password));
  const config = `version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:${port}
${auth}`;
  await writeFile(join(dir, 'config.yml'), config);
  const log = join(dir, 'registry.log');
  const { openSync, closeSync } = await import('node:fs');
  const fd = openSync(log, 'a');
  const proc = spawn(BINARY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const host = `127.0.0.1:${port}`;
  try {
    await waitForRegistry(`http://${host}/v2/`, proc, log);
  } catch (err) {
    proc.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    host,
    dir,
    async requests() {
      const text = await readFile(log, 'utf8');
      const out: RequestRecord[] = [];
      // Apache-style access log lines: ... "HEAD /v2/app/blobs/sha256:... HTTP/1.1" 200 0 ...
      for (const m of text.matchAll(/"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/g))
        out.push({ method: m[1]!, url: m[2]!, status: Number(m[3]) });
      return out;
    },
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        process.kill(proc.pid!, 'SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 5000)))]);
        clearTimeout(timer);
        if (proc.exitCode === null && proc.signalCode === null) {
          process.kill(proc.pid!, 'SIGKILL');
          await exited;
        }
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ProxyHooks {
  /** Like intercept, but before the request body is read: a server that stops reading an upload. */
  interceptHead?(req: http.IncomingMessage, res: http.ServerResponse): boolean;
  /** Answers a request itself instead of forwarding it; returns true if it did. */
  intercept?(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): boolean | Promise<boolean>;
  /** Rewrites a forwarded response body (it is buffered whole: test blobs are small). */
  rewriteBody?(req: http.IncomingMessage, status: number): ((body: Buffer) => Buffer) | undefined;
  /** Changes the request before it is forwarded (e.g. drops a mount the token does not allow). */
  rewriteUrl?(req: http.IncomingMessage): string;
}

export interface TestProxy {
  readonly host: string;
  /** Every request the proxy received, in order. */
  readonly log: RequestRecord[];
  stop(): Promise<void>;
}

/** A proxy on 127.0.0.1 in front of `upstream` (host:port). The Host header is kept, so the registry's Locations name the proxy. */
export async function startProxy(upstream: string, hooks: ProxyHooks = {}): Promise<TestProxy> {
  const log: RequestRecord[] = [];
  const [uhost, uport] = upstream.split(':') as [string, string];
  const server = http.createServer(async (req, res) => {
    if (hooks.interceptHead?.(req, res)) {
      log.push({ method: req.method ?? '', url: req.url ?? '', status: 0 });
      return;
    }
    const chunks: Buffer[] = [];
    try {
      for await (const c of req) chunks.push(c as Buffer);
    } catch {
      return; // the client went away mid-request (a push stopping its other uploads): nothing to answer
    }
    const body = Buffer.concat(chunks);
    const record = { method: req.method ?? '', url: req.url ?? '', status: 0 };
    log.push(record);
    res.on('finish', () => {
      record.status = res.statusCode;
    });
    try {
      if (hooks.intercept && (await hooks.intercept(req, res, body))) return;
      const headers = { ...req.headers };
      delete headers.authorization;
      const up = http.request(
        { host: uhost, port: Number(uport), method: req.method, path: hooks.rewriteUrl?.(req) ?? req.url, headers },
        (ures) => {
          const rewrite = hooks.rewriteBody?.(req, ures.statusCode ?? 0);
          if (!rewrite) {
            res.writeHead(ures.statusCode ?? 502, ures.headers);
            ures.pipe(res);
            return;
          }
          const parts: Buffer[] = [];
          ures.on('data', (c: Buffer) => parts.push(c));
          ures.on('end', () => {
            const out = rewrite(Buffer.concat(parts));
            res.writeHead(ures.statusCode ?? 502, { ...ures.headers, 'content-length': String(out.length) });
            res.end(out);
          });
        },
      );
      up.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      up.end(body);
    } catch {
      res.writeHead(500);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    log,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface TokenProxy extends TestProxy {
  /** Requests to the token endpoint, with whether they carried valid credentials. */
  readonly tokenRequests: { scopes: string[]; authenticated: boolean }[];
  /** Every token given so far expires when the next request `match` accepts arrives (its body read). */
  expireTokensAt(match: (req: http.IncomingMessage) => boolean): void;
}

/**
 * Docker's token auth in front of a registry: /v2/ answers `WWW-Authenticate: Bearer realm=...`
 * until a request carries a token from /token that grants the repository's scope. The token
 * endpoint grants pull and push to `user` (Basic credentials) and nothing to anyone else.
 */
export async function startTokenProxy(upstream: string, user: { user: string; password: string }): Promise<TokenProxy> {
  const tokens = new Map<string, Set<string>>();
  const tokenRequests: TokenProxy['tokenRequests'] = [];
  let expireAt: ((req: http.IncomingMessage) => boolean) | undefined;
  let realm = '';
  const service = 'tsbuild-test';
  const granted = (req: http.IncomingMessage): Set<string> | undefined => {
    const h = req.headers.authorization ?? '';
    return h.startsWith('Bearer ') ? tokens.get(h.slice(7)) : undefined;
  };
  const challenge = (res: http.ServerResponse, scope?: string, error?: string) => {
    const params = [
      `realm="${realm}"`,
      `service="${service}"`,
      ...(scope ? [`scope="${scope}"`] : []),
      ...(error ? [`error="${error}"`] : []),
    ];
    res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': `Bearer ${params.join(',')}` });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: null }] }));
  };
  const repoOf = (url: string): string | undefined => /^\/v2\/(.+?)\/(?:manifests|blobs|tags)\//.exec(url)?.[1];
  const proxy = await startProxy(upstream, {
    intercept(req, res) {
      if (expireAt?.(req)) {
        expireAt = undefined;
        tokens.clear();
      }
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/token') {
        const scopes = url.searchParams.getAll('scope');
        const basic = req.headers.authorization?.startsWith('Basic ')
          ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString()
          : undefined;
        const authenticated = basic === `${user.user}:${user.password}`;
        tokenRequests.push({ scopes, authenticated });
        if (basic !== undefined && !authenticated) {
          res.writeHead(401, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ details: 'incorrect username or password' }));
          return true;
        }
        const token = randomBytes(16).toString('hex');
        const grant = new Set<string>();
        if (authenticated) {
          for (const s of scopes) {
            const [, name, actions] = /^repository:(.+):([a-z,*]+)$/.exec(s) ?? [];
            if (name) for (const a of actions!.split(',')) grant.add(`${name}:${a}`);
          }
        }
        tokens.set(token, grant);
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
        return true;
      }
      const g = granted(req);
      if (url.pathname === '/v2/' || url.pathname === '/v2') {
        if (!g) challenge(res);
        return !g;
      }
      const repo = repoOf(url.pathname);
      if (!repo) {
        challenge(res);
        return true;
      }
      const action = req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'push';
      if (!g || !g.has(`${repo}:${action}`)) {
        challenge(res, `repository:${repo}:${action === 'push' ? 'pull,push' : 'pull'}`, g ? 'insufficient_scope' : undefined);
        return true;
      }
      return false;
    },
    rewriteUrl(req) {
      // A mount needs pull rights on its source, as real token registries check.
      const url = new URL(req.url ?? '/', 'http://x');
      const from = url.searchParams.get('from');
      if (from && !granted(req)?.has(`${from}:pull`)) return url.pathname;
      return req.url ?? '/';
    },
  });
  realm = `http://${proxy.host}/token`;
  return {
    ...proxy,
    tokenRequests,
    expireTokensAt(match) {
      expireAt = match;
    },
  };
}
