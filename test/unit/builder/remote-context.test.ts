// Which contexts are fetched rather than read in place, and how a Git context's `#ref:subdir`
// splits (src/builder/remote-context.ts), by Docker's rules for the `docker build` argument.
import { isGitContext, isRemoteContext, parseGitContext } from '../../../src/builder/remote-context.js';

describe('remote contexts', () => {
  test('Git contexts by Docker CLI rules', () => {
    expect(isGitContext('git://example.com/repo')).toBe(true);
    expect(isGitContext('git@github.com:owner/repo.git')).toBe(true);
    expect(isGitContext('github.com/owner/repo')).toBe(true);
    expect(isGitContext('https://example.com/repo.git')).toBe(true);
    expect(isGitContext('https://example.com/repo.git#main:docker')).toBe(true);
    expect(isGitContext('https://example.com/context.tar.gz')).toBe(false);
    expect(isGitContext('./repo.git')).toBe(false);
    expect(isRemoteContext('https://example.com/context.tar.gz')).toBe(true);
    expect(isRemoteContext('-')).toBe(true);
    expect(isRemoteContext('some/dir')).toBe(false);
  });

  test('#ref:subdir', () => {
    expect(parseGitContext('https://h/r.git')).toEqual({ url: 'https://h/r.git', ref: '', subdir: '' });
    expect(parseGitContext('https://h/r.git#v1.2')).toEqual({ url: 'https://h/r.git', ref: 'v1.2', subdir: '' });
    expect(parseGitContext('git://h/r#:app/web/')).toEqual({ url: 'git://h/r', ref: '', subdir: 'app/web' });
    expect(parseGitContext('github.com/o/r#main:a')).toEqual({ url: 'https://github.com/o/r', ref: 'main', subdir: 'a' });
    expect(() => parseGitContext('git://h/r#main:../etc')).toThrow(/climbs out of the repository/);
  });
});
