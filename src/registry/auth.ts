// Authorization for one registry host, as Docker's client does it:
//   1. GET /v2/ without credentials (the "ping"): 200 means no auth; 401 carries the challenge.
//   2. `Basic`: every request carries the user's credentials.
//      `Bearer realm=R,service=S`: GET R?service=S&scope=...&scope=... (with Basic credentials
//      when we have them, anonymous otherwise) returns {"token"} or {"access_token"}; requests
//      carry `Authorization: Bearer <token>`. Tokens are per set of scopes
//      (`repository:app:pull,push`, `repository:base:pull` for a mount source) and expire.
//   3. A 401 on a request with a token means it lacks a scope or expired: fetch again, once.
import { TsbuildError } from '../errors.js';
import { parseChallenges, type Challenge } from './challenge.js';
import type { Credentials } from './credentials.js';
import type { Endpoint } from './endpoint.js';
import { describeErrors, describeStatus, parseErrorBody, RegistryError, UnauthorizedError } from './errors.js';
import type { HttpResponse, Transport } from '../http/transport.js';

export type Action = 'pull' | 'push';

/** `repository:library/nginx:pull,push` */
export function repositoryScope(path: string, actions: readonly Action[]): string {
  return `repository:${path}:${actions.join(',')}`;
}

/** Tokens are refreshed this long before they expire, so a request never carries a dying one. */
const EXPIRY_MARGIN_MS = 10_000;
/** The token spec's default lifetime when the server names none. */
const DEFAULT_TOKEN_SECONDS = 60;

type Scheme = { kind: 'none' } | { kind: 'basic' } | { kind: 'bearer'; realm: URL; service?: string };

export class Authenticator {
  private scheme: Promise<Scheme> | undefined;
  private readonly tokens = new Map<string, { value: Promise<string>; expires: number }>();

  constructor(
    private readonly endpoint: Endpoint,
    private readonly transport: Transport,
    private readonly credentials: Credentials | undefined,
  ) {}

  get hasCredentials(): boolean {
    return this.credentials !== undefined;
  }

  /** The ping: which scheme this registry wants. Done once per host and shared. */
  async ping(): Promise<Scheme> {
    this.scheme ??= this.discover();
    this.scheme.catch(() => {
      this.scheme = undefined; // a failed ping is not remembered
    });
    return this.scheme;
  }

  private async discover(): Promise<Scheme> {
    const url = new URL('/v2/', this.endpoint.base);
    const res = await this.transport.send({ method: 'GET', url });
    await res.discard();
    if (res.status === 200) return { kind: 'none' };
    if (res.status !== 401) {
      throw new RegistryError(`${url.href} does not answer as a registry (API v2)`, `${res.status} ${res.statusText}`, res.status);
    }
    return schemeOf(parseChallenges(res.headerAll('www-authenticate')), url);
  }

  /** The Authorization header for a request needing `scopes`, or undefined for none. */
  async authorization(scopes: readonly string[]): Promise<string | undefined> {
    const scheme = await this.ping();
    switch (scheme.kind) {
      case 'none':
        return undefined;
      case 'basic':
        return this.credentials ? basic(this.credentials) : undefined;
      case 'bearer':
        return `Bearer ${await this.token(scheme, scopes)}`;
    }
  }

  /**
   * After a 401 to an authorized request: forget the token used (it expired, or lacks a scope
   * the registry names in its challenge, which is then added). Returns the scopes to retry with,
   * or undefined if retrying cannot help.
   */
  async refresh(res: HttpResponse, scopes: readonly string[]): Promise<string[] | undefined> {
    const scheme = await this.ping();
    if (scheme.kind !== 'bearer') return undefined;
    this.tokens.delete(scopeKey(scopes));
    const challenge = parseChallenges(res.headerAll('www-authenticate')).find((c) => c.scheme === 'bearer');
    const more = challenge?.params.scope?.split(' ').filter((s) => s !== '' && !scopes.includes(s)) ?? [];
    return [...scopes, ...more];
  }

  private token(scheme: Extract<Scheme, { kind: 'bearer' }>, scopes: readonly string[]): Promise<string> {
    const key = scopeKey(scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.expires > Date.now() + EXPIRY_MARGIN_MS) return cached.value;
    const entry = { value: this.fetchToken(scheme, scopes, entryExpiry), expires: Infinity };
    function entryExpiry(ms: number): void {
      entry.expires = ms;
    }
    this.tokens.set(key, entry);
    entry.value.catch(() => this.tokens.delete(key));
    return entry.value;
  }

