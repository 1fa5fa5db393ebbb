// A registry client with small verbs, one Repository per repository path (go-containerregistry's
// remote package is the model): manifests by tag or digest, blob existence, download, mount and
// upload. It knows nothing of the store; pull.ts and push.ts connect the two.
// Everything that comes back is checked against its digest before a caller sees it as valid.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isDigest, sha256, type Digest } from '../digest.js';
import { DigestMismatchError } from '../digest.js';
import { Authenticator, repositoryScope, type Action } from './auth.js';
import { NO_CREDENTIALS, type CredentialSource } from './credentials.js';
import { endpointFor, type Endpoint, type EndpointOptions } from './endpoint.js';
import { describeErrors, describeStatus, parseErrorBody, RegistryError, UnauthorizedError } from './errors.js';
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, parseManifest, type Manifest } from '../image/manifest.js';
import { isTooSlow, RequestError, TransportError } from '../http/errors.js';
import type { HttpRequest, HttpResponse, Transport, TransportOptions } from '../http/transport.js';
import { blobDeadlineMs, registryTransport, type RegistryLimits } from './timeouts.js';

export interface RegistryOptions extends EndpointOptions, TransportOptions, RegistryLimits {
  /** Default for Registry.open: none (anonymous). pullImage and pushImage default to the user's Docker config. */
  readonly credentials?: CredentialSource;
}

/** Attempts for a blob transfer that breaks off mid-body (the request itself is retried by the transport). */
const TRANSFER_ATTEMPTS = 3;

/** One registry host: its endpoint, connections and authorization, shared by its repositories. */
export class Registry {
  private constructor(
    readonly endpoint: Endpoint,
    readonly transport: Transport,
    readonly auth: Authenticator,
    /** A blob transfer's deadline, apart from the small requests' (timeouts.ts). */
    readonly blobDeadlineMs: number,
  ) {}

  static async open(domain: string, opts: RegistryOptions = {}): Promise<Registry> {
    const endpoint = endpointFor(domain, opts);
    const credentials = await (opts.credentials ?? NO_CREDENTIALS).get(endpoint.domain);
    const transport = registryTransport(opts);
    return new Registry(endpoint, transport, new Authenticator(endpoint, transport, credentials), blobDeadlineMs(opts));
  }

  repository(path: string, actions: readonly Action[]): Repository {
    return new Repository(this, path, [repositoryScope(path, actions)]);
  }

  /** Ends pooled connections. */
  close(): void {
    this.transport.close();
  }
}

export interface FetchedManifest {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly bytes: Buffer;
  readonly manifest: Manifest;
}

export class Repository {
  constructor(
    readonly registry: Registry,
    readonly path: string,
    private scopes: string[],
  ) {}

  /** `127.0.0.1:5000/app`, `docker.io/library/nginx`: how blob sources are recorded. */
  get name(): string {
    return `${this.registry.endpoint.domain}/${this.path}`;
  }

  /** The registry's domain, as references name it. */
  get domain(): string {
    return this.registry.endpoint.domain;
  }

  /** Asks for pull rights on another repository too, for mounting blobs from it. */
  addPullScope(path: string): void {
    const s = repositoryScope(path, ['pull']);
    if (!this.scopes.includes(s)) this.scopes = [...this.scopes, s];
  }

  private url(suffix: string): URL {
    return new URL(`/v2/${this.path}/${suffix}`, this.registry.endpoint.base);
  }

  /** Sends with authorization; on a 401, refreshes the token once and sends again. */
  private async send(req: HttpRequest): Promise<HttpResponse> {
    const auth = this.registry.auth;
    const withAuth = async (): Promise<HttpResponse> => {
      const authorization = await auth.authorization(this.scopes);
      return this.registry.transport.send({
        ...req,
        headers: { ...req.headers, ...(authorization ? { Authorization: authorization } : {}) },
      });
    };
    const res = await withAuth();
    if (res.status !== 401) return res;
    const retryScopes = await auth.refresh(res, this.scopes);
    if (!retryScopes) return res;
    await res.discard();
    this.scopes = retryScopes;
    return withAuth();
  }

  /** Turns an unexpected answer into a one-line error: `what: code: message`. */
  private async fail(res: HttpResponse, what: string): Promise<never> {
    const text = res.status === 204 ? '' : await res.text(64 * 1024).catch(() => '');
    const errors = parseErrorBody(text);
    const detail = errors.length ? describeErrors(errors) : describeStatus(res.status, res.statusText);
    const E = res.status === 401 || res.status === 403 ? UnauthorizedError : RegistryError;
    throw new E(what, detail, res.status, errors);
  }

