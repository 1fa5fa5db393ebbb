#!/usr/bin/env -S node --max-semi-space-size=8 --
// The tsbuild executable's first module (the bundle's CommonJS entry, dist/bin/tsbuild.js:
// scripts/bundle.mjs). It answers `tsbuild --version` with nothing else loaded, since scripts
// call that many times and each call pays Node's start plus whatever modules we load;
// everything else goes to main.ts, with Node's compile cache turned on first (compile-cache.ts)
// so that main and the command's modules load from it.
// (`node --` above: Node 20 reads `--env-file` anywhere on its command line, ours included, so
// `tsbuild run --env-file F` would be Node's unless its options end before the script;
// nodejs/node#54232.)
// (`--max-semi-space-size=8`: from Node 22 on V8 lets the young generation grow to 2 × 16 MB,
// and a COPY of 20,000 files, which allocates fast and keeps little, then peaked at 170 MB
// instead of 133 MB on Node 24, with no time saved. The bench runs the entry with the flags
// of this line, as the installed command runs.)
import { writeSync } from 'node:fs';
import { enableCompileCache } from './compile-cache.js';
import { VERSION } from './version.js';

/**
 * One write(2) to fd 1: `process.stdout` is a stream that Node builds on first use (a file's, a
 * pipe's or a terminal's, loading their modules), 2-4 ms of a 30 ms start. A pipe that is
 * non-blocking and full (EAGAIN) gets the stream after all; one nobody reads (EPIPE: `tsbuild
 * --version | true`) gets nothing, as a Go program's SIGPIPE ends it without a word.
 */
function say(text: string): void {
  try {
    writeSync(1, text);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') return;
    if (code !== 'EAGAIN') throw err;
    process.stdout.write(text);
  }
}

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
  say(`tsbuild version ${VERSION}\n`);
} else {
  enableCompileCache();
  // main.ts runs the command and reports its errors itself.
  void import('./main.js');
}
