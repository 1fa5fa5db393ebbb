// The parser's helpers (word splitting, flags, durations) know what is wrong but not where; they
// throw a ParseProblem and the instruction loop turns it into a DockerfileError naming the line.
// A separate class keeps programming errors (TypeError, ...) from being reported as user mistakes.

export class ParseProblem extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ParseProblem';
  }
}
