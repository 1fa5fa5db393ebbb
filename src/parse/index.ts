// The Dockerfile parser: text → typed BuildPlan, and the variable substitution the builder
// applies to the plan's words (and COPY heredoc bodies) at each step.
export { parseDockerfile, parseTrigger } from './dockerfile.js';
export { heredocContent, heredocMarkerOf, type HeredocMarker } from './heredoc.js';
export { checkWordSyntax, expandHeredocBody, expandWord, expandWords, type Env } from './substitute.js';
export type * from './plan.js';
