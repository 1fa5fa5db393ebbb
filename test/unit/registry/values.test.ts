// The registry client's small pure parts: where a registry is reached, what a challenge asks
// for, how an upload Location gets its digest, which index entry a platform picks, and which
// manifests are refused.
import { parseChallenges } from '../../../src/registry/challenge.js';
import { withQuery } from '../../../src/registry/client.js';
import { endpointFor, registryHostname } from '../../../src/registry/endpoint.js';
import { MediaType, parseManifest, selectPlatform, type ImageIndex } from '../../../src/image/manifest.js';
import { parsePlatform, platformMatches } from '../../../src/image/platform.js';
import { sha256 } from '../../../src/digest.js';

describe('endpoints', () => {
  test('Docker Hub is reached at registry-1.docker.io over https', () => {
    for (const d of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      expect(endpointFor(d)).toEqual({ domain: 'docker.io', base: 'https://registry-1.docker.io', insecure: false });
    }
  });

  test('loopback is plain HTTP, anything else https unless named insecure', () => {
    expect(endpointFor('localhost:5000').base).toBe('http://localhost:5000');
    expect(endpointFor('127.0.0.1:5000').base).toBe('http://127.0.0.1:5000');
    expect(endpointFor('[::1]:5000').base).toBe('http://[::1]:5000');
    expect(endpointFor('registry.example:5000').base).toBe('https://registry.example:5000');
    expect(endpointFor('registry.example:5000', { insecureRegistries: ['registry.example:5000'] }).base).toBe(
      'http://registry.example:5000',
    );
    expect(endpointFor('registry.example', { insecureRegistries: ['registry.example'] }).base).toBe('http://registry.example');
    expect(endpointFor('registry.example:5000', { insecureRegistries: ['other.example'] }).insecure).toBe(false);
  });

  test('config.json keys name the same registry however they are spelled', () => {
    expect(registryHostname('https://index.docker.io/v1/')).toBe('docker.io');
    expect(registryHostname('http://127.0.0.1:5000/v2/')).toBe('127.0.0.1:5000');
    expect(registryHostname('127.0.0.1:5000')).toBe('127.0.0.1:5000');
  });
});

describe('WWW-Authenticate', () => {
  test('a Bearer challenge with quoted parameters', () => {
    const [c] = parseChallenges([
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"',
    ]);
    expect(c).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' },
    });
  });

  test('several challenges, token values and escapes', () => {
    const cs = parseChallenges(['Basic realm="a \\"quoted\\" realm", Bearer realm=https://x/token, error=insufficient_scope']);
    expect(cs.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(cs[0]!.params.realm).toBe('a "quoted" realm');
    expect(cs[1]!.params).toEqual({ realm: 'https://x/token', error: 'insufficient_scope' });
  });
});

describe('upload locations', () => {
  const d = `sha256:${'a'.repeat(64)}`;
  test('the digest joins an existing query with & and keeps it byte for byte', () => {
    const u = withQuery(new URL('http://r/v2/app/blobs/uploads/1?_state=ab%2Bc%3D%3D'), 'digest', d);
    expect(u.href).toBe(`http://r/v2/app/blobs/uploads/1?_state=ab%2Bc%3D%3D&digest=sha256%3A${'a'.repeat(64)}`);
  });
  test('and starts one with ? when there is none; relative Locations resolve against the request', () => {
    const loc = new URL('/v2/app/blobs/uploads/2', 'http://127.0.0.1:5000/v2/app/blobs/uploads/');
    expect(withQuery(loc, 'digest', d).href).toBe(`http://127.0.0.1:5000/v2/app/blobs/uploads/2?digest=sha256%3A${'a'.repeat(64)}`);
  });
});

describe('platforms', () => {
  const entry = (digestSeed: string, platform: { os: string; architecture: string; variant?: string }) => ({
    mediaType: MediaType.ociManifest,
    digest: sha256(digestSeed),
    size: 1,
    platform,
  });
  const index: ImageIndex = {
    kind: 'index',
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      entry('attestation', { os: 'unknown', architecture: 'unknown' }),
      entry('arm', { os: 'linux', architecture: 'arm', variant: 'v7' }),
      entry('arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }),
      entry('amd64', { os: 'linux', architecture: 'amd64' }),
    ],
  };

  test('parse and match: arm64 means arm64/v8, aliases fold', () => {
    expect(parsePlatform('linux/x86_64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(false);
    expect(() => parsePlatform('linux')).toThrow(/os\/arch/);
  });

  test('an index entry is picked by platform; none is a clear error', () => {
    expect(selectPlatform(index, parsePlatform('linux/amd64')).digest).toBe(sha256('amd64'));
    expect(selectPlatform(index, parsePlatform('linux/arm64')).digest).toBe(sha256('arm64'));
    expect(selectPlatform(index, parsePlatform('linux/arm/v7')).digest).toBe(sha256('arm'));
    expect(() => selectPlatform(index, parsePlatform('linux/s390x'))).toThrow(
      'no matching manifest for linux/s390x in the manifest list entries',
    );
  });
});

describe('manifests', () => {
  test('schema 1 is refused by name', () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] }));
    expect(() => parseManifest(body, MediaType.dockerSchema1Signed)).toThrow(/schema 1/);
  });

  test('a descriptor with a bad digest is refused', () => {
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, digest: 'md5:00', size: 2 },
        layers: [],
      }),
    );
    expect(() => parseManifest(body, undefined)).toThrow(/config: unsupported digest/);
  });

  test('an OCI index without mediaType is recognised by its shape', () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] }));
    expect(parseManifest(body, 'application/octet-stream').kind).toBe('index');
  });
});
