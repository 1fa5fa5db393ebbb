// Credentials in Docker's config.json: found under any spelling of the registry, written 0600
// without disturbing the file's other keys, removed by logout; and a credential helper named in
// the file is used instead of the file.
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerConfig, authKey } from '../../../src/registry/credentials.js';

describe('Docker config credentials', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsbuild-dockercfg-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  test('reads base64 user:password under the hostname or a URL key', async () => {
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
          'http://127.0.0.1:5000/v2/': { auth: Buffer.from('local:pw').toString('base64') },
        },
      }),
    );
    const cfg = await DockerConfig.load(dir);
    expect(await cfg.get('docker.io')).toEqual({ username: 'hubuser', password: 'hub:pass' });
    expect(await cfg.get('127.0.0.1:5000')).toEqual({ username: 'local', password: 'pw' });
    expect(await cfg.get('127.0.0.1:5001')).toBeUndefined();
  });

  test('a missing file means no credentials; set writes it 0600 and keeps other keys; remove forgets', async () => {
    await writeFile(join(dir, 'config.json'), JSON.stringify({ psFormat: 'table {{.ID}}', auths: { 'other:1': { auth: 'eDp5' } } }));
    const cfg = await DockerConfig.load(dir);
    await cfg.set('127.0.0.1:5000', { username: 'u', password: 'p@ss' });
    expect((await stat(join(dir, 'config.json'))).mode & 0o777).toBe(0o600);
    const j = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    expect(j.psFormat).toBe('table {{.ID}}');
    expect(j.auths['other:1']).toEqual({ auth: 'eDp5' });
    expect(j.auths['127.0.0.1:5000']).toEqual({ auth: Buffer.from('u:p@ss').toString('base64') });
    expect(await (await DockerConfig.load(dir)).get('127.0.0.1:5000')).toEqual({ username: 'u', password: 'p@ss' });

    expect(await cfg.remove('127.0.0.1:5000')).toBe(true);
    expect(await cfg.remove('127.0.0.1:5000')).toBe(false);
    expect(await (await DockerConfig.load(dir)).get('127.0.0.1:5000')).toBeUndefined();
    expect(await (await DockerConfig.load(join(dir, 'nothing-here'))).get('docker.io')).toBeUndefined();
  });

  test('Docker Hub credentials are kept under Docker’s historical key', async () => {
    expect(authKey('docker.io')).toBe('https://index.docker.io/v1/');
    const cfg = await DockerConfig.load(dir);
    await cfg.set('index.docker.io', { username: 'u', password: 'p' });
    const j = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    expect(Object.keys(j.auths)).toEqual(['https://index.docker.io/v1/']);
  });

  test('a malformed file is named without its content', async () => {
    await writeFile(join(dir, 'config.json'), '{"auths": {"x": {"auth": "c2VjcmV0LXBhc3N3b3Jk"}');
    await expect(DockerConfig.load(dir)).rejects.toThrow(new RegExp(`^${join(dir, 'config.json')} is not valid JSON$`));
  });

  test('a credential helper named by credsStore answers get, store and erase', async () => {
    // A helper speaking Docker's protocol, keeping its one secret in a file beside it.
    const bin = join(dir, 'bin');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(bin);
    const helper = join(bin, 'docker-credential-testhelper');
    await writeFile(
      helper,
      `#!/bin/sh
store="${dir}/helper-store"
case "$1" in
  get) read server; if [ -f "$store" ]; then cat "$store"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) cat > "$store" ;;
  erase) rm -f "$store" ;;
esac
`,
    );
    await chmod(helper, 0o755);
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'testhelper' }));
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath}`;
    try {
      const cfg = await DockerConfig.load(dir);
      expect(await cfg.get('127.0.0.1:5000')).toBeUndefined();
      await cfg.set('127.0.0.1:5000', { username: 'u', password: 'secret' });
      expect(JSON.parse(await readFile(join(dir, 'helper-store'), 'utf8'))).toEqual({
        ServerURL: '127.0.0.1:5000',
        Username: 'u',
        Secret: 'secret',
      });
      expect(await readFile(join(dir, 'config.json'), 'utf8')).not.toContain('secret');
      expect(await cfg.get('127.0.0.1:5000')).toEqual({ username: 'u', password: 'secret' });
      expect(await cfg.remove('127.0.0.1:5000')).toBe(true);
      expect(await cfg.get('127.0.0.1:5000')).toBeUndefined();
    } finally {
      process.env.PATH = oldPath;
    }
  });
});
