// tsbuild as a library: what the CLI does, for programs. Parse a Dockerfile, build it into a
// store, look at images through the image model's read-only views, save and load archives, pull
// and push, analyze. docs/library.md has an example. Importing this loads every part of tsbuild;
// the CLI imports the parts it needs one by one to start fast.
export { TsbuildError, DockerfileError, NotFoundError, InvalidInputError, type SourceLocation } from './errors.js';
export { shortId, type Digest } from './digest.js';
export type { TransferProgress } from './progress.js';

// The image model.
export type { Image, Layer } from './image/image.js';
export type { ImageConfig, RuntimeConfig, HistoryEntry } from './image/config.js';
export { parseReference, familiarString, type Reference } from './image/reference.js';
export { parsePlatform, formatPlatform, type Platform } from './image/platform.js';

// Dockerfile → plan → image.
export { parseDockerfile } from './parse/index.js';
export type { BuildPlan, Stage, Step } from './parse/plan.js';
export { build, type BuildEvents, type BuildRequest, type BuildResult } from './builder/index.js';
export type { NamedContext } from './builder/request.js';
export { parseCacheFrom, parseCacheTo, type CacheFrom, type CacheTo } from './cache/spec.js';
export { exportFilesystem, type FilesystemOutput } from './builder/export-fs.js';
export { fetchContext, isRemoteContext, type FetchedContext } from './builder/remote-context.js';

// The store.
export {
  Store,
  defaultRoot,
  type StoreOptions,
  type StoredImage,
  type StoredLayer,
  type DiskUsage,
  type PrunePlan,
} from './store/store.js';
export { bootstrapBusybox } from './bootstrap/busybox.js';
export { runContainer, type ContainerRequest } from './container/run.js';
export { parseMount, parseTmpfs, parseVolume, readEnvFile, type RunMount } from './container/run-options.js';
export type { TerminalIO, WindowSize } from './runtime/helper.js';

// Archives in and out.
export { planSave, saveToFile, saveToStream, archiveStream, ARCHIVE_FORMATS, type ArchiveFormat, type SaveTarget } from './archive/save.js';
export { saveTargets, selectImages } from './archive/select.js';
export { loadArchive, type LoadOptions, type LoadedImage } from './archive/load.js';
export { importRootfs, type ImportOptions } from './archive/rootfs.js';

// Registries.
export {
  pullImage,
  pushImage,
  login,
  DockerConfig,
  type PullOptions,
  type PushOptions,
  type PullResult,
  type PushResult,
} from './registry/index.js';

// Analysis.
export { analyzeImage, type AnalyzeOptions, type ImageAnalysis } from './analyze/index.js';
export { analyzeSource, diffImages, openSource, type ImageDiff, type SourceImage } from './analyze/index.js';
