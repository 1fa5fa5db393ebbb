// The build context's .dockerignore, matched by @balena/dockerignore (a port of Docker's own
// matcher: patterns relative to the context root, `*`/`?`/`**`, `!` exceptions, last match wins,
// a path is excluded when it or a parent directory is).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import dockerignore from '@balena/dockerignore';

export interface IgnoreRules {
  /** The file the rules were read from; undefined when there is none. */
  readonly file: string | undefined;
  /** The file's text ('' when there is none): what a memo of a walk under these rules is keyed by. */
  readonly text: string;
  /**
   * Whether some rule is an exception (`!path`). Only then can an excluded directory hold
   * included files, so only then is it worth looking inside one.
   */
  readonly hasExceptions: boolean;
  /** Is this context-relative path ('/'-separated, no leading '/') excluded? */
  excludes(path: string): boolean;
}

/**
 * Read the rules for a context. Like BuildKit's dockerui, a `<Dockerfile>.dockerignore` next to
 * the Dockerfile wins over the context's `.dockerignore`.
 */
export async function loadIgnoreRules(contextDir: string, dockerfile?: string): Promise<IgnoreRules> {
  const candidates = [...(dockerfile ? [`${dockerfile}.dockerignore`] : []), join(contextDir, '.dockerignore')];
  for (const file of candidates) {
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (text !== undefined) return parseIgnoreRules(text, file);
  }
  return parseIgnoreRules('', undefined);
}

/** Rules from the text of a .dockerignore file. */
export function parseIgnoreRules(text: string, file: string | undefined): IgnoreRules {
  // Docker strips a UTF-8 byte order mark (patternmatcher/ignorefile).
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  // Linux paths are case-sensitive, and so is Docker's matcher there; the library's default
  // is case-insensitive (it mimics Docker on Windows and macOS).
  const matcher = dockerignore.default({ ignorecase: false }).add(lines);
  const hasExceptions = lines.some((line) => !line.startsWith('#') && /^!\s*\S/.test(line.trim()));
  // Without a rule (no file, or only comments and blank lines) nothing is excluded; skipping
  // the matcher then matters when every path of a large context is asked about.
  const hasRules = lines.some((line) => !line.startsWith('#') && line.trim() !== '');
  return {
    file,
    text,
    hasExceptions,
    excludes: hasRules ? (path) => path !== '' && matcher.ignores(path) : () => false,
  };
}
