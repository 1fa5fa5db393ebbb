// COPY keeps a file's capabilities (security.capability), as Docker's classic builder and
// BuildKit do: `setcap cap_net_raw+ep` on a context file survives COPY, and COPY --from of it.
// Checked in the saved image with GNU tar (--xattrs) and getcap, readers of our own none.
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { busyboxStore, ok, tempDir } from '../helpers/tsbuild.js';

const env = busyboxStore();

/** The file capabilities of `paths` in the image's layers, as getcap prints them (path relative). */
async function capabilities(ref: string, paths: readonly string[]): Promise<string[]> {
  const dir = await tempDir('tsbuild-caps-');
  env.removeLater(dir);
  await ok(env.root, ['save', '--format', 'oci', '-o', join(dir, 'img.tar'), ref]);
  await mkdir(join(dir, 'img'));
  await execa('tar', ['-xf', join(dir, 'img.tar'), '-C', join(dir, 'img')]);
  const out: string[] = [];
  for (const blob of await readdir(join(dir, 'img/blobs/sha256'))) {
    const listing = await execa('tar', ['-tf', join(dir, 'img/blobs/sha256', blob)], { reject: false });
    if (listing.exitCode !== 0) continue; // the config and the manifest
    const fs = join(dir, `fs-${blob}`);
    await mkdir(fs);
    await execa('tar', ['--xattrs', '--xattrs-include=security.capability', '-xf', join(dir, 'img/blobs/sha256', blob), '-C', fs]);
    for (const p of paths) {
      if (!listing.stdout.split('\n').includes(p)) continue;
      const got = (await execa('getcap', [join(fs, p)])).stdout.trim();
      out.push(`${p}: ${got.replace(`${join(fs, p)} `, '') || 'none'}`);
    }
  }
  return out.sort();
}

test('COPY and COPY --from keep security.capability; a file without stays without', async () => {
  const ctx = await tempDir('tsbuild-caps-ctx-');
  env.removeLater(ctx);
  await writeFile(join(ctx, 'ping'), '#!/bin/sh\necho ping\n', { mode: 0o755 });
  await writeFile(join(ctx, 'plain'), '#!/bin/sh\necho plain\n', { mode: 0o755 });
  await execa('setcap', ['cap_net_raw+ep', join(ctx, 'ping')]);
  await writeFile(
    join(ctx, 'Dockerfile'),
    'FROM busybox AS tools\nCOPY ping plain /tools/\nFROM busybox\nCOPY --from=tools /tools/ping /ping2\n',
  );
  await ok(env.root, ['build', '-q', '--target', 'tools', '-t', 'caps-tools', ctx]);
  await ok(env.root, ['build', '-q', '-t', 'caps-final', ctx]);
  expect(await capabilities('caps-tools', ['tools/ping', 'tools/plain'])).toEqual(['tools/ping: cap_net_raw=ep', 'tools/plain: none']);
  expect(await capabilities('caps-final', ['ping2'])).toEqual(['ping2: cap_net_raw=ep']);
});
