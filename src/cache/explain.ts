// Why a step missed the cache, in words: the step's inputs (what its key was made of, see
// format.ts StepInputs) compared with those of the cached step at the same place in the
// Dockerfile. A COPY whose sources changed is compared file by file, through the listings its
// checksum was computed over (src/builder/checksum.ts), to name the first file that differs.
import type { StepInputs } from './format.js';

/** Field → what a difference there means, in the order they are reported. */
const FIELDS: readonly [string, string][] = [
  ['parent', 'the layer it builds on changed (a step before it ran)'],
  ['command', 'the command changed'],
  ['env', ''],
  ['user', 'USER changed'],
  ['workdir', 'WORKDIR changed'],
  ['dir', 'the directory changed'],
  ['mounts', 'the RUN --mount options, or what a bind mount shows, changed'],
  ['network', 'the network mode changed'],
  ['security', 'RUN --security changed'],
  ['hosts', '--add-host changed'],
  ['heredocs', 'a heredoc changed'],
  ['source', 'the files of the --from stage or image changed'],
  ['sources', 'the sources changed'],
  ['dest', 'the destination changed'],
  ['options', 'the --chown, --chmod, --exclude, --parents or --link options changed'],
  ['checksum', ''],
];

export async function explainMiss(
  cached: StepInputs,
  now: StepInputs,
  listing: string | undefined,
  cachedListing: () => Promise<string | undefined>,
): Promise<string> {
  if (cached.kind !== now.kind) return `the cache has a ${cached.kind} step here, not ${now.kind}`;
  const reasons: string[] = [];
  for (const [field, words] of FIELDS) {
    const a = cached[field];
    const b = now[field];
    if (same(a, b)) continue;
    if (field === 'env') reasons.push(envChange(a, b));
    else if (field === 'checksum') reasons.push(await filesChange(listing, await cachedListing()));
    else if (
      (field === 'user' || field === 'workdir' || field === 'dir' || field === 'dest') &&
      typeof a === 'string' &&
      typeof b === 'string'
    )
      reasons.push(`${words} (${a || '""'} → ${b || '""'})`);
    else reasons.push(words);
  }
  // Fields this version does not know (a newer tsbuild's records): say so rather than nothing.
  return reasons.length ? reasons.join('; ') : 'its inputs differ from the cached step in a way this tsbuild cannot name';
}

function same(a: string | readonly string[] | undefined, b: string | readonly string[] | undefined): boolean {
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => x === b[i]);
  return a === b;
}

/** `env` holds NAME=<sha256 of the value> pairs: the names whose value changed, appeared or went. */
function envChange(a: string | readonly string[] | undefined, b: string | readonly string[] | undefined): string {
  const map = (v: typeof a): Map<string, string> => {
    const m = new Map<string, string>();
    for (const kv of Array.isArray(v) ? v : []) {
      const i = kv.indexOf('=');
      m.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return m;
  };
  const before = map(a);
  const after = map(b);
  const names = [...new Set([...before.keys(), ...after.keys()])].filter((n) => before.get(n) !== after.get(n));
  return `build arg or ENV value changed: ${names.join(', ')}`;
}

async function filesChange(listing: string | undefined, cached: string | undefined): Promise<string> {
  if (listing === undefined || cached === undefined) return 'the source files changed';
  const now = parseListing(listing);
  const before = parseListing(cached);
  // Names are as the walk made them (`/b.txt` under source `.`): said as paths in the context.
  const path = (name: string): string => name.replace(/^\.?\//, '');
  for (const [name, sig] of now) {
    const old = before.get(name);
    if (old === undefined) return `file added: ${path(name)}`;
    if (old !== sig)
      return `file changed: ${path(name)}${old.split(' ')[0] === sig.split(' ')[0] && sameContent(old, sig) ? ' (mode)' : ''}`;
  }
  for (const name of before.keys()) if (!now.has(name)) return `file removed: ${path(name)}`;
  return 'the source files changed';
}

function sameContent(a: string, b: string): boolean {
  const [, , ...ra] = a.split(' ');
  const [, , ...rb] = b.split(' ');
  return ra.join(' ') === rb.join(' ');
}

/**
 * The entries of a checksum's listing, name → "kind mode rest": `d NAME MODE` opens a directory
 * (a bare newline closes it), `f NAME MODE SIZE SHA256`, `l NAME MODE TARGET`, other kinds
 * `K NAME MODE RDEV`, `source SRC` starts a source, `g`/`u` lines are git and URL sources.
 */
export function parseListing(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  let source = '';
  const next = (): string => {
    let j = i;
    while (j < text.length && text[j] !== '\0' && text[j] !== '\n') j++;
    const t = text.slice(i, j);
    i = j + 1;
    return t;
  };
  while (i < text.length) {
    if (text[i] === '\n') {
      i++;
      continue;
    }
    const kind = next();
    if (kind === 'source') {
      source = next();
      continue;
    }
    if (kind === 'g' || kind === 'u') {
      out.set(source, `${kind} 0 ${next()}`);
      continue;
    }
    const name = next();
    const mode = next();
    if (kind === 'd') out.set(name, `d ${mode}`);
    else if (kind === 'f') out.set(name, `f ${mode} ${next()} ${next()}`);
    else {
      const rest = next();
      next(); // the empty field before the newline
      out.set(name, `${kind} ${mode} ${rest}`);
    }
  }
  return out;
}