  // --- manifests ---

  /**
   * A manifest by tag or digest, with the body's sha256 checked against the digest asked for
   * and against the registry's Docker-Content-Digest header.
   */
  async getManifest(ref: string): Promise<FetchedManifest> {
    const res = await this.send({ method: 'GET', url: this.url(`manifests/${ref}`), headers: { Accept: MANIFEST_ACCEPT.join(', ') } });
    if (res.status !== 200) return this.fail(res, `manifest ${this.path}:${ref}`);
    const bytes = await res
      .bytes(MAX_MANIFEST_BYTES)
      .catch(this.brokenBody(`downloading manifest ${this.name}${isDigest(ref) ? '@' : ':'}${ref}`));
    const digest = sha256(bytes);
    if (isDigest(ref) && ref !== digest) throw new DigestMismatchError(`manifest verification failed for digest ${ref}: got ${digest}`);
    const header = res.header('docker-content-digest');
    if (header !== undefined && isDigest(header) && header !== digest) {
      throw new DigestMismatchError(
        `manifest ${this.path}:${ref}: the registry says its digest is ${header}, its content hashes to ${digest}`,
      );
    }
    const manifest = parseManifest(bytes, res.header('content-type'));
    return { digest, mediaType: manifest.mediaType, bytes, manifest };
  }

  /** Stores a manifest under a tag or its digest; returns the digest, checked against the registry's. */
  async putManifest(ref: string, mediaType: string, bytes: Buffer): Promise<Digest> {
    const digest = sha256(bytes);
    const res = await this.send({ method: 'PUT', url: this.url(`manifests/${ref}`), headers: { 'Content-Type': mediaType }, body: bytes });
    if (res.status !== 201 && res.status !== 200 && res.status !== 202) return this.fail(res, `manifest ${this.path}:${ref}`);
    await res.discard();
    const header = res.header('docker-content-digest');
    if (header !== undefined && isDigest(header) && header !== digest) {
      throw new DigestMismatchError(`the registry stored manifest ${this.path}:${ref} as ${header}, but we sent ${digest}`);
    }
    return digest;
  }

  // --- blobs ---

  /** The blob's size if this repository has it (HEAD), undefined if not. */
  async statBlob(digest: Digest): Promise<{ size: number } | undefined> {
    const res = await this.send({ method: 'HEAD', url: this.url(`blobs/${digest}`) });
    await res.discard();
    if (res.status === 200) return { size: Number(res.header('content-length') ?? -1) };
    if (res.status === 404) return undefined;
    return this.fail(res, `blob ${digest}`);
  }

  /** A small blob (an image config) in memory, verified. */
  async readBlob(digest: Digest, limit: number): Promise<Buffer> {
    const res = await this.send({ method: 'GET', url: this.url(`blobs/${digest}`) });
    if (res.status !== 200) return this.fail(res, `blob ${digest}`);
    const bytes = await res.bytes(limit).catch(this.brokenBody(`downloading blob ${digest} from ${this.name}`));
    const got = sha256(bytes);
    if (got !== digest) throw new DigestMismatchError(`blob verification failed for digest ${digest}: got ${got}`);
    return bytes;
  }

