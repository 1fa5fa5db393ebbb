// Package managers' caches: files a package manager leaves behind that the running image never
// needs. Matched by path alone (no file is read), so the list is of well-known locations only.

export interface CacheKind {
  readonly manager: string;
  /** What the files are, for the hint's text. */
  readonly what: string;
  /** How to avoid leaving them, in the RUN that makes them. */
  readonly fix: string;
  /** Matches image paths (no leading '/') inside the cache. */
  readonly pattern: RegExp;
}

// A home directory: root's, or any user's under /home.
const HOME = '(?:root|home/[^/]+)';

export const CACHE_KINDS: readonly CacheKind[] = [
  {
    manager: 'apt',
    what: 'apt package lists',
    fix: 'end the same RUN with `&& rm -rf /var/lib/apt/lists/*`',
    pattern: /^var\/lib\/apt\/lists\/(?!lock$)./,
  },
  {
    manager: 'apt',
    what: 'apt caches and downloaded .deb files',
    fix: 'end the same RUN with `&& apt-get clean` (or `rm -rf /var/cache/apt/*`)',
    pattern: /^var\/cache\/apt\/./,
  },
  { manager: 'apk', what: 'the apk cache', fix: 'use `apk add --no-cache`', pattern: /^(?:var\/cache\/apk|etc\/apk\/cache)\/./ },
  {
    manager: 'dnf/yum',
    what: 'the dnf/yum cache',
    fix: 'end the same RUN with `&& dnf clean all` (or `yum clean all`)',
    pattern: /^var\/cache\/(?:dnf|yum)\/./,
  },
  { manager: 'pip', what: 'the pip cache', fix: 'use `pip install --no-cache-dir`', pattern: new RegExp(`^${HOME}/\\.cache/pip/.`) },
  {
    manager: 'npm',
    what: 'the npm cache',
    fix: 'end the same RUN with `&& npm cache clean --force`',
    pattern: new RegExp(`^${HOME}/\\.npm/.`),
  },
  {
    manager: 'yarn',
    what: 'the yarn cache',
    fix: 'end the same RUN with `&& yarn cache clean`',
    pattern: new RegExp(`^(?:usr/local/share/\\.cache/yarn|${HOME}/\\.cache/yarn)/.`),
  },
  {
    manager: 'go',
    what: 'the Go build cache',
    fix: 'end the same RUN with `&& go clean -cache` (or build in a separate stage)',
    pattern: new RegExp(`^${HOME}/\\.cache/go-build/.`),
  },
];

/** The cache a path belongs to, if any. */
export function cacheOf(path: string): CacheKind | undefined {
  return CACHE_KINDS.find((k) => k.pattern.test(path));
}
