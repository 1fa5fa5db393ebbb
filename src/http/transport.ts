// tsbuild's HTTP client, for the registry client and ADD's URL sources, knowing neither:
// node:http(s) rather than fetch, because a registry client needs what fetch hides — a connect
// timeout apart from an idle timeout, request bodies streamed from disk with a known length,
// and control over redirects (blob downloads are redirected to storage on another host, which
// must not receive our Authorization header).
// Requests whose body can be produced again are retried, a bounded number of times with
// exponential backoff, after connection errors and 429/5xx answers.
// GET and HEAD follow redirects. A URL's user:password is sent as Basic authorization, which,
// like any Authorization header, does not follow a redirect to another origin.
// A caller that wants the whole wait for an answer bounded, however many redirects it takes
// (ADD of a URL), sets responseTimeoutMs; the idle timeout then watches the body only.
// A server can also hold a request forever without ever being idle, by sending (or reading)
// one byte a second: deadlineMs bounds a whole exchange, answer body included, and
// minBytesPerSecond fails a connection that moves some bytes, but too few, in a rate window.
import type * as HttpModule from 'node:http';
import { createRequire } from 'node:module';
import type * as HttpsModule from 'node:https';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { RequestError, TimeoutError, TooSlowError, TransportError } from './errors.js';

// Required, not imported: an ES module import of node:http reads every one of its exports,
// and since Node 22 some of them (WebSocket, CloseEvent, MessageEvent) are getters that load
// undici, Node's fetch: ~30 ms of each command that talks to a registry, for nothing
// (`node x.mjs` importing node:http, 10 runs: 0.58 s; requiring it: 0.28 s; neither: 0.29 s).
const requireBuiltin = createRequire(import.meta.url);
const http = requireBuiltin('node:http') as typeof HttpModule;
const https = requireBuiltin('node:https') as typeof HttpsModule;

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  readonly method: Method;
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  /** A Buffer, or a function that opens the body afresh, so that a retry can send it again. */
  readonly body?: Buffer | (() => Readable);
  /**
   * A streamed body's length. Unset, the body goes chunked: only for a blob whose size is not
   * known before its end (a layer compressed as it is sent, in a PATCH, as `docker push` sends
   * it); registries want Content-Length on a PUT.
   */
  readonly contentLength?: number;
  /** Retry after connection errors, 429 and 5xx (default true). */
  readonly retry?: boolean;
  /** This request's deadline instead of the transport's (Infinity: none), e.g. for a large blob. */
  readonly deadlineMs?: number;
}

export interface HttpResponse {
  readonly status: number;
  readonly statusText: string;
  /** Where the answer came from, after redirects. */
  readonly url: URL;
  header(name: string): string | undefined;
  headerAll(name: string): string[];
  readonly body: Readable;
  /** The body, up to `limit` bytes (more is an error: registries' small answers are bounded). */
  bytes(limit: number): Promise<Buffer>;
  text(limit?: number): Promise<string>;
  /** Reads and drops the body, so the connection can be reused. */
  discard(): Promise<void>;
}

export interface TransportOptions {
  /** Time to establish a TCP (and TLS) connection. */
  readonly connectTimeoutMs?: number;
  /** Time without any byte moving, once connected (once the response has come, with responseTimeoutMs). */
  readonly idleTimeoutMs?: number;
  /**
   * Time from sending a request until the headers of its final response, redirects and sending
   * the request body included; each retry starts it anew. Unset: no bound but the idle
   * timeout's, hop by hop.
   */
  readonly responseTimeoutMs?: number;
  /**
   * Time for a whole exchange: from sending the request, redirects included, to the last byte of
   * the answer's body; each retry starts it anew. Unset: none.
   */
  readonly deadlineMs?: number;
  /**
   * Bytes per second a connection must move, both ways and headers included, averaged over each
   * rate window while a request is on it; 0 turns the check off. A window with no byte at all
   * is left to the idle timeout.
   */
  readonly minBytesPerSecond?: number;
  /** The rate window; by default the idle timeout, so that the check is a stricter idle timeout. */
  readonly rateWindowMs?: number;
  /** Redirects a GET or HEAD follows; one more fails the request with `too many redirects`. */
  readonly maxRedirects?: number;
  /** Further attempts after the first. */
  readonly retries?: number;
  readonly backoffMs?: number;
  readonly signal?: AbortSignal;
}