  /**
   * Downloads a blob to `file`, hashing as it streams; the file is valid only if this resolves.
   * More bytes than `size` stop the download at once (a registry cannot fill the disk); a
   * transfer that breaks off is started again, a bounded number of times. `onBytes` gets each
   * chunk's length, and a negative count when a restart discards what was received.
   */
  async downloadBlob(digest: Digest, size: number, file: string, onBytes: (n: number) => void = () => {}): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let received = 0;
      try {
        await this.downloadOnce(digest, size, file, (n) => {
          received += n;
          onBytes(n);
        });
        return;
      } catch (err) {
        await rm(file, { force: true });
        onBytes(-received);
        if (
          !(err instanceof TransportError || isBrokenTransfer(err)) ||
          isTooSlow(err) ||
          attempt >= TRANSFER_ATTEMPTS ||
          this.registry.transport.signal?.aborted
        )
          throw err;
      }
    }
  }

  private async downloadOnce(digest: Digest, size: number, file: string, onBytes: (n: number) => void): Promise<void> {
    const res = await this.send({ method: 'GET', url: this.url(`blobs/${digest}`), deadlineMs: this.registry.blobDeadlineMs });
    if (res.status !== 200) return this.fail(res, `blob ${digest}`);
    const hash = createHash('sha256');
    let n = 0;
    const check = new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        n += chunk.length;
        if (n > size)
          return cb(new DigestMismatchError(`blob ${digest}: the registry sent more than the ${size} bytes the manifest names`));
        hash.update(chunk);
        onBytes(chunk.length);
        cb(null, chunk);
      },
    });
    try {
      await pipeline(res.body, check, createWriteStream(file, { mode: 0o600 }));
    } catch (err) {
      if (err instanceof DigestMismatchError) throw err;
      throw new TransportError(`downloading blob ${digest} from ${this.name}: ${(err as Error).message}`, { cause: err });
    }
    if (n < size) throw new TransportError(`downloading blob ${digest} from ${this.name}: the transfer ended after ${n} of ${size} bytes`);
    const got = `sha256:${hash.digest('hex')}`;
    if (got !== digest) throw new DigestMismatchError(`filesystem layer verification failed for digest ${digest}: got ${got}`);
  }

  /**
   * Cross-repository mount: asks the registry to link a blob it already holds in `from` into this
   * repository. True if it did; false if it would not (then no upload session is left open).
   */
  async mountBlob(digest: Digest, from: string): Promise<boolean> {
    const url = this.url('blobs/uploads/');
    url.search = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
    const res = await this.send({ method: 'POST', url });
    await res.discard();
    if (res.status === 201) return true;
    if (res.status === 202) {
      // The registry opened an upload session instead: close it rather than leave it to expire.
      const location = res.header('location');
      if (location !== undefined) {
        const del = await this.send({ method: 'DELETE', url: new URL(location, res.url), retry: false }).catch(() => undefined);
        await del?.discard();
      }
      return false;
    }
    if (res.status === 401 || res.status === 403 || res.status === 404) return false; // no rights on `from`: upload instead
    return this.fail(res, `mounting blob ${digest} from ${from}`);
  }

  /**
   * Uploads a blob: POST opens a session, one PUT sends the whole body with its digest
   * (the distribution spec's "monolithic" upload). `open` is called once per attempt.
   */
  async uploadBlob(digest: Digest, size: number, open: () => Readable, onBytes: (n: number) => void = () => {}): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      let sent = 0;
      try {
        const session = await this.startUpload();
        const counted = (): Readable => {
          const count = new Transform({
            transform(chunk: Buffer, _enc, cb: TransformCallback) {
              sent += chunk.length;
              onBytes(chunk.length);
              cb(null, chunk);
            },
          });
          const src = open();
          src.on('error', (err) => count.destroy(err));
          return src.pipe(count);
        };
        const res = await this.send({
          method: 'PUT',
          url: withQuery(session, 'digest', digest),
          headers: { 'Content-Type': 'application/octet-stream' },
          body: counted,
          contentLength: size,
          retry: false, // the session may not survive a failed PUT: a new attempt opens a new one
          deadlineMs: this.registry.blobDeadlineMs,
        });
        if (res.status !== 201 && res.status !== 204) return await this.fail(res, `uploading blob ${digest}`);
        await res.discard();
        const header = res.header('docker-content-digest');
        if (header !== undefined && isDigest(header) && header !== digest) {
          throw new DigestMismatchError(`the registry stored blob ${digest} as ${header}`);
        }
        return;
      } catch (err) {
        onBytes(-sent);
        this.retryOrThrow(err, attempt, `blob ${digest}`);
      }
    }
  }

  /**
   * Uploads a blob whose digest is known only at its end (a layer compressed as it is sent, as
   * `docker push` does): POST opens a session, one PATCH streams the body chunked while it is
   * hashed, and a PUT closes the session with the digest. `open` is called once per attempt and
   * must give the same bytes each time; its stream is destroyed when the attempt ends. `source`
   * names the blob in errors until its digest is known ("layer sha256:…").
   */
  async uploadStream(
    source: string,
    open: () => Promise<Readable>,
    onBytes: (n: number) => void = () => {},
  ): Promise<{ digest: Digest; size: number }> {
    for (let attempt = 1; ; attempt++) {
      let sent = 0;
      let src: Readable | undefined;
      let what = source; // until its last byte has gone
      try {
        const session = await this.startUpload();
        const hash = createHash('sha256');
        const opened = await open();
        src = opened;
        let sending = false;
        const hashed = (): Readable => {
          // Asked again (a 401 answered with a fresh token): the stream is partly spent, so this
          // attempt fails as a transient error and the next one opens a new session and stream.
          if (sending) return failing(new TransportError(`${source}: the registry asked for the upload again`));
          sending = true;
          const count = new Transform({
            transform(chunk: Buffer, _enc, cb: TransformCallback) {
              hash.update(chunk);
              sent += chunk.length;
              onBytes(chunk.length);
              cb(null, chunk);
            },
          });
          opened.on('error', (err) => count.destroy(err));
          return opened.pipe(count);
        };
        const patched = await this.send({
          method: 'PATCH',
          url: session,
          headers: { 'Content-Type': 'application/octet-stream' },
          body: hashed,
          retry: false, // the body cannot be sent again: a new attempt opens a new session
          deadlineMs: this.registry.blobDeadlineMs,
        });
        if (patched.status !== 202) return await this.fail(patched, `uploading ${source} to ${this.name}`);
        await patched.discard();
        const location = patched.header('location');
        const digest = `sha256:${hash.digest('hex')}` as Digest;
        what = `blob ${digest}`;
        const url = withQuery(location === undefined ? session : new URL(location, patched.url), 'digest', digest);
        const res = await this.send({ method: 'PUT', url, retry: false });
        if (res.status !== 201 && res.status !== 204) return await this.fail(res, `uploading blob ${digest}`);
        await res.discard();
        const header = res.header('docker-content-digest');
        if (header !== undefined && isDigest(header) && header !== digest) {
          throw new DigestMismatchError(`the registry stored blob ${digest} as ${header}`);
        }
        return { digest, size: sent };
      } catch (err) {
        onBytes(-sent);
        this.retryOrThrow(err, attempt, what);
      } finally {
        src?.destroy();
      }
    }
  }

  /** After a failed upload attempt: returns if another is worth making, else throws the error to report. */
  private retryOrThrow(err: unknown, attempt: number, what: string): void {
    const transient = err instanceof TransportError || isBrokenTransfer(err) || (err instanceof RegistryError && (err.status ?? 0) >= 500);
    if (!transient || isTooSlow(err) || attempt >= TRANSFER_ATTEMPTS || this.registry.transport.signal?.aborted) {
      // The request's URL is an upload session's, which names neither the blob nor the image.
      if (err instanceof RequestError) throw new TransportError(`uploading ${what} to ${this.name}: ${err.detail}`, { cause: err });
      if (isNotHttp(err)) throw new TransportError(`uploading ${what} to ${this.name}: ${notHttp(err)}`, { cause: err });
      throw err;
    }
  }

  /**
   * For a body that breaks off or is too slow once its answer has come: one line saying what
   * was being transferred from where (a TransportError from the body's own checks is one).
   */
  private brokenBody(what: string): (err: unknown) => never {
    return (err) => {
      if (err instanceof TransportError || (err as Error)?.name === 'AbortError') throw err;
      throw new TransportError(`${what}: ${(err as Error).message}`, { cause: err });
    };
  }

  /** POST /v2/<name>/blobs/uploads/ → the session URL from Location (relative or absolute). */
  private async startUpload(): Promise<URL> {
    const res = await this.send({ method: 'POST', url: this.url('blobs/uploads/') });
    if (res.status !== 202) return this.fail(res, `starting an upload to ${this.path}`);
    await res.discard();
    const location = res.header('location');
    if (location === undefined) throw new RegistryError(`starting an upload to ${this.path}`, 'the registry sent no Location', res.status);
    return new URL(location, res.url);
  }
}

/**
 * Adds `name=value` to a URL's query, keeping what is there byte for byte: upload Locations
 * carry opaque state (`?_state=...`) that a URLSearchParams round trip could re-encode.
 */
export function withQuery(url: URL, name: string, value: string): URL {
  const out = new URL(url);
  const param = `${encodeURIComponent(name)}=${encodeURIComponent(value)}`;
  out.search = out.search === '' || out.search === '?' ? `?${param}` : `${out.search}&${param}`;
  return out;
}

/** A stream that fails with `err` when first read. */
function failing(err: Error): Readable {
  return new Readable({
    read() {
      this.destroy(err);
    },
  });
}

/** Node's HTTP parser refused the answer (its codes start HPE_): the server does not speak HTTP there. */
function isNotHttp(err: unknown): boolean {
  return typeof (err as NodeJS.ErrnoException)?.code === 'string' && (err as NodeJS.ErrnoException).code!.startsWith('HPE_');
}

function notHttp(err: unknown): string {
  return `the registry's answer is not HTTP (${(err as Error).message})`;
}

/** A stream that ended in a network error (rather than a digest or protocol error). */
function isBrokenTransfer(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_TIMEOUT' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}
