// Bundles the compiled CLI (tsc's output in dist/cli/) into dist/bin/: the entry file
// (tsbuild.js, CommonJS) and the command line itself (main.mjs, ES modules) with one chunk per
// lazily loaded command, the packages it uses inlined.
// Run by `npm run build:ts` after tsc. Why: Node's ESM loader resolves, reads and links every
// module separately; a one-step build loaded ~180 files (ours and node_modules') before its
// first instruction. The bundle loads a handful, and the CPU time of a cached one-line build
// drops accordingly (numbers in the commit that added this file).
// Why the entry is CommonJS: `tsbuild --version` is answered by it alone (cli/start.ts), and
// Node starts a CommonJS file ~2 ms sooner than an ES module (no ESM loader to set up), a
// tenth of Node's whole start. dist/bin/package.json says so; everything else there is .mjs.
// The library (`dist/src/index.js`) stays unbundled: its users bundle as they like.
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(repo, 'dist/bin');

// Chunk names carry content hashes: start empty so that old chunks do not pile up.
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
writeFileSync(join(out, 'package.json'), '{ "type": "commonjs" }\n');

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  // Not minified: stack traces and the crc64 worker (a function sent as source text) stay readable.
  minify: false,
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: { main: join(repo, 'dist/cli/main.js') },
  outdir: out,
  outExtension: { '.js': '.mjs' },
  // Commands stay behind their dynamic import(): `tsbuild images` never loads the builder.
  splitting: true,
  format: 'esm',
  // dockerfile-ast and its dependencies are CommonJS and call require() for Node's modules;
  // an ES module has no require of its own.
  banner: {
    js: "import { createRequire as __tsbuildCreateRequire } from 'node:module'; const require = __tsbuildCreateRequire(import.meta.url);",
  },
});

await build({
  ...common,
  entryPoints: { tsbuild: join(repo, 'dist/cli/start.js') },
  outdir: out,
  format: 'cjs',
  // A CommonJS file has no import.meta: its own URL stands in (cli/version.ts reads
  // ../../package.json relative to it).
  banner: { js: "const __tsbuildUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': '__tsbuildUrl' },
  plugins: [
    {
      // start.js's import('./main.js') is the ESM bundle above, loaded as it is.
      name: 'main-bundle',
      setup(b) {
        b.onResolve({ filter: /^\.\/main\.js$/ }, () => ({ path: './main.mjs', external: true }));
      },
    },
  ],
});
