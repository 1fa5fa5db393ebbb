// What a cache did wrong once the build relied on it: a blob that could not be read or is not
// the layer its record names. The build (src/builder/build.ts) starts again without the caches.
import { TsbuildError } from '../errors.js';

export class CacheContentError extends TsbuildError {}
