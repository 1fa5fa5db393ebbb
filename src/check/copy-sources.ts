// CopyIgnoredFile: a COPY or ADD source from the context that the ignore file excludes, so the
// step would fail or copy less than written. As in BuildKit (dockerfile2llb/validations.go
// validateCopySourcePath), nothing is said when the ignore file has exceptions (`!path`): an
// excluded directory may then hold included files, which only reading the context could tell.
// Only the ignore file is read, never the context's files.
import { readFile } from 'node:fs/promises';
import { loadIgnoreRules, type IgnoreRules } from '../context/ignore.js';
import type { CopyStep } from '../parse/index.js';
import { RULES } from './rules.js';
import type { Report } from './written.js';

/** Sources that are not context paths: ADD's URLs and git repositories. */
const REMOTE = /^(?:[a-z][a-z0-9+.-]*:\/\/|git@)/i;

export interface IgnoreFile {
  readonly rules: IgnoreRules;
  /**
   * A pattern excludes every entry of the root (`*`, `**`, `**\/*`): then even `COPY . …` copies
   * nothing (BuildKit's copySourceRootIgnored).
   */
  readonly rootExcluded: boolean;
}

/** The context's ignore file (`<Dockerfile>.dockerignore` first), read for its rules. */
export async function readIgnoreFile(contextDir: string, dockerfilePath: string | undefined): Promise<IgnoreFile> {
  const rules = await loadIgnoreRules(contextDir, dockerfilePath);
  if (rules.file === undefined) return { rules, rootExcluded: false };
  const patterns = (await readFile(rules.file, 'utf8')).split(/\r?\n/).map((line) => line.trim());
  return { rules, rootExcluded: patterns.some((pattern) => pattern === '*' || pattern === '**' || pattern === '**/*') };
}

export function checkCopySources(step: CopyStep, expand: (word: string) => string, ignore: IgnoreFile, report: Report): void {
  const { rules } = ignore;
  if (rules.file === undefined || rules.hasExceptions) return;
  const command = step.kind === 'ADD' ? 'Add' : 'Copy';
  for (const word of step.sources) {
    const source = expand(word);
    if (REMOTE.test(source)) continue;
    const path = clean(source);
    // The root is named as BuildKit's filepath.Clean names it: `.`, or `/`.
    const excluded = path === '' ? ignore.rootExcluded : rules.excludes(path);
    const shown = path === '' ? (source.startsWith('/') ? '/' : '.') : path;
    if (excluded) {
      report(RULES.CopyIgnoredFile, step.loc, `Attempting to ${command} file ${JSON.stringify(shown)} that is excluded by .dockerignore`);
    }
  }
}

/** filepath.Clean of a context path, relative to the root ('' for the root itself). */
function clean(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.join('/');
}
