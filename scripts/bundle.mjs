// Bundles the compiled CLI (dist/cli/main.js, tsc's output) into dist/bin/: one entry file and
// one chunk per lazily loaded command, with the packages it uses inlined.
// Run by `npm run build:ts` after tsc. Why: Node's ESM loader resolves, reads and links every
// module separately; a one-step build loaded ~180 files (ours and node_modules') before its
// first instruction. The bundle loads a handful, and the CPU time of a cached one-line build
// drops accordingly (numbers in the commit that added this file).
// The library (`dist/src/index.js`) stays unbundled: its users bundle as they like.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');

// Chunk names carry content hashes: start empty so that old chunks do not pile up.
rmSync(join(repo, 'dist/bin'), { recursive: true, force: true });

await build({
  entryPoints: { tsbuild: join(repo, 'dist/cli/main.js') },
  outdir: join(repo, 'dist/bin'),
  bundle: true,
  // Commands stay behind their dynamic import(): `tsbuild images` never loads the builder.
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Not minified: stack traces and the crc64 worker (a function sent as source text) stay readable.
  minify: false,
  // dockerfile-ast and its dependencies are CommonJS and call require() for Node's modules;
  // an ES module has no require of its own.
  banner: {
    js: "import { createRequire as __tsbuildCreateRequire } from 'node:module'; const require = __tsbuildCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
