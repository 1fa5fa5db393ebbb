// Parser directives: `# escape=`, `# syntax=` and `# check=` comment lines at the very top of a
// Dockerfile, read as BuildKit's DirectiveParser reads them (frontend/dockerfile/parser/
// directives.go): `# name = value`, name case-insensitive, each at most once. The first line
// that is not one (an instruction, a blank line, any other comment, an unknown name) ends them;
// after that such a line is an ordinary comment.
import type { SourceLocation } from '../errors.js';
import type { PlanWarning } from './plan.js';
import { ParseProblem } from './problem.js';

export type DirectiveName = 'escape' | 'syntax' | 'check';

export interface Directive {
  readonly name: DirectiveName;
  readonly value: string;
  readonly loc: SourceLocation;
}

// Go's \s is ASCII whitespace; (.+?)\s*$ drops the value's trailing blanks.
const DIRECTIVE = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$/;
const KNOWN = new Set<string>(['escape', 'syntax', 'check']);

/** Reads directives line by line until the first line that is not one. */
export class DirectiveReader {
  private done = false;
  private readonly seen = new Set<string>();

  /**
   * The directive on `line` (newline and leading blanks already trimmed), or undefined.
   * Throws a ParseProblem for a repeated directive, as BuildKit does.
   */
  read(line: string, loc: SourceLocation): Directive | undefined {
    if (this.done) return undefined;
    if (!line.startsWith('#')) return this.stop();
    const match = DIRECTIVE.exec(line.slice(1).replace(/^\s+/u, ''));
    const name = match?.[1]?.toLowerCase();
    if (match === null || name === undefined || !KNOWN.has(name)) return this.stop();
    if (this.seen.has(name)) throw new ParseProblem(`only one ${name} parser directive can be used`);
    this.seen.add(name);
    return { name: name as DirectiveName, value: match[2] as string, loc };
  }

  private stop(): undefined {
    this.done = true;
    return undefined;
  }
}

// The images whose Dockerfile syntax tsbuild implements: docker/dockerfile (and its -upstream
// twin) at version 1, its labs channel, or untagged. Pinning by digest is fine too.
const BUILTIN_SYNTAX =
  /^(?:docker\.io\/)?docker\/dockerfile(?:-upstream)?(?::(?:1(?:[.-][\w.-]*)?|latest|labs|master))?(?:@sha256:[0-9a-f]{64})?$/;

/**
 * `# syntax=IMAGE` makes BuildKit pull IMAGE and let it build the Dockerfile (the value's first
 * word is the image, the rest its arguments). tsbuild runs no frontend images; it always builds
 * with its own implementation of docker/dockerfile:1. Asking for that is fine; anything else
 * gets a warning rather than an error, since many such Dockerfiles build the same either way.
 */
export function syntaxDirective(directive: Directive): { ref: string; warning?: PlanWarning } {
  const ref = directive.value.split(' ', 1)[0] as string;
  if (BUILTIN_SYNTAX.test(ref)) return { ref };
  return {
    ref,
    warning: {
      loc: directive.loc,
      message:
        `# syntax=${directive.value}: tsbuild does not run Dockerfile frontend images; ` +
        'building with its built-in Dockerfile syntax (docker/dockerfile:1) instead',
    },
  };
}
