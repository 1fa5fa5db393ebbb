// Another architecture's busybox for `tsbuild bootstrap busybox --platform`: Debian's
// busybox-static package for that architecture, unpacked. The host cannot install it beside its
// own (both own /bin/busybox), so the package file is used directly: the one given with --deb,
// or else the one `apt-get download` fetches from the host's apt sources, which needs that
// architecture added once (`dpkg --add-architecture arm64 && apt-get update`). After that one
// download the image is in the store and nothing else is fetched; a machine without the mirror
// takes a .deb carried over with --deb.
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { TsbuildError } from '../errors.js';
import { formatPlatform, type Platform } from '../image/platform.js';

const PACKAGE = 'busybox-static';

/** Debian's architecture names for Go's (dpkg-architecture's table). */
export function debianArchitecture(p: Platform): string {
  if (p.architecture === 'arm') return p.variant === 'v5' || p.variant === 'v6' ? 'armel' : 'armhf';
  const names: Record<string, string> = { '386': 'i386', ppc64le: 'ppc64el', mips64le: 'mips64el', mipsle: 'mipsel' };
  return names[p.architecture] ?? p.architecture;
}

/** The .deb of busybox-static for the platform: `deb` as given (checked), or downloaded into `dir`. */
export async function busyboxDeb(platform: Platform, dir: string, deb?: string): Promise<string> {
  const arch = debianArchitecture(platform);
  if (deb === undefined) deb = await download(arch, dir);
  const fields = await execa('dpkg-deb', ['--field', deb, 'Package', 'Architecture'], { reject: false });
  if (fields.exitCode !== 0) throw new TsbuildError(`${deb}: not a Debian package: ${fields.stderr.trim().split('\n')[0]}`);
  const got = Object.fromEntries(fields.stdout.split('\n').map((l) => l.split(': ', 2) as [string, string]));
  if (got.Package !== PACKAGE || got.Architecture !== arch) {
    throw new TsbuildError(`${deb} is ${got.Package}:${got.Architecture}, not ${PACKAGE}:${arch} (for ${formatPlatform(platform)})`);
  }
  return deb;
}

async function download(arch: string, dir: string): Promise<string> {
  const into = join(dir, 'download');
  await mkdir(into);
  const r = await execa('apt-get', ['download', `${PACKAGE}:${arch}`], { cwd: into, reject: false });
  if (r.exitCode !== 0) {
    const why = r.stderr.split('\n').find((l) => l.startsWith('E: ')) ?? r.stderr.trim().split('\n').at(-1) ?? '';
    throw new TsbuildError(
      `apt-get download ${PACKAGE}:${arch} failed (${why.replace(/^E: /, '')}): add the architecture once with \`dpkg --add-architecture ${arch} && apt-get update\`, or give the package file with --deb FILE`,
    );
  }
  const [file] = (await readdir(into)).filter((n) => n.endsWith('.deb'));
  if (!file) throw new TsbuildError(`apt-get download ${PACKAGE}:${arch} left no package file`);
  return join(into, file);
}

/** Unpacks the package's /bin/busybox into `dir`; returns its path and the time the package gives it. */
export async function unpackBusybox(deb: string, dir: string): Promise<{ path: string; mtime: Date }> {
  const root = join(dir, 'deb');
  await execa('dpkg-deb', ['--extract', deb, root]);
  const path = join(root, 'bin/busybox');
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new TsbuildError(`${deb} has no /bin/busybox`);
  return { path, mtime: st.mtime };
}
