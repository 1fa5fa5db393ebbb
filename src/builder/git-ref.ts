// Which ADD sources are git repositories, and what they ask for: BuildKit's dfgitutil.ParseGitRef
// (frontend/dockerfile/dfgitutil/git_ref.go) over gitutil.ParseURL (util/gitutil/git_url.go).
//  - `http://` and `https://` URLs whose path ends in `.git`, and every `git://` and `ssh://`
//    URL (the scheme in any case); scp-like `user@host:path` (sshutil's regexp) is ssh too.
//    Any other `scheme://` is not git: the source is then a URL or a local path as before.
//  - The fragment is `#ref:subdir` (either part optional); the subdir is cleaned, relative.
//  - The query may name `ref`, `tag` (refs/tags/…), `branch` (refs/heads/…), `subdir`,
//    `checksum` or `commit` (a commit hash prefix to pin), and `keep-git-dir[=bool]`; anything
//    else, a value given twice, or a conflict with the fragment is BuildKit's error.
// The forms BuildKit accepts only for build contexts (`github.com/o/r`) stay local paths, as
// they do for ADD there.
import { posix } from 'node:path';
import { InvalidInputError } from '../errors.js';

export interface GitRef {
  /** The repository, without query or fragment: what `git` is given. */
  readonly remote: string;
  readonly scheme: 'http' | 'https' | 'git' | 'ssh';
  /** Branch, tag, full ref name or commit; '' for the remote's HEAD. */
  readonly ref: string;
  /** A directory of the repository to copy instead of its root; '' for the root. */
  readonly subdir: string;
  /** A commit hash (or prefix) the ref must resolve to. */
  readonly checksum?: string;
  /** From the URL's query; undefined when it does not say. */
  readonly keepGitDir?: boolean;
}

const SCHEMES = new Set(['http', 'https', 'git', 'ssh']);
const SCP_STYLE = /^([a-zA-Z0-9\-_]+)@([a-zA-Z0-9\-.]+):(.*?)(?:\?(.*?))?(?:#(.*))?$/;

/** The git reference an ADD source names, or undefined when the source is not a git repository. */
export function parseGitRef(source: string): GitRef | undefined {
  if (source.startsWith('./') || source.startsWith('../')) return undefined;
  const proto = /^([a-zA-Z0-9]+):\/\//.exec(source);
  let remote: string;
  let scheme: GitRef['scheme'];
  let query: string | undefined;
  let fragment: string | undefined;
  if (proto) {
    const name = proto[1]!.toLowerCase();
    if (!SCHEMES.has(name)) return undefined;
    scheme = name as GitRef['scheme'];
    const m = /^([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/s.exec(source)!;
    remote = m[1]!;
    query = m[2];
    fragment = m[3];
    const path = /^[a-zA-Z0-9]+:\/\/[^/]*(.*)$/.exec(remote)?.[1] ?? '';
    if ((scheme === 'http' || scheme === 'https') && !path.endsWith('.git')) return undefined;
  } else {
    const m = SCP_STYLE.exec(source);
    if (!m) return undefined;
    scheme = 'ssh';
    remote = `${m[1]}@${m[2]}:${m[3]}`;
    query = m[4];
    fragment = m[5];
  }
  let ref = '';
  let subdir = '';
  if (fragment) {
    const colon = fragment.indexOf(':');
    ref = colon < 0 ? fragment : fragment.slice(0, colon);
    subdir = cleanSubdir(colon < 0 ? '' : fragment.slice(colon + 1));
  }
  return withQuery({ remote, scheme, ref, subdir }, query);
}

function cleanSubdir(s: string): string {
  // Go's path.Join cleans a trailing slash away too.
  return posix.join('/', s).replace(/^\/+|\/+$/g, '');
}

/** dfgitutil's loadQuery. */
function withQuery(base: GitRef, query: string | undefined): GitRef {
  if (!query) return base;
  const params = new URLSearchParams(query);
  const seen = new Set<string>();
  let { ref, subdir } = base;
  let checksum: string | undefined;
  let keepGitDir: boolean | undefined;
  let tag = '';
  let branch = '';
  const flag = (k: string, v: string): boolean => {
    if (v === '') return true;
    if (/^(1|t|T|TRUE|true|True)$/.test(v)) return true;
    if (/^(0|f|F|FALSE|false|False)$/.test(v)) return false;
    throw new InvalidInputError(`invalid ${k} value: ${JSON.stringify(v)}`);
  };
  for (const [k, v] of params) {
    if (seen.has(k)) throw new InvalidInputError(`query ${JSON.stringify(k)} has multiple values`);
    seen.add(k);
    if (v === '' && k !== 'keep-git-dir' && k !== 'submodules' && k !== 'fetch-by-commit') {
      throw new InvalidInputError(`query ${JSON.stringify(k)} has no value`);
    }
    switch (k) {
      case 'ref':
        if (ref !== '' && ref !== v) throw conflict('ref', ref, v);
        ref = v;
        break;
      case 'tag':
        tag = v.startsWith('refs/tags/') ? v : `refs/tags/${v}`;
        break;
      case 'branch':
        branch = v.startsWith('refs/heads/') ? v : `refs/heads/${v}`;
        break;
      case 'subdir':
        if (subdir !== '' && subdir !== cleanSubdir(v)) throw conflict('subdir', subdir, v);
        subdir = cleanSubdir(v);
        break;
      case 'checksum':
      case 'commit':
        checksum = v;
        break;
      case 'keep-git-dir':
        keepGitDir = flag(k, v);
        break;
      default:
        throw new InvalidInputError(`unexpected query ${JSON.stringify(k)}`);
    }
  }
  if (tag !== '') {
    if (ref !== '' && ref !== tag) throw conflict('ref', ref, tag);
    ref = tag;
  }
  if (branch !== '') {
    if (tag !== '') throw new InvalidInputError('branch conflicts with tag');
    if (ref !== '' && ref !== branch) throw conflict('ref', ref, branch);
    ref = branch;
  }
  return {
    ...base,
    ref,
    subdir,
    ...(checksum !== undefined ? { checksum } : {}),
    ...(keepGitDir !== undefined ? { keepGitDir } : {}),
  };
}

function conflict(what: string, a: string, b: string): InvalidInputError {
  return new InvalidInputError(`${what} conflicts: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
}

/** What ADD's flags and the URL's query say together; they must agree where both speak (dispatchCopy). */
export function gitSettings(
  ref: GitRef,
  flags: { readonly keepGitDir?: boolean | undefined; readonly checksum?: string | undefined },
): { keepGitDir: boolean; checksum: string | undefined } {
  if (flags.keepGitDir !== undefined && ref.keepGitDir !== undefined && flags.keepGitDir !== ref.keepGitDir) {
    throw new InvalidInputError('inconsistent keep-git-dir configuration');
  }
  if (flags.checksum !== undefined && ref.checksum !== undefined && flags.checksum !== ref.checksum) {
    throw new InvalidInputError(`checksum mismatch ${JSON.stringify(flags.checksum)} != ${JSON.stringify(ref.checksum)}`);
  }
  return { keepGitDir: ref.keepGitDir ?? flags.keepGitDir ?? false, checksum: flags.checksum ?? ref.checksum };
}

/** The remote with any password in it hidden, for messages. */
export function redactRemote(remote: string): string {
  return remote.replace(/^([a-zA-Z0-9]+:\/\/[^/@:]*):[^/@]*@/, '$1:xxxxx@');
}
