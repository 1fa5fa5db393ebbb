// CopyIgnoredFile: a COPY or ADD source from the context that the ignore file excludes, so the
// step would fail or copy less than written. As in BuildKit (dockerfile2llb/validations.go
// validateCopySourcePath), nothing is said when the ignore file has exceptions (`!path`): an
// excluded directory may then hold included files, which only reading the context could tell.
// Only the rules are read, never the context's files.
import type { IgnoreRules } from '../context/ignore.js';
import type { CopyStep } from '../parse/index.js';
import { RULES } from './rules.js';
import type { Report } from './written.js';

/** Sources that are not context paths: ADD's URLs and git repositories. */
const REMOTE = /^(?:[a-z][a-z0-9+.-]*:\/\/|git@)/i;

export function checkCopySources(step: CopyStep, expand: (word: string) => string, ignore: IgnoreRules, report: Report): void {
  if (ignore.file === undefined || ignore.hasExceptions) return;
  const command = step.kind === 'ADD' ? 'Add' : 'Copy';
  for (const word of step.sources) {
    const source = expand(word);
    if (REMOTE.test(source)) continue;
    const path = clean(source);
    // The context's root is never excluded as such.
    if (path === '') continue;
    if (ignore.excludes(path)) {
      report(RULES.CopyIgnoredFile, step.loc, `Attempting to ${command} file ${JSON.stringify(path)} that is excluded by .dockerignore`);
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
