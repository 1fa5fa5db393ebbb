// The executor: a BuildPlan (src/parse) becomes an image in the store. build.ts runs the stages,
// instructions.ts says what each instruction means, the *-step.ts files do the filesystem work
// in rootfs the container runner (src/container/runner.ts) prepares, and cachekeys.ts says when
// a step's earlier layer can be reused.
export { build } from './build.js';
export type { BuildEvents, BuildRequest, BuildResult } from './request.js';