const DEFAULTS = { connectTimeoutMs: 15_000, idleTimeoutMs: 60_000, maxRedirects: 5, retries: 3, backoffMs: 250, minBytesPerSecond: 0 };
const MAX_BACKOFF_MS = 8_000;
const RETRY_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_TIMEOUT',
]);
const USER_AGENT = `tsbuild/0.1 node/${process.versions.node}`;

function retryableStatus(status: number): boolean {
  return status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

/** `Get "http://host/v2/": connect ECONNREFUSED`, in the shape Go's net/http errors take. */
function describeRequest(method: Method, url: URL): string {
  const m = method[0] + method.slice(1).toLowerCase();
  return `${m} "${url.origin}${url.pathname}"`;
}

export class Transport {
  private readonly opts: Required<Omit<TransportOptions, 'signal' | 'responseTimeoutMs' | 'deadlineMs' | 'rateWindowMs'>> &
    Pick<TransportOptions, 'signal' | 'responseTimeoutMs' | 'deadlineMs' | 'rateWindowMs'>;
  // Keep-alive pools: a pull makes many requests to one host. Idle pooled sockets are unref'd
  // by Node, so they do not hold the process open; close() ends them at once.
  private readonly agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 8 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 8 }),
  };

  constructor(opts: TransportOptions = {}) {
    this.opts = { ...DEFAULTS, ...opts };
  }

  get signal(): AbortSignal | undefined {
    return this.opts.signal;
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }

  /** Sends a request, following redirects for GET and HEAD, retrying as the request allows. */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const attempts = req.retry === false ? 1 : 1 + this.opts.retries;
    for (let attempt = 1; ; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.followRedirects(req);
      } catch (err) {
        if (attempt >= attempts || !isRetryableError(err) || this.opts.signal?.aborted) {
          if (err instanceof TransportError || !isNetworkError(err)) throw err;
          throw new RequestError(describeRequest(req.method, req.url), (err as Error).message, { cause: err });
        }
        await this.backoff(attempt, undefined);
        continue;
      }
      if (attempt < attempts && retryableStatus(res.status)) {
        await res.discard();
        await this.backoff(attempt, res.header('retry-after'));
        continue;
      }
      return res;
    }
  }

  private async backoff(attempt: number, retryAfter: string | undefined): Promise<void> {
    let ms = Math.min(this.opts.backoffMs * 2 ** (attempt - 1), MAX_BACKOFF_MS);
    ms += Math.random() * ms * 0.2;
    const after = retryAfter !== undefined && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : undefined;
    if (after !== undefined) ms = Math.min(Math.max(ms, after), MAX_BACKOFF_MS * 4);
    await sleep(ms, undefined, this.opts.signal ? { signal: this.opts.signal } : {});
  }

  private async followRedirects(req: HttpRequest): Promise<HttpResponse> {
    let { url, headers } = withUserinfoAsAuth(req.url, req.headers ?? {});
    const timeout = this.opts.responseTimeoutMs;
    const deadline = timeout === undefined ? undefined : { at: Date.now() + timeout, ms: timeout };
    const whole = req.deadlineMs ?? this.opts.deadlineMs;
    const overall = whole === undefined || whole === Infinity ? undefined : { at: Date.now() + whole, ms: whole };
    for (let hops = 0; ; hops++) {
      const res = await this.once({ ...req, url, headers }, deadline, overall);
      const location = res.header('location');
      if (![301, 302, 303, 307, 308].includes(res.status) || location === undefined || (req.method !== 'GET' && req.method !== 'HEAD'))
        return res;
      await res.discard();
      if (hops >= this.opts.maxRedirects) throw new RequestError(describeRequest(req.method, req.url), 'too many redirects');
      const next = new URL(location, url);
      // Credentials are for the origin they were given to: a registry's blob storage on
      // another host is sent a signed URL instead, and must not see them.
      if (next.origin !== url.origin) {
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
      }
      url = next;
    }
  }

  /**
   * One request, one response, with the connect and idle timeouts and the rate check; with a
   * response deadline, the wait for the response is bounded by it, and the idle timeout starts
   * with the response; with an overall deadline, the exchange up to its body's last byte is.
   */
  private once(
    req: HttpRequest & { url: URL },
    deadline: { at: number; ms: number } | undefined,
    overall: { at: number; ms: number } | undefined,
  ): Promise<HttpResponse> {
    const { url } = req;
    const isHttps = url.protocol === 'https:';
    const headers: Record<string, string> = { 'User-Agent': USER_AGENT, ...req.headers };
    if (Buffer.isBuffer(req.body)) headers['Content-Length'] = String(req.body.length);
    else if (req.body) {
      if (req.contentLength !== undefined) headers['Content-Length'] = String(req.contentLength);
    } else if (req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH') headers['Content-Length'] = '0';

    return new Promise<HttpResponse>((resolve, reject) => {
      const r = (isHttps ? https : http).request(url, {
        method: req.method,
        headers,
        agent: isHttps ? this.agents.https : this.agents.http,
        ...(deadline ? {} : { timeout: this.opts.idleTimeoutMs }),
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
      });
      let response: HttpModule.IncomingMessage | undefined;
      const fail = (err: Error): void => {
        // Before the answer: the request fails; after it: the body stream does.
        if (response) response.destroy(err);
        r.destroy(err);
      };
      r.on('timeout', () => fail(new TimeoutError('idle', this.opts.idleTimeoutMs)));
      // The rate check and the overall deadline last until the answer's body is read or fails.
      let meter: NodeJS.Timeout | undefined;
      const overallTimer =
        overall &&
        setTimeout(
          () => fail(new TooSlowError('deadline', `not finished within ${overall.ms / 1000}s (deadline)`)),
          Math.max(0, overall.at - Date.now()),
        );
      const done = (): void => {
        clearInterval(meter);
        clearTimeout(overallTimer);
      };
      r.on('socket', (socket) => {
        if (this.opts.minBytesPerSecond > 0) meter = this.meter(socket, fail);
        if (!socket.connecting) return;
        const timer = setTimeout(() => fail(new TimeoutError('connect', this.opts.connectTimeoutMs)), this.opts.connectTimeoutMs);
        socket.once(isHttps ? 'secureConnect' : 'connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      const responseTimer =
        deadline && setTimeout(() => fail(new TimeoutError('response', deadline.ms)), Math.max(0, deadline.at - Date.now()));
      r.on('close', () => {
        clearTimeout(responseTimer);
        if (!response) done();
      });
      r.on('error', (err) => {
        done();
        reject(err);
      });
      r.on('response', (res) => {
        response = res;
        res.on('close', done);
        clearTimeout(responseTimer);
        if (deadline) r.setTimeout(this.opts.idleTimeoutMs);
        resolve(wrapResponse(res, req.method, url));
      });
      if (Buffer.isBuffer(req.body)) {
        r.end(req.body);
      } else if (req.body) {
        const src = req.body();
        src.on('error', (err) => r.destroy(err));
        src.pipe(r);
      } else {
        r.end();
      }
    });
  }

  /**
   * Fails the request when its connection moved fewer bytes in the last rate window than
   * minBytesPerSecond asks, and is moving still: one that has gone quiet is stalled, not slow,
   * and left to the idle timeout (which is retried, and says so). Bytes are counted on the
   * socket, both ways: an upload to a server that reads slowly, headers sent a byte at a time
   * and a trickling body are all the same to it. The window is sampled in quarters, so a trickle
   * fails within about a window and a quarter.
   */
  private meter(socket: Socket, fail: (err: Error) => void): NodeJS.Timeout {
    const { minBytesPerSecond } = this.opts;
    const windowMs = this.opts.rateWindowMs ?? this.opts.idleTimeoutMs;
    const moved = (): number => socket.bytesRead + socket.bytesWritten;
    const samples = [moved()];
    return setInterval(() => {
      samples.push(moved());
      if (samples.length > 5) samples.shift();
      if (samples.length < 5) return;
      const inWindow = samples[4]! - samples[0]!;
      const lately = samples[4]! - samples[3]!;
      if (lately > 0 && inWindow < (minBytesPerSecond * windowMs) / 1000)
        fail(new TooSlowError('rate', `${inWindow} bytes in ${windowMs / 1000}s, below the minimum rate of ${minBytesPerSecond} bytes/s`));
    }, windowMs / 4);
  }
}

function wrapResponse(res: HttpModule.IncomingMessage, method: Method, url: URL): HttpResponse {
  const bytes = async (limit: number): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > limit) {
        res.destroy();
        throw new TransportError(`the answer to ${describeRequest(method, url)} is larger than ${limit} bytes`);
      }
      chunks.push(c);
    }
    return Buffer.concat(chunks);
  };
  return {
    status: res.statusCode ?? 0,
    // HTTP/1.1 lets a server send an empty reason phrase; messages want the standard one then.
    statusText: res.statusMessage || http.STATUS_CODES[res.statusCode ?? 0] || '',
    url,
    header(name) {
      const v = res.headers[name.toLowerCase()];
      return Array.isArray(v) ? v[0] : v;
    },
    headerAll(name) {
      const v = res.headers[name.toLowerCase()];
      return v === undefined ? [] : Array.isArray(v) ? v : [v];
    },
    body: res,
    bytes,
    text: async (limit = 1 << 20) => (await bytes(limit)).toString('utf8'),
    async discard() {
      // Small bodies are drained so the socket goes back to the pool; others are cut off. A
      // HEAD answer has no body whatever its Content-Length says (a blob's size).
      const len = Number(res.headers['content-length'] ?? NaN);
      if (method === 'HEAD' || res.complete || (Number.isFinite(len) && len <= 64 * 1024)) {
        try {
          for await (const _ of res) void _;
        } catch {
          // The body of an answer we are discarding may break off; nothing of it is used.
        }
      } else {
        res.destroy();
      }
    },
  };
}

