import { familiarName, familiarString, parseReference, withDefaultTag } from '../../../src/image/reference.js';

describe("Docker's naming rules", () => {
  test.each([
    ['nginx', 'docker.io', 'library/nginx', undefined, 'nginx'],
    ['nginx:1.25', 'docker.io', 'library/nginx', '1.25', 'nginx:1.25'],
    ['myorg/app:v1', 'docker.io', 'myorg/app', 'v1', 'myorg/app:v1'],
    ['localhost:5000/app', 'localhost:5000', 'app', undefined, 'localhost:5000/app'],
    ['localhost/app:dev', 'localhost', 'app', 'dev', 'localhost/app:dev'],
    ['registry.example.com/team/app:1', 'registry.example.com', 'team/app', '1', 'registry.example.com/team/app:1'],
    ['127.0.0.1:5000/x/y:z', '127.0.0.1:5000', 'x/y', 'z', '127.0.0.1:5000/x/y:z'],
  ])('%s', (input, domain, path, tag, familiar) => {
    const r = parseReference(input);
    expect(r.domain).toBe(domain);
    expect(r.path).toBe(path);
    expect(r.tag).toBe(tag);
    expect(familiarString(r)).toBe(familiar);
  });

  test('latest is the default tag', () => {
    expect(familiarString(withDefaultTag(parseReference('busybox')))).toBe('busybox:latest');
    expect(familiarName(parseReference('docker.io/library/busybox'))).toBe('busybox');
  });

  test('digest references', () => {
    const d = `sha256:${'1'.repeat(64)}`;
    const r = parseReference(`app@${d}`);
    expect(r.digest).toBe(d);
    expect(withDefaultTag(r).tag).toBeUndefined();
  });

  test.each(['', 'UPPER', 'a b', 'app:', 'app:-bad', 'app@sha256:short', 'a//b', '-lead'])('rejects %j', (input) => {
    expect(() => parseReference(input)).toThrow(/invalid reference format/);
  });
});
