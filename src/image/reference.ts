// Image references with Docker's naming rules: `nginx` means docker.io/library/nginx:latest,
// `host:port/repo:tag` names another registry, `name@sha256:...` pins a digest.
// repositories.json keys use the *familiar* form (`nginx`, `localhost:5000/app`), as Docker's do.
import { InvalidInputError } from '../errors.js';
import { isDigest, type Digest } from '../digest.js';

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';

export interface Reference {
  /** Registry host[:port]. */
  readonly domain: string;
  /** Repository path within the registry, e.g. `library/nginx`. */
  readonly path: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DOMAIN_COMPONENT_RE = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;

function invalid(s: string, why: string): never {
  throw new InvalidInputError(`invalid reference format "${s}": ${why}`);
}

export function parseReference(s: string): Reference {
  if (s === '') invalid(s, 'empty');
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) invalid(s, 'bad digest');
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) invalid(s, 'bad tag');
  }
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      domain = first;
      path = rest.slice(slash + 1);
      const [host, port] = domain.split(':');
      if (!host || !host.split('.').every((c) => DOMAIN_COMPONENT_RE.test(c)) || (port !== undefined && !/^\d+$/.test(port))) {
        invalid(s, 'bad registry host');
      }
    }
  }
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  if (path.length > 255 || !path.split('/').every((c) => COMPONENT_RE.test(c))) {
    invalid(s, 'repository name must be lowercase letters, digits and separators');
  }
  return { domain, path, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/**
 * A reference a tag may be made under (`tag`): Docker refuses one that pins a digest, because a
 * digest names content: `name:tag@sha256:...` stored as a tag would claim content it may not be.
 */
export function parseTagReference(s: string): Reference {
  const r = parseReference(s);
  if (r.digest !== undefined) throw new InvalidInputError('refusing to create a tag with a digest reference');
  return r;
}

/** With `latest` filled in when neither tag nor digest is given. */
export function withDefaultTag(r: Reference): Reference {
  return r.tag === undefined && r.digest === undefined ? { ...r, tag: DEFAULT_TAG } : r;
}

/** `nginx`, `myorg/app`, `localhost:5000/app` — how Docker shows and stores repository names. */
export function familiarName(r: Reference): string {
  if (r.domain === DEFAULT_DOMAIN) {
    return r.path.startsWith('library/') && r.path.split('/').length === 2 ? r.path.slice('library/'.length) : r.path;
  }
  return `${r.domain}/${r.path}`;
}

/** `nginx:latest`, `app@sha256:...`. */
export function familiarString(r: Reference): string {
  let s = familiarName(r);
  if (r.tag !== undefined) s += `:${r.tag}`;
  if (r.digest !== undefined) s += `@${r.digest}`;
  return s;
}
