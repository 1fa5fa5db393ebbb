// The Dockerfile parser: text → typed BuildPlan, and the variable substitution the builder
// applies to the plan's words at each step.
export { parseDockerfile } from './dockerfile.js';
export { checkWordSyntax, expandWord, expandWords, type Env } from './substitute.js';
export type * from './plan.js';
