// docker run's -v, --mount, --tmpfs and --env-file read as the docker CLI reads them, without
// root: what each spelling becomes, and the one-line error for each mistake.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { mountOrder, parseMount, parseTmpfs, parseVolume, readEnvFile } from '../../../src/container/run-options.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-runopts-'));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

test('-v: absolute or ./relative host paths, ro and rw', async () => {
  expect(await parseVolume(`${dir}:/data`)).toEqual({ type: 'bind', source: dir, target: '/data', readonly: false });
  expect(await parseVolume(`${dir}:/data:ro`)).toMatchObject({ readonly: true });
  expect(await parseVolume('.:/src:rw')).toEqual({ type: 'bind', source: resolve('.'), target: '/src', readonly: false });
  await expect(parseVolume('/data')).rejects.toThrow('-v /data: anonymous volumes are not supported: use HOST:CONTAINER');
  await expect(parseVolume(`${dir}:/a:/b:ro`)).rejects.toThrow('expected HOST:CONTAINER[:ro]');
});

test('--mount: aliases, readonly=false, tmpfs size and mode', async () => {
  expect(await parseMount(`type=bind,src=${dir},destination=/d,readonly=false`)).toEqual({
    type: 'bind',
    source: dir,
    target: '/d',
    readonly: false,
  });
  expect(await parseMount(`type=bind,source=${dir},dst=/d,ro`)).toMatchObject({ readonly: true });
  expect(await parseMount('type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=0700')).toEqual({
    type: 'tmpfs',
    target: '/t',
    sizeBytes: 64 << 20,
    mode: 0o700,
  });
  await expect(parseMount(`type=bind,source=${dir},target=/d,bind-propagation=shared`)).rejects.toThrow(
    'unsupported key bind-propagation for type bind (source, target, readonly)',
  );
  await expect(parseMount('target=/d')).rejects.toThrow('type volume is not supported');
  await expect(parseMount('type=tmpfs,target=/t,tmpfs-mode=999')).rejects.toThrow('invalid mode 999');
});

test('--tmpfs: 1777 unless told, size and mode options', () => {
  expect(parseTmpfs('/run')).toEqual({ type: 'tmpfs', target: '/run', mode: 0o1777 });
  expect(parseTmpfs('/run:rw,size=1g,mode=755')).toEqual({ type: 'tmpfs', target: '/run', mode: 0o755, sizeBytes: 2 ** 30 });
  expect(() => parseTmpfs('/run:size=0')).toThrow('the size must be at least 1 byte');
  expect(() => parseTmpfs('run')).toThrow('the container path run is not absolute');
});

test('--env-file: docker’s format', async () => {
  const file = join(dir, 'env');
  await writeFile(file, '\uFEFF# comment\r\n  A=1\r\nB="quoted" \nC\nD\n\n#E=5\n');
  expect(await readEnvFile(file, { C: 'from host' })).toEqual(['A=1', 'B="quoted" ', 'C=from host']);
  await writeFile(file, 'GOOD=1\nBAD KEY=2\n');
  await expect(readEnvFile(file)).rejects.toThrow(`--env-file ${file}:2: variable 'BAD KEY' contains whitespace`);
  await writeFile(file, '=value\n');
  await expect(readEnvFile(file)).rejects.toThrow(`--env-file ${file}:1: no variable name`);
});

test('mounts are applied parents first', () => {
  const m = (target: string) => ({ type: 'tmpfs' as const, target });
  expect(mountOrder([m('/a/b/c'), m('/a'), m('/x/y'), m('/b')]).map((x) => x.target)).toEqual(['/a', '/b', '/x/y', '/a/b/c']);
});
