// `build --check`: the Dockerfile linter (BuildKit's rules and tsbuild's size rules).
export { checkDockerfile, CHECK_BUILD_ARG, type CheckOptions, type CheckResult } from './check.js';
export { parseCheckOptions, type CheckConfig } from './config.js';
export { RULES, type Rule, type Violation } from './rules.js';
