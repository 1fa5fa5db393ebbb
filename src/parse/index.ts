// The Dockerfile parser: text → typed BuildPlan, and the variable substitution the builder
// applies to the plan's words (and COPY heredoc bodies) at each step.
export { parseDockerfile, parseTrigger } from './dockerfile.js';
export { heredocContent, heredocMarkerOf, type HeredocMarker } from './heredoc.js';
export { checkWordSyntax, expandHeredocBody, expandWord, expandWords, type Env } from './substitute.js';
export type * from './plan.js';
// For the linter (src/check), which reads the instructions as written as well as the plan.
export { readDockerfile, type LogicalLine, type DockerfileSource } from './lines.js';
export { referencedVariables } from './substitute.js';
export { extractFlags, splitOnWhitespace } from './words.js';
