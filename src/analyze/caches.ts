// Package managers' caches: files a package manager leaves behind that the running image never
// needs. Matched by path alone (no file is read), so the list is of well-known locations only.
//
// For a RUN that leaves one, the fix is first a cache mount at the manager's cache directory
// (`RUN --mount=type=cache,target=DIR`): the manager finds its cache again on the next build,
// and none of it reaches the layer. The manager's own cleanup in the same RUN comes second: it
// keeps the layer clean too, but every build downloads everything again. The recipes follow
// BuildKit's Dockerfile reference where it has one (apt) and each manager's documented cache
// directory otherwise.

/** The cache mount that keeps a manager's cache out of the layer. */
export interface CacheMount {
  /** Mount targets. Absent: the cache's own directory, where it was found (the pattern's group). */
  readonly targets?: readonly string[];
  /** `sharing=locked`: the manager cannot share its cache with a parallel build. */
  readonly locked?: boolean;
  /** The command the RUN runs, as a user writes it (`…` for what varies). */
  readonly command: string;
  /** What else to change for the cache to be filled and used, as a sentence. */
  readonly also?: string;
}

export interface CacheKind {
  readonly manager: string;
  /** What the files are, for the hint's text. */
  readonly what: string;
  /** The manager's own cleanup in the RUN that makes them, for a build without a cache mount. */
  readonly cleanup: string;
  /** Matches image paths (no leading '/') inside the cache; group 1 is the cache's directory. */
  readonly pattern: RegExp;
  readonly mount: CacheMount;
}

// A home directory: root's, or any user's under /home.
const HOME = '(?:root|home/[^/]+)';

/**
 * BuildKit's reference mounts all of /var/cache/apt and /var/lib/apt, each to one build at a time
 * (apt locks them), and removes docker-clean, the APT hook Debian's and Ubuntu's images carry
 * to delete downloaded packages after every install.
 */
const APT_MOUNT: CacheMount = {
  targets: ['/var/cache/apt', '/var/lib/apt'],
  locked: true,
  command: 'apt-get update && apt-get install -y …',
  also: "Before it, `RUN rm -f /etc/apt/apt.conf.d/docker-clean; echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/keep-cache`: Debian's and Ubuntu's images delete downloaded packages after each install otherwise.",
};

export const CACHE_KINDS: readonly CacheKind[] = [
  {
    manager: 'apt',
    what: 'apt package lists',
    cleanup: 'end the RUN with `&& rm -rf /var/lib/apt/lists/*`',
    pattern: /^(var\/lib\/apt)\/lists\/(?!lock$)./,
    mount: APT_MOUNT,
  },
  {
    manager: 'apt',
    what: 'apt caches and downloaded .deb files',
    cleanup: 'end the RUN with `&& apt-get clean` (or `rm -rf /var/cache/apt/*`)',
    pattern: /^(var\/cache\/apt)\/./,
    mount: APT_MOUNT,
  },
  {
    manager: 'apk',
    what: 'the apk cache',
    cleanup: 'use `apk add --no-cache`',
    pattern: /^(var\/cache\/apk|etc\/apk\/cache)\/./,
    // The package index goes to /var/cache/apk; packages are kept only where /etc/apk/cache
    // exists, which the second mount makes.
    mount: {
      targets: ['/var/cache/apk', '/etc/apk/cache'],
      command: 'apk add …',
      also: 'Without `--no-cache`, which would bypass the cache.',
    },
  },
  {
    manager: 'dnf',
    what: 'the dnf cache',
    cleanup: 'end the RUN with `&& dnf clean all`',
    pattern: /^(var\/cache\/dnf)\/./,
    mount: { command: 'dnf install -y --setopt=keepcache=1 …', also: 'keepcache=1 keeps the downloaded packages, not only the metadata.' },
  },
  {
    manager: 'yum',
    what: 'the yum cache',
    cleanup: 'end the RUN with `&& yum clean all`',
    pattern: /^(var\/cache\/yum)\/./,
    mount: { command: 'yum install -y --setopt=keepcache=1 …', also: 'keepcache=1 keeps the downloaded packages, not only the metadata.' },
  },
  {
    manager: 'pip',
    what: 'the pip cache',
    cleanup: 'use `pip install --no-cache-dir`',
    pattern: new RegExp(`^(${HOME}/\\.cache/pip)/.`),
    mount: { command: 'pip install -r requirements.txt', also: 'Without `--no-cache-dir`, which would bypass the cache.' },
  },
  {
    manager: 'npm',
    what: 'the npm cache',
    cleanup: 'end the RUN with `&& npm cache clean --force`',
    pattern: new RegExp(`^(${HOME}/\\.npm)/.`),
    mount: { command: 'npm ci' },
  },
  {
    manager: 'yarn',
    what: 'the yarn cache',
    cleanup: 'end the RUN with `&& yarn cache clean`',
    pattern: new RegExp(`^(usr/local/share/\\.cache/yarn|${HOME}/\\.cache/yarn)/.`),
    mount: { command: 'yarn install --frozen-lockfile' },
  },
  {
    manager: 'go',
    what: 'the Go build cache',
    cleanup: 'end the RUN with `&& go clean -cache` (or build in a separate stage)',
    pattern: new RegExp(`^(${HOME}/\\.cache/go-build)/.`),
    mount: { command: 'go build …' },
  },
  {
    manager: 'go',
    what: 'the Go module cache',
    cleanup: 'end the RUN with `&& go clean -modcache` (or build in a separate stage)',
    // GOPATH's: /go in the golang images, ~/go otherwise.
    pattern: new RegExp(`^((?:${HOME}/)?go/pkg/mod)/.`),
    mount: { command: 'go mod download' },
  },
];

/** The cache a path belongs to, if any. */
export function cacheOf(path: string): CacheKind | undefined {
  return CACHE_KINDS.find((k) => k.pattern.test(path));
}

/** A file of the cache as the image has it: its path (no leading '/') and owner. */
export interface CachedFile {
  readonly path: string;
  readonly uid: number;
  readonly gid: number;
}

/**
 * The RUN line that keeps `kind`'s cache in cache mounts, for a cache found at `found`. A mount's
 * directory is root's unless it says otherwise: a cache at its own directory that another user
 * filled gets that user's uid and gid, so the same RUN can write there again.
 */
export function cacheMountRun(kind: CacheKind, found: CachedFile): string {
  const { targets, locked, command } = kind.mount;
  const own = `/${kind.pattern.exec(found.path)?.[1] ?? ''}`;
  const owner = !targets && (found.uid !== 0 || found.gid !== 0) ? `,uid=${found.uid},gid=${found.gid}` : '';
  const mounts = (targets ?? [own]).map((t) => `--mount=type=cache,target=${t}${locked ? ',sharing=locked' : ''}${owner}`);
  return `RUN ${mounts.join(' ')} ${command}`;
}

/** What to do in the RUN that leaves the cache: mount it, or else clean it up. */
export function cacheFix(kind: CacheKind, found: CachedFile): string {
  return [
    `In that RUN, keep the cache in a cache mount: \`${cacheMountRun(kind, found)}\`.`,
    ...(kind.mount.also ? [kind.mount.also] : []),
    'The mount keeps the files from one build to the next and out of the image.',
    `Or, without a cache mount, ${kind.cleanup}.`,
  ].join(' ');
}
