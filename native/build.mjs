// Builds native/out/tsbuild-helper from native/helper/*.c with the system C compiler.
// Run by `npm run build:helper` (and so by `npm install` through `prepare`).
// A single compiler call on purpose: no make, cmake or node-gyp to install or to debug.
// Honours $CC (may carry flags, e.g. "ccache gcc") and $CFLAGS, like make does.
// libdeflate (the gzip subcommand's compressor) and OpenSSL's libcrypto (its sha256 of a layer,
// with the CPU's SHA instructions where it has them, as Node's own) are linked statically, so
// the helper runs on a machine without them; building needs their headers and archives
// (apt-get install libdeflate-dev libssl-dev).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const sourceDir = join(here, 'helper');
const outDir = join(here, 'out');
const output = join(outDir, 'tsbuild-helper');

function fail(message) {
  console.error(`build:helper: ${message}`);
  process.exit(1);
}

if (process.platform !== 'linux') {
  fail(`tsbuild-helper needs Linux (namespaces, overlayfs); this is ${process.platform}`);
}

const [cc, ...ccArgs] = (process.env.CC?.trim() || 'cc').split(/\s+/);
const probe = spawnSync(cc, [...ccArgs, '--version'], { stdio: 'ignore' });
if (probe.error) {
  fail(`no C compiler found (${cc}); install one with: apt-get install -y gcc`);
}

/** A static library's archive where the compiler finds it; fails naming the package when it is not installed. */
function archive(file, pkg) {
  const r = spawnSync(cc, [...ccArgs, `-print-file-name=${file}`], { encoding: 'utf8' });
  const path = r.status === 0 ? r.stdout.trim() : '';
  if (!path.startsWith('/') || !existsSync(path)) fail(`${file} not found; install it with: apt-get install -y ${pkg}`);
  return path;
}
const libdeflate = archive('libdeflate.a', 'libdeflate-dev');
const libcrypto = archive('libcrypto.a', 'libssl-dev');

const sources = readdirSync(sourceDir)
  .filter((name) => name.endsWith('.c'))
  .sort()
  .map((name) => join(sourceDir, name));
const cflags = (process.env.CFLAGS ?? '').split(/\s+/).filter(Boolean);

mkdirSync(outDir, { recursive: true });
const args = [
  ...ccArgs,
  '-std=gnu11',
  '-D_GNU_SOURCE',
  '-O2',
  '-Wall',
  '-Wextra',
  ...cflags,
  '-pthread',
  '-o',
  output,
  ...sources,
  libdeflate,
  libcrypto,
];
const result = spawnSync(cc, args, { stdio: 'inherit' });
if (result.error) fail(`${cc}: ${result.error.message}`);
if (result.status !== 0) fail(`${cc} exited with status ${result.status ?? result.signal}`);
console.log(`build:helper: built ${output}`);
