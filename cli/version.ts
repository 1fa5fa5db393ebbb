// tsbuild's version, read from its package.json: shared by `tsbuild --version` (answered by the
// entry point before anything else loads) and `tsbuild version`. Nothing else here, so that
// loading it costs one small file.
import { readFileSync } from 'node:fs';

// ../../package.json from dist/cli/ (tsc's output) and from dist/bin/ (the bundle) alike.
export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
