// Where a registry named in a reference is reached. The reference's domain is what users type
// and what credentials are keyed by; the endpoint is the URL we actually talk to. Docker Hub is
// the one registry whose API lives on another host than its name.
import { InvalidInputError } from '../errors.js';
import { DEFAULT_DOMAIN } from '../image/reference.js';

/** Docker Hub's API host (docker.io is only a name). */
export const DOCKER_HUB_HOST = 'registry-1.docker.io';
/** The key Docker's config.json uses for Docker Hub credentials, kept for compatibility with `docker login`. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

const HUB_ALIASES = new Set([DEFAULT_DOMAIN, 'index.docker.io', DOCKER_HUB_HOST]);

export interface Endpoint {
  /** The registry's name as references spell it (`docker.io`, `127.0.0.1:5000`). */
  readonly domain: string;
  /** `https://registry-1.docker.io`, `http://127.0.0.1:5000`: no trailing slash. */
  readonly base: string;
  readonly insecure: boolean;
}

export interface EndpointOptions {
  /** Hosts (host or host:port) reached over plain HTTP, like dockerd's --insecure-registry. */
  readonly insecureRegistries?: readonly string[];
}

/** `docker.io`, `index.docker.io` and `registry-1.docker.io` all name Docker Hub. */
export function isDockerHub(domain: string): boolean {
  return HUB_ALIASES.has(domain.toLowerCase());
}

/** The host part of `host[:port]`, with IPv6 brackets removed. */
function hostOf(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(1, domain.indexOf(']'));
  const colon = domain.lastIndexOf(':');
  return colon >= 0 ? domain.slice(0, colon) : domain;
}

/**
 * Loopback registries speak plain HTTP, as dockerd assumes for 127.0.0.0/8 and localhost: a
 * developer's local registry rarely has a certificate, and traffic never leaves the machine.
 */
function isLoopback(domain: string): boolean {
  const host = hostOf(domain).toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function endpointFor(domain: string, opts: EndpointOptions = {}): Endpoint {
  if (domain === '' || /[/\s@]/.test(domain)) throw new InvalidInputError(`invalid registry host "${domain}"`);
  if (isDockerHub(domain)) return { domain: DEFAULT_DOMAIN, base: `https://${DOCKER_HUB_HOST}`, insecure: false };
  const named = (opts.insecureRegistries ?? []).some((h) => h === domain || h === hostOf(domain));
  const insecure = named || isLoopback(domain);
  return { domain, base: `${insecure ? 'http' : 'https'}://${domain}`, insecure };
}

/**
 * The host name a config.json key or a `login` argument stands for: `https://host:5000/v1/`
 * and `host:5000` both mean `host:5000` (Docker's ConvertToHostname).
 */
export function registryHostname(server: string): string {
  let s = server.trim();
  s = s.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = s.indexOf('/');
  if (slash >= 0) s = s.slice(0, slash);
  return isDockerHub(s) ? DEFAULT_DOMAIN : s;
}
