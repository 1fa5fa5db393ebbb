// The native helper's API: everything tsbuild needs from the kernel that Node cannot do.
// One module per subcommand; this file is the single import point for the rest of tsbuild.
export { helperPath, HelperError } from './binary.js';
export { runInContainer, runArgs, type RunIO, type TerminalIO, type WindowSize } from './run.js';
export { mount, mountFuseOverlay, unmount, mountRootfs, unmountRootfs, type MountSpec, type MountedRootfs } from './mount.js';
export { walk } from './walk.js';
export { stampTree, type TreeStamp } from './stamp.js';
export { applyOps } from './apply-ops.js';
export { supportsDType } from './dtype.js';
export { mountsUnder } from './mountinfo.js';
export { reapLater, type ReapPlaces } from './reap.js';