/**
 * A URL's user:password, taken out of the URL and sent as Basic authorization (unless the
 * request has its own), so that it is dropped on a redirect to another origin like any other.
 */
function withUserinfoAsAuth(url: URL, headers: Readonly<Record<string, string>>): { url: URL; headers: Record<string, string> } {
  if (url.username === '' && url.password === '') return { url, headers: { ...headers } };
  const bare = new URL(url);
  bare.username = '';
  bare.password = '';
  if (Object.keys(headers).some((k) => k.toLowerCase() === 'authorization')) return { url: bare, headers: { ...headers } };
  const basic = Buffer.from(`${decodeUserinfo(url.username)}:${decodeUserinfo(url.password)}`).toString('base64');
  return { url: bare, headers: { ...headers, Authorization: `Basic ${basic}` } };
}

/** Percent-decoded; a malformed escape, which a WHATWG URL lets through, is sent as written. */
function decodeUserinfo(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function isNetworkError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code !== undefined && (RETRY_CODES.has(code) || code.startsWith('E') || code.startsWith('ERR_'));
}

function isRetryableError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException;
  if (e?.name === 'AbortError') return false;
  if (e?.code !== undefined && RETRY_CODES.has(e.code)) return true;
  // Node says "socket hang up" (ECONNRESET) when a pooled connection was closed by the server.
  return e?.message === 'socket hang up';
}
