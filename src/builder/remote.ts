// ADD's URL sources, as BuildKit fetches them (source/http/source.go, with the file name and
// options dockerfile2llb's dispatchCopy gives llb.HTTP in convert_copy.go):
//  - a source is a URL when it starts with `http://` or `https://` (case matters) and its path
//    does not end in `.git` (that is a git repository to BuildKit: git-ref.ts, git.ts);
//  - the file is named after the last component of the URL's path, percent-decoded, or
//    `__unnamed__` when the path has none; dockerfile2llb always passes that name, so a
//    Content-Disposition header never renames it, and neither does a redirect;
//  - it is saved 0600, owned by root, with the Last-Modified time (Go's http.ParseTime formats)
//    as atime and mtime, or the epoch when the header is missing or unreadable;
//  - the body is the file: it is never unpacked, whatever it holds;
//  - ADD --checksum pins the content: the download must match, else the step fails.
// Differences, on purpose:
//  - only 2xx answers are accepted (after redirects); BuildKit saves any status below 400;
//  - the connection and each wait for more of the body are bounded (BuildKit waits forever);
//  - --checksum=sha384:/sha512: are verified with that algorithm; BuildKit hashes sha256 only,
//    so they always fail there with a digest mismatch;
//  - no ETag revalidation against earlier downloads: without --checksum, every build downloads
//    the file again to learn the content digest its cache key needs.
// Requests go through src/http's client, the one the registry uses, with the timeouts of
// DownloadTimeouts and a single attempt (a failure is reported as it happened). The client is
// imported with the first download, so a build without a URL source never loads node:http(s).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InvalidInputError } from '../errors.js';
import type { Digest } from '../digest.js';
import type { HttpResponse, Transport } from '../http/transport.js';
import { parseGitRef } from './git-ref.js';

/** The name BuildKit gives a download whose URL path has no last component. */
const UNNAMED = '__unnamed__';
/** pathutil.SafeFileName's fallback for names that cannot be file names. */
const UNSAFE_NAME = 'download';
/**
 * Redirects a download follows: the fetch standard's limit, above the 10 of Go's client (which
 * BuildKit uses), so that no URL BuildKit can fetch fails here for its redirects.
 */
const MAX_REDIRECTS = 20;

export const DEFAULT_TIMEOUTS: DownloadTimeouts = {
  connectMs: 60_000,
  idleMs: 120_000,
};

export interface DownloadTimeouts {
  /** From the request until the response headers, connecting and redirects included. */
  readonly connectMs: number;
  /** Longest wait for the next piece of the body. */
  readonly idleMs: number;
}

/** ADD --checksum, parsed: the algorithm and its lowercase hex value. */
export interface PinnedChecksum {
  readonly algorithm: 'sha256' | 'sha384' | 'sha512';
  readonly hex: string;
  /** As written: `<algorithm>:<hex>`. */
  readonly text: string;
}

/** A URL source, downloaded into a temporary file. */
export interface RemoteFile {
  readonly url: string;
  /** The name it takes at a directory destination (see urlFileName). */
  readonly name: string;
  /** The temporary file: mode 0600, mtime from Last-Modified or the epoch. */
  readonly hostPath: string;
  readonly digest: Digest;
  readonly size: number;
  /** Last-Modified, when the server sent one that parses. */
  readonly lastModified: Date | undefined;
}

export interface DownloadsOptions {
  /**
   * Makes the private directory the downloads go to, removed by close() (the builder's is a
   * scratch dir of the store). Default: one in os.tmpdir().
   */
  readonly tempDir?: () => Promise<string>;
  /** Cancels downloads in flight (the build's signal). */
  readonly signal?: AbortSignal;
  readonly timeouts?: Partial<DownloadTimeouts>;
}

/** Is this ADD source a URL BuildKit would download (dockerfile2llb's isHTTPSource)? */
export function isUrlSource(source: string): boolean {
  return (source.startsWith('http://') || source.startsWith('https://')) && !isGitUrl(source);
}

/** An http(s) URL whose path ends in `.git`: a git repository to BuildKit (dfgitutil.ParseGitRef). */
export function isGitUrl(source: string): boolean {
  const path = urlPath(source);
  return path !== undefined && path.endsWith('.git');
}

