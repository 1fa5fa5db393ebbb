// Errors a user sees. Each renders as one line; the CLI prints `error.message` and exits non-zero.

/** Base class for every error tsbuild raises on purpose (as opposed to a bug). */
export class TsbuildError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Where an instruction stands in its Dockerfile. Lines are 1-based, as editors show them. */
export interface SourceLocation {
  readonly file: string;
  readonly line: number;
}

export function formatLocation(loc: SourceLocation): string {
  return `${loc.file}:${loc.line}`;
}

/** An error tied to a Dockerfile line: renders as `Dockerfile:LINE: message`. */
export class DockerfileError extends TsbuildError {
  readonly location: SourceLocation;
  readonly detail: string;
  constructor(location: SourceLocation, detail: string, options?: { cause?: unknown }) {
    super(`${formatLocation(location)}: ${detail}`, options);
    this.location = location;
    this.detail = detail;
  }
}

/** A reference to an image or layer the store does not have. */
export class NotFoundError extends TsbuildError {}

/** A multi-platform image without the platform asked for: one line naming those it has. */
export class PlatformNotFoundError extends NotFoundError {}

/** Input the user gave that cannot be used: a bad flag value, a malformed archive, a source outside the context. */
export class InvalidInputError extends TsbuildError {}
