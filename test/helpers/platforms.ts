// Multi-platform test bases without emulation. This machine runs only its own CPU's programs,
// and these tests are about images, indexes and their transports, not about running foreign
// code: so the "arm64" image of a base is honestly labelled arm64 in its config but holds this
// machine's busybox files (a FROM scratch + COPY build for linux/arm64, which needs no RUN).
// Dockerfiles built on it for arm64 use no RUN for arm64 (RUN under emulation is tested where
// emulation is); a test that reads such an image's files reads them, it never relies on
// running them as arm64.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostArchitecture } from '../../src/image/config.js';
import { ok, tempDir } from './tsbuild.js';

export const HOST = hostArchitecture();
export const FOREIGN = HOST === 'arm64' ? 'amd64' : 'arm64';
export const BOTH = `linux/${HOST},linux/${FOREIGN}`;

/**
 * `name`: a multi-platform image for this machine and FOREIGN, both holding busybox's files,
 * built in a store that holds busybox:latest. Returns the rootfs context used.
 */
export async function multiPlatformBase(root: string, name: string): Promise<string> {
  const ctx = await tempDir('tsbuild-mpbase-');
  await writeFile(join(ctx, 'fs.Dockerfile'), 'FROM busybox\n');
  await ok(root, ['build', '-q', '-f', join(ctx, 'fs.Dockerfile'), '-o', `type=local,dest=${join(ctx, 'rootfs')}`, ctx]);
  await mkdir(join(ctx, 'rootfs', 'etc'), { recursive: true });
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nCMD ["sh"]\n');
  await ok(root, ['build', '-q', '--reproducible', '--platform', BOTH, '-t', name, ctx]);
  return ctx;
}
