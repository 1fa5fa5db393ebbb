// Registry credentials in Docker's client config, so that `docker login` and `tsbuild login`
// share them: $DOCKER_CONFIG/config.json (default ~/.docker/config.json),
//   {"auths": {"127.0.0.1:5000": {"auth": base64("user:password")}, "https://index.docker.io/v1/": {...}}}
// or, when the file names one (`credsStore`, `credHelpers`), a credential helper program
// `docker-credential-<name>` speaking Docker's helper protocol (get/store/erase over stdin).
// Other keys of the file are kept as they are. Credentials live in memory as a Credentials
// value and leave it only as an Authorization header, this file or a helper's stdin: never in a
// message, a log line or a temporary file elsewhere.
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidInputError, TsbuildError } from '../errors.js';
import { fsyncDir, tempNameBeside } from '../fs/atomic.js';
import { DOCKER_HUB_AUTH_KEY, isDockerHub, registryHostname } from './endpoint.js';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** Where credentials for a registry come from. */
export interface CredentialSource {
  /** `domain` as references spell it (`docker.io`, `127.0.0.1:5000`). */
  get(domain: string): Promise<Credentials | undefined>;
}

export const NO_CREDENTIALS: CredentialSource = { get: async () => undefined };

export function dockerConfigDir(): string {
  return process.env.DOCKER_CONFIG || join(homedir(), '.docker');
}

/** The config.json key Docker uses for a registry: Docker Hub has its historical URL. */
export function authKey(server: string): string {
  const host = registryHostname(server);
  return isDockerHub(host) ? DOCKER_HUB_AUTH_KEY : host;
}

type AuthEntry = { auth?: string; username?: string; password?: string; [k: string]: unknown };
type ConfigJson = { auths?: Record<string, AuthEntry>; credsStore?: string; credHelpers?: Record<string, string>; [k: string]: unknown };

export class DockerConfig implements CredentialSource {
  private constructor(
    readonly file: string,
    private json: ConfigJson,
  ) {}

  static async load(dir: string = dockerConfigDir()): Promise<DockerConfig> {
    const file = join(dir, 'config.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new DockerConfig(file, {});
      throw err;
    }
    let json: ConfigJson;
    try {
      json = text.trim() === '' ? {} : (JSON.parse(text) as ConfigJson);
    } catch {
      // The message names the file, never its content: it holds credentials.
      throw new InvalidInputError(`${file} is not valid JSON`);
    }
    if (json === null || typeof json !== 'object') throw new InvalidInputError(`${file} is not a JSON object`);
    return new DockerConfig(file, json);
  }

  /** The entry for `domain`, whichever spelling of it the key uses (`https://host/v1/`, `host`). */
  private entryKey(domain: string): string | undefined {
    const want = authKey(domain);
    const keys = Object.keys(this.json.auths ?? {});
    return keys.find((k) => k === want) ?? keys.find((k) => authKey(k) === want);
  }

  async get(domain: string): Promise<Credentials | undefined> {
    const helper = this.helperFor(domain);
    if (helper !== undefined) return helperGet(helper, authKey(domain));
    const key = this.entryKey(domain);
    if (key === undefined) return undefined;
    const entry = this.json.auths![key]!;
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new InvalidInputError(`${this.file}: the auth entry for ${key} is not base64 of user:password`);
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (typeof entry.username === 'string' && typeof entry.password === 'string')
      return { username: entry.username, password: entry.password };
    return undefined;
  }

  /** The credential helper Docker would use for `domain`: its credHelpers entry, else credsStore. */
  helperFor(domain: string): string | undefined {
    const helpers = this.json.credHelpers ?? {};
    const key = Object.keys(helpers).find((k) => authKey(k) === authKey(domain));
    return key !== undefined ? helpers[key] : this.json.credsStore || undefined;
  }

