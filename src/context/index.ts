// The build context: what COPY and ADD may read, with .dockerignore applied.
export { BuildContext, openContext, openRootfsSource, type ContextSource, type OpenContextOptions } from './context.js';
export { ContextHashCache, RACY_MARGIN_MS } from './hashcache.js';
export { TreeMemos, type TreeMemo, type TreeMemoKey } from './treememo.js';
export { loadIgnoreRules, parseIgnoreRules, type IgnoreRules } from './ignore.js';
export { compileMatch, hasWildcards } from './pattern.js';
export { resolveSelected, selectionOf, type SelectedSource, type SelectOptions } from './select.js';
