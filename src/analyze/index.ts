// Image analysis: which Dockerfile line made an image big, what it wastes, and how to fix it,
// from stored metadata and tar-splits only (no layer is extracted).
export { analyzeImage, analyzeImageWithTree, ANALYZE_DEFAULTS, type AnalyzeOptions } from './analyze.js';
export {
  DEFAULT_THRESHOLDS,
  evaluateCi,
  parseByteThreshold,
  parseRatioThreshold,
  type CiResult,
  type RuleName,
  type RuleResult,
  type Thresholds,
} from './ci.js';
export { describeOrigin, type InstructionKind, type LayerOrigin } from './origin.js';
export { TREE_DEFAULTS, type TreeDir, type TreeFile, type TreeGroup, type TreeNode, type TreeOptions } from './tree.js';
export type * from './types.js';
export { renderHtmlReport, type HtmlReport } from './html/report.js';
export { analyzeSource, analyzeSourceWithTree } from './analyze.js';
export { diffImages, comparePaths, type ImageDiff, type PathChange, type PathState, type Difference } from './diff.js';
export {
  listedSizes,
  openSource,
  parseSourceName,
  storeSource,
  type SourceImage,
  type SourceLayer,
  type SourceName,
  type Transport,
} from './source.js';