  /** Where `set` puts credentials for `server`, for messages: the file or the helper. */
  describeStorage(server: string): string {
    const helper = this.helperFor(server);
    return helper !== undefined ? `the credential helper docker-credential-${helper}` : this.file;
  }

  /** Records credentials for `server` (replacing any under another spelling of it). */
  async set(server: string, creds: Credentials): Promise<void> {
    const helper = this.helperFor(server);
    if (helper !== undefined) {
      await helperRun(helper, 'store', JSON.stringify({ ServerURL: authKey(server), Username: creds.username, Secret: creds.password }));
      // Docker leaves an empty entry in auths so that the file lists the registries logged in to.
      this.json = { ...this.json, auths: { ...(this.json.auths ?? {}), [authKey(server)]: {} } };
      await this.save();
      return;
    }
    const auths = { ...(this.json.auths ?? {}) };
    const old = this.entryKey(server);
    if (old !== undefined) delete auths[old];
    auths[authKey(server)] = { auth: Buffer.from(`${creds.username}:${creds.password}`, 'utf8').toString('base64') };
    this.json = { ...this.json, auths };
    await this.save();
  }

  /** Forgets `server`'s credentials; false if there were none. */
  async remove(server: string): Promise<boolean> {
    const helper = this.helperFor(server);
    let removed = false;
    if (helper !== undefined)
      removed = await helperRun(helper, 'erase', authKey(server)).then(
        () => true,
        () => false,
      );
    const key = this.entryKey(server);
    if (key === undefined) return removed;
    const auths = { ...(this.json.auths ?? {}) };
    delete auths[key];
    this.json = { ...this.json, auths };
    await this.save();
    return true;
  }

  private async save(): Promise<void> {
    const dir = join(this.file, '..');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    // A temp file beside config.json, created 0600, renamed over it: readers see the old file
    // or the new one, the credentials are never readable by others, and a failed write leaves
    // no partial copy behind.
    const tmp = tempNameBeside(this.file);
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(this.json, null, '\t')}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await fsyncDir(dir);
  }
}

/** Docker's helper protocol: `get` reads the server URL on stdin and prints {Username, Secret}. */
async function helperGet(helper: string, server: string): Promise<Credentials | undefined> {
  const out = await helperRun(helper, 'get', server).catch((err: unknown) => {
    // "credentials not found" is the protocol's way of saying none are stored.
    if (err instanceof HelperNotFound) return undefined;
    throw err;
  });
  if (out === undefined) return undefined;
  let j: { Username?: unknown; Secret?: unknown };
  try {
    j = JSON.parse(out) as typeof j;
  } catch {
    throw new TsbuildError(`docker-credential-${helper} get: the answer is not JSON`);
  }
  if (typeof j.Username !== 'string' || typeof j.Secret !== 'string' || j.Secret === '') return undefined;
  if (j.Username === '<token>')
    throw new TsbuildError(
      `docker-credential-${helper} holds an identity token for ${server}, which tsbuild does not support: log in with a password`,
    );
  return { username: j.Username, password: j.Secret };
}

class HelperNotFound extends TsbuildError {}

async function helperRun(helper: string, verb: 'get' | 'store' | 'erase', input: string): Promise<string> {
  const command = `docker-credential-${helper}`;
  // Loaded here, not at the top: every build loads this module, few run a credential helper.
  const { execa } = await import('execa');
  const r = await execa(command, [verb], { input, reject: false, stripFinalNewline: true });
  if (r.failed) {
    if ((r as { code?: string }).code === 'ENOENT') throw new TsbuildError(`${command} is named in the Docker config but is not installed`);
    // Only the helper's first output line: its stdout may not echo secrets, but keep it short.
    const why = String(r.stdout || r.stderr)
      .split('\n')[0]!
      .trim();
    if (/credentials not found/i.test(why)) throw new HelperNotFound(why);
    throw new TsbuildError(`${command} ${verb} failed: ${why || `exit code ${r.exitCode}`}`);
  }
  return String(r.stdout);
}