  /** Docker's token spec: GET realm?service=...&scope=... with Basic credentials if known. */
  async fetchToken(
    scheme: Extract<Scheme, { kind: 'bearer' }>,
    scopes: readonly string[],
    expiresAt?: (ms: number) => void,
  ): Promise<string> {
    const url = new URL(scheme.realm);
    if (scheme.service !== undefined) url.searchParams.set('service', scheme.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    if (this.credentials) url.searchParams.set('account', this.credentials.username);
    const headers: Record<string, string> = this.credentials ? { Authorization: basic(this.credentials) } : {};
    const issued = Date.now();
    const res = await this.transport.send({ method: 'GET', url, headers });
    const text = await res.text(1 << 20);
    const where = `${scheme.realm.origin}${scheme.realm.pathname}`;
    if (res.status === 401 || res.status === 403) {
      throw new UnauthorizedError(
        `authentication at ${where} failed`,
        tokenServerMessage(text) ?? describeStatus(res.status, res.statusText),
        res.status,
        parseErrorBody(text),
      );
    }
    if (res.status !== 200)
      throw new RegistryError(`token server ${where}`, `${res.status} ${res.statusText}`, res.status, parseErrorBody(text));
    let j: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      j = JSON.parse(text) as typeof j;
    } catch {
      throw new TsbuildError(`token server ${where} did not answer with JSON`);
    }
    const token = typeof j.token === 'string' && j.token !== '' ? j.token : typeof j.access_token === 'string' ? j.access_token : '';
    if (token === '') throw new TsbuildError(`token server ${where} answered without a token`);
    const seconds = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : DEFAULT_TOKEN_SECONDS;
    expiresAt?.(issued + seconds * 1000);
    return token;
  }

  /**
   * `login`: are these credentials accepted? Basic: GET /v2/ with them. Bearer: a token with no
   * scope, which a token server grants only to a known user (Docker's login does the same).
   */
  async verify(): Promise<void> {
    const scheme = await this.ping();
    if (scheme.kind === 'none' || !this.credentials) return;
    if (scheme.kind === 'bearer') {
      await this.fetchToken(scheme, []);
      return;
    }
    const url = new URL('/v2/', this.endpoint.base);
    const res = await this.transport.send({ method: 'GET', url, headers: { Authorization: basic(this.credentials) } });
    await res.discard();
    if (res.status !== 200)
      throw new UnauthorizedError(`login attempt to ${url.href}`, describeStatus(res.status, res.statusText), res.status);
  }
}

function schemeOf(challenges: readonly Challenge[], url: URL): Scheme {
  const bearer = challenges.find((c) => c.scheme === 'bearer');
  if (bearer) {
    const realm = bearer.params.realm;
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm ?? '');
    } catch {
      throw new RegistryError(url.href, 'the Bearer challenge has no usable realm', 401);
    }
    if (realmUrl.protocol !== 'https:' && realmUrl.protocol !== 'http:')
      throw new RegistryError(url.href, 'the token realm is not an http(s) URL', 401);
    return { kind: 'bearer', realm: realmUrl, ...(bearer.params.service !== undefined ? { service: bearer.params.service } : {}) };
  }
  if (challenges.some((c) => c.scheme === 'basic')) return { kind: 'basic' };
  throw new RegistryError(
    url.href,
    `asks for an authentication scheme tsbuild does not speak: ${challenges.map((c) => c.scheme).join(', ') || 'none named'}`,
    401,
  );
}

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

function scopeKey(scopes: readonly string[]): string {
  return [...new Set(scopes)].sort().join(' ');
}

/** Token servers answer failures as registry errors or as Docker Hub's {"details": "..."}. */
function tokenServerMessage(text: string): string | undefined {
  const errors = parseErrorBody(text);
  if (errors.length) return describeErrors(errors);
  try {
    const j = JSON.parse(text) as { details?: unknown; error?: unknown };
    if (typeof j.details === 'string') return j.details;
    if (typeof j.error === 'string') return j.error;
  } catch {
    // Not JSON: the status line says enough.
  }
  return undefined;
}
