// The content of Docker's `<id>-init` layer for one container or build step: the files every
// container needs that belong to no image, and the mount points the runtime fills.
import { readFile } from 'node:fs/promises';
import type { InitLayer } from '../snapshot/snapshotter.js';

export async function initLayerFor(hostname: string): Promise<InitLayer> {
  // The step shares the host's network by default, so it resolves names as the host does.
  const resolvConf = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  return {
    files: {
      'etc/hosts': [
        '127.0.0.1\tlocalhost',
        '::1\tlocalhost ip6-localhost ip6-loopback',
        'fe00::0\tip6-localnet',
        'ff00::0\tip6-mcastprefix',
        'ff02::1\tip6-allnodes',
        'ff02::2\tip6-allrouters',
        `127.0.1.1\t${hostname}`,
        '',
      ].join('\n'),
      'etc/resolv.conf': resolvConf,
      'etc/hostname': `${hostname}\n`,
    },
    dirs: ['proc', 'sys', 'dev'],
  };
}