/** The raw (still percent-encoded) path of an http(s) URL, as Go's url.Parse splits it off. */
function urlPath(url: string): string | undefined {
  return /^https?:\/\/[^/?#]*([^?#]*)/.exec(url)?.[1];
}

/**
 * The file name of a URL source: dockerfile2llb's `path.Base(u.Path)` (decoded), `__unnamed__`
 * when that is `.` or `/`, then the http source's pathutil.SafeFileName (trimmed; `download`
 * for `..` or a name holding control characters).
 */
export function urlFileName(url: string): string {
  const raw = urlPath(url);
  let base: string;
  try {
    // Go's url.Parse fails on a bad escape, and dockerfile2llb then keeps `__unnamed__`.
    base = raw === undefined ? '' : posix.basename(decodeURIComponent(raw));
  } catch {
    base = '';
  }
  if (base === '' || base === '.') base = UNNAMED;
  const name = base.trim();
  // Unicode category Cc: C0, DEL and C1 controls, which no file name of an image should hold.
  // eslint-disable-next-line no-control-regex
  if (name === '' || name === '.' || name === '..' || /[\u0000-\u001f\u007f-\u009f]/.test(name)) return UNSAFE_NAME;
  return name;
}

/**
 * ADD --checksum's value, checked as go-digest's digest.Parse checks it (same messages). The
 * algorithms are the ones go-digest knows.
 */
export function parsePinnedChecksum(text: string): PinnedChecksum {
  const i = text.indexOf(':');
  if (i <= 0 || i + 1 === text.length)
    throw new InvalidInputError(`invalid checksum ${JSON.stringify(text)}: invalid checksum digest format`);
  const algorithm = text.slice(0, i);
  const hex = text.slice(i + 1);
  const size = ({ sha256: 64, sha384: 96, sha512: 128 } as Record<string, number>)[algorithm];
  if (size === undefined) {
    const wellFormed = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(text);
    throw new InvalidInputError(
      `invalid checksum ${JSON.stringify(text)}: ${wellFormed ? 'unsupported digest algorithm' : 'invalid checksum digest format'}`,
    );
  }
  if (hex.length !== size || !/^[a-f0-9]+$/.test(hex)) {
    throw new InvalidInputError(`invalid checksum ${JSON.stringify(text)}: invalid checksum digest format`);
  }
  return { algorithm: algorithm as PinnedChecksum['algorithm'], hex, text };
}

/**
 * dispatchCopy's checks, before anything is fetched: no URLs for COPY, no git repositories, and
 * --checksum only for ADD of a single URL. Returns the parsed --checksum.
 */
export function checkRemoteSources(
  sources: readonly string[],
  opts: { readonly isAdd: boolean; readonly checksum?: string | undefined },
): PinnedChecksum | undefined {
  for (const s of sources) {
    if (!opts.isAdd && parseGitRef(s) !== undefined) throw new InvalidInputError("source can't be a git ref for COPY");
    if (!opts.isAdd && isUrlSource(s)) throw new InvalidInputError("source can't be a URL for COPY");
  }
  if (opts.checksum === undefined) return undefined;
  if (!opts.isAdd) throw new InvalidInputError("checksum can't be specified for COPY");
  if (sources.length !== 1) throw new InvalidInputError("checksum can't be specified for multiple sources");
  // A git source's checksum is a commit hash, checked by git.ts.
  if (parseGitRef(sources[0]!) !== undefined) return undefined;
  if (!isUrlSource(sources[0]!)) throw new InvalidInputError('checksum requires HTTP(S) or Git sources');
  return parsePinnedChecksum(opts.checksum);
}

/**
 * The URL downloads of one ADD step. The checksum (cache key) and the copy share one instance,
 * so a URL is fetched at most once per step; close() removes the files.
 */
export class Downloads {
  private readonly files = new Map<string, Promise<RemoteFile>>();
  private dir: Promise<string> | undefined;
  /** Names the temporary files; downloads may run concurrently. */
  private counter = 0;
  private readonly timeouts: DownloadTimeouts;
  /** Made with the first download; its connections are kept for the next ones until close(). */
  private transport: Promise<Transport> | undefined;
  private closed = false;

  constructor(private readonly opts: DownloadsOptions = {}) {
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  }

  /** The file at `url`, downloaded on first use; with `pinned`, it must have that digest. */
  async get(url: string, pinned?: PinnedChecksum): Promise<RemoteFile> {
    if (this.closed) throw new Error('Downloads: used after close()');
    let file = this.files.get(url);
    if (!file) {
      file = this.fetch(url);
      this.files.set(url, file);
      // A failed download is reported to whoever awaits it; keep it from being unhandled meanwhile.
      file.catch(() => undefined);
    }
    const f = await file;
    if (pinned) await verifyPinned(f, pinned);
    return f;
  }

  /** Remove every downloaded file (after the downloads in flight have settled). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.files.values());
    if (this.transport) (await this.transport).close();
    if (this.dir) {
      const dir = await this.dir.catch(() => undefined);
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  }

  private tempDir(): Promise<string> {
    this.dir ??= this.opts.tempDir ? this.opts.tempDir() : mkdtemp(join(tmpdir(), `tsbuild-add-${process.pid}-`));
    return this.dir;
  }

  private client(): Promise<Transport> {
    this.transport ??= (async () => {
      // Imported here, not above: node:http(s) loads only for a build that downloads something.
      const { Transport } = await import('../http/transport.js');
      const { connectMs, idleMs } = this.timeouts;
      return new Transport({
        // connectMs bounds connecting as well as the whole wait for an answer: whichever of
        // the two runs out first, the message is the same.
        connectTimeoutMs: connectMs,
        responseTimeoutMs: connectMs,
        idleTimeoutMs: idleMs,
        maxRedirects: MAX_REDIRECTS,
        retries: 0,
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
      });
    })();
    return this.transport;
  }

  private async fetch(url: string): Promise<RemoteFile> {
    const n = this.counter++;
    const hostPath = join(await this.tempDir(), `${n}`);
    const got = await download(url, hostPath, await this.client());
    // BuildKit sets both times, to Last-Modified or the epoch; COPY then keeps them.
    const time = got.lastModified ?? new Date(0);
    await utimes(hostPath, time, time);
    return { url, name: urlFileName(url), hostPath, ...got };
  }
}

/**
 * GET `url` into a new file at `path` (0600), hashing it on the way. The transport's signal is
 * the build's; its timeouts are the download's.
 */
async function download(
  url: string,
  path: string,
  transport: Transport,
): Promise<{ digest: Digest; size: number; lastModified: Date | undefined }> {
  const shown = redactUrl(url);
  const signal = transport.signal;
  signal?.throwIfAborted();
  let res: HttpResponse;
  try {
    res = await transport.send({ method: 'GET', url: new URL(url) });
  } catch (err) {
    throw await downloadError(shown, err, signal);
  }
  if (res.status < 200 || res.status > 299) {
    await res.discard();
    throw new InvalidInputError(`failed to GET ${shown}: ${res.status} ${res.statusText}`.trimEnd());
  }
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await pipeline(res.body, tap, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
  } catch (err) {
    throw await downloadError(shown, err, signal);
  }
  const header = res.header('last-modified');
  return { digest: sha256FromHex(hash.digest('hex')), size, lastModified: header === undefined ? undefined : parseHttpTime(header) };
}

/**
 * One line for a failed download: the build's cancellation as it was given, a timeout in the
 * words of DownloadTimeouts (the client's timeouts are set from them), or what the client says
 * went wrong, with the URL as the user wrote it (password hidden) rather than the client's
 * `Get "..."`. Errors from Node itself are recognized by shape: under a test runner they come
 * from another realm than the caller's.
 */
async function downloadError(shown: string, err: unknown, signal: AbortSignal | undefined): Promise<Error> {
  // Loaded with the client already (client()): a build without downloads loads neither.
  const { RequestError, TimeoutError } = await import('../http/errors.js');
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    return isError(reason) ? reason : new InvalidInputError(`failed to GET ${shown}: aborted`);
  }
  const cause = err instanceof RequestError ? err.cause : err;
  if (cause instanceof TimeoutError) {
    const what = cause.phase === 'idle' ? 'the download stalled' : 'no response within the time limit';
    return new InvalidInputError(`failed to GET ${shown}: ${what} (${cause.ms / 1000}s)`, { cause: err });
  }
  const detail = err instanceof RequestError ? err.detail : isError(err) ? err.message : String(err);
  return new InvalidInputError(`failed to GET ${shown}: ${detail}`, { cause: err });
}

function isError(v: unknown): v is Error {
  return typeof v === 'object' && v !== null && typeof (v as Error).message === 'string' && typeof (v as Error).name === 'string';
}

/** The digest must match; a sha384/sha512 pin re-reads the file (the download hashed sha256). */
async function verifyPinned(file: RemoteFile, pinned: PinnedChecksum): Promise<void> {
  let got: string;
  if (pinned.algorithm === 'sha256') {
    got = file.digest;
  } else {
    const h = createHash(pinned.algorithm);
    for await (const chunk of createReadStream(file.hostPath)) h.update(chunk as Buffer);
    got = `${pinned.algorithm}:${h.digest('hex')}`;
  }
  if (got !== pinned.text) {
    // BuildKit's validatePinnedChecksum wording.
    throw new InvalidInputError(`digest mismatch for ${redactUrl(file.url)}: ${got} (expected: ${pinned.text})`);
  }
}

function sha256FromHex(hex: string): Digest {
  return `sha256:${hex}` as Digest;
}

/** The URL for messages: a password shows as `xxxxx`, as Go's url.Redacted does. */
export function redactUrl(url: string): string {
  return url.replace(/^(https?:\/\/[^/?#@:]*:)[^/?#@]*@/, '$1xxxxx@');
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY = '(?:mon|tue|wed|thu|fri|sat|sun)';
const LONG_DAY = '(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)';
const MON = '(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)';
const HMS = '(\\d{1,2}):(\\d{2}):(\\d{2})';
/** Go's http.ParseTime: http.TimeFormat (RFC 1123 in GMT), RFC 850, then ANSI C's asctime. */
const HTTP_TIME_FORMATS: readonly { re: RegExp; order: 'dmy' | 'mdy'; twoDigitYear?: true }[] = [
  { re: new RegExp(`^${DAY}, (\\d{2}) ${MON} (\\d{4}) ${HMS} GMT$`, 'i'), order: 'dmy' },
  { re: new RegExp(`^${LONG_DAY}, (\\d{2})-${MON}-(\\d{2}) ${HMS} [A-Z]{3,5}$`, 'i'), order: 'dmy', twoDigitYear: true },
  { re: new RegExp(`^${DAY} ${MON} ([ \\d]\\d) ${HMS} (\\d{4})$`, 'i'), order: 'mdy' },
];

/** An HTTP date as Go's http.ParseTime reads it (always UTC), or undefined. */
export function parseHttpTime(text: string): Date | undefined {
  // Go matches the literal `GMT` case-sensitively, names of days and months in any case.
  for (const { re, order, twoDigitYear } of HTTP_TIME_FORMATS) {
    const m = re.exec(text);
    if (!m) continue;
    if (order === 'dmy' && !twoDigitYear && !text.endsWith(' GMT')) return undefined;
    const [day, mon, yearText, h, min, s] =
      order === 'dmy' ? [m[1]!, m[2]!, m[3]!, m[4]!, m[5]!, m[6]!] : [m[2]!.trim(), m[1]!, m[6]!, m[3]!, m[4]!, m[5]!];
    let year = Number(yearText);
    if (twoDigitYear) year += year >= 69 ? 1900 : 2000; // Go's rule for `06`
    const month = MONTHS.indexOf(mon.toLowerCase());
    const t = new Date(Date.UTC(year, month, Number(day), Number(h), Number(min), Number(s)));
    // Out-of-range fields (31 Feb, 25:00) are errors in Go, not carried over.
    if (
      t.getUTCDate() !== Number(day) ||
      t.getUTCHours() !== Number(h) ||
      t.getUTCMinutes() !== Number(min) ||
      t.getUTCSeconds() !== Number(s)
    ) {
      return undefined;
    }
    return t;
  }
  return undefined;
}
