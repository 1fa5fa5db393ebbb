// Platforms as `--platform` spells them (`linux/amd64`, `linux/arm/v7`) and how an index entry
// is matched against one, following containerd's platform matcher: os and architecture must be
// equal; a requested variant must be equal too, where arm64's missing variant means v8.
import { InvalidInputError } from '../errors.js';
import { hostArchitecture } from './config.js';

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export function parsePlatform(s: string): Platform {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new InvalidInputError(`invalid platform "${s}": want os/arch[/variant], e.g. linux/amd64`);
  }
  const [os, arch, variant] = parts as [string, string, string | undefined];
  return normalize({ os, architecture: arch, ...(variant ? { variant } : {}) });
}

/** Common aliases folded to the names registries use (Go's GOARCH names). */
function normalize(p: Platform): Platform {
  const arch = { x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', i386: '386' }[p.architecture] ?? p.architecture;
  let variant = p.variant;
  if (arch === 'arm64' && variant === 'v8') variant = undefined;
  return { os: p.os, architecture: arch, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('/');
}

/** The platform this machine runs: what an image must be built for when the user names none. */
export function hostPlatform(): Platform {
  return { os: 'linux', architecture: hostArchitecture() };
}

/** Does an image or index entry for `have` run where `want` is asked for? */
export function platformMatches(want: Platform, have: { os?: string; architecture?: string; variant?: string }): boolean {
  if (have.os === undefined || have.architecture === undefined) return false;
  const w = normalize(want);
  const h = normalize({
    os: have.os.toLowerCase(),
    architecture: have.architecture.toLowerCase(),
    ...(have.variant ? { variant: have.variant.toLowerCase() } : {}),
  });
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  return w.variant === undefined || w.variant === h.variant;
}
