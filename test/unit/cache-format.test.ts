// The cache's flags, format and miss explanations, without a build: what buildx users write is
// parsed as buildx parses it, a config that is not ours is refused field by field, and a COPY's
// listings name the first file that differs.
import { explainMiss, parseListing } from '../../src/cache/explain.js';
import { parseCacheConfig, serializeCacheConfig } from '../../src/cache/format.js';
import { parseCacheFrom, parseCacheTo } from '../../src/cache/spec.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('cache flags', () => {
  test('buildx syntax', () => {
    expect(parseCacheTo('type=registry,ref=r.example/c:1,mode=max,compression=zstd,oci-mediatypes=true,ignore-error=true')).toEqual({
      type: 'registry',
      ref: 'r.example/c:1',
      options: { mode: 'max', compression: 'zstd', ociMediaTypes: true, ignoreError: true },
    });
    expect(parseCacheTo('ref=r.example/c')).toMatchObject({ type: 'registry', options: { mode: 'min', compression: 'gzip' } });
    expect(parseCacheTo('type=inline')).toEqual({ type: 'inline' });
    expect(parseCacheFrom('app:1')).toEqual({ type: 'image', ref: 'app:1' });
    expect(parseCacheFrom('type=local,src=/c')).toEqual({ type: 'local', dir: '/c' });
    expect(() => parseCacheFrom('type=local')).toThrow('src= is missing');
    expect(() => parseCacheTo('type=registry,ref=r/c,compression=lz4')).toThrow('want gzip or zstd');
  });
});

describe('cache config', () => {
  const good = { version: 1, layers: [D], records: [{ key: D, chain: [0], history: {}, slot: 's/1', inputs: { kind: 'RUN' } }] };

  test('round trip', () => {
    expect(parseCacheConfig(JSON.parse(serializeCacheConfig(parseCacheConfig(good, 1)).toString()), 1)).toEqual(good);
  });

  test.each([
    [{ ...good, version: 2 }, 'version 2'],
    [{ ...good, layers: ['sha256:x'] }, 'bad layers'],
    [{ ...good, records: [{ ...good.records[0], chain: [1] }] }, 'bad chain'],
    [{ ...good, records: [{ ...good.records[0], key: 'k' }] }, 'bad key'],
    [{ ...good, records: [{ ...good.records[0], files: 0 }] }, 'bad files'],
    [{ ...good, records: [{ ...good.records[0], inputs: { kind: 1 } }] }, 'bad inputs'],
  ])('refuses %j', (raw, message) => {
    expect(() => parseCacheConfig(raw, 1)).toThrow(message);
  });
});

describe('why a step missed', () => {
  const listing = (hex: string) =>
    ['source', 'src/', 'd', 'src', '755', 'f', 'src/a', '644', '2', `${'1'.repeat(64)}\nf`, 'src/b', '644', '2', `${hex}\n\n`].join('\0');

  test('listings parse to entries', () => {
    expect([...parseListing(listing('2'.repeat(64))).keys()]).toEqual(['src', 'src/a', 'src/b']);
  });

  test('the first changed file, an env value by name, the parent', async () => {
    const copy = { kind: 'COPY', parent: 'p', checksum: 'x' };
    expect(await explainMiss(copy, { ...copy, checksum: 'y' }, listing('3'.repeat(64)), async () => listing('2'.repeat(64)))).toBe(
      'file changed: src/b',
    );
    const run = { kind: 'RUN', parent: 'p', env: ['A=1', 'B=2'], command: 'c' };
    expect(await explainMiss(run, { ...run, env: ['A=1', 'B=3'] }, undefined, async () => undefined)).toBe(
      'build arg or ENV value changed: B',
    );
    expect(await explainMiss(run, { ...run, parent: 'q', command: 'd' }, undefined, async () => undefined)).toBe(
      'the layer it builds on changed (a step before it ran); the command changed',
    );
  });
});
