// Which ADD sources are git repositories, and what they ask for (src/builder/git-ref.ts). The
// expected values are BuildKit's dfgitutil.ParseGitRef's (its git_ref_test.go cases among them).
import { gitSettings, parseGitRef } from '../../../src/builder/git-ref.js';

describe('parseGitRef', () => {
  test.each([
    ['https://github.com/moby/buildkit.git', { remote: 'https://github.com/moby/buildkit.git', scheme: 'https', ref: '', subdir: '' }],
    ['https://example.com/r.git#v1.0:docs/./api/', { remote: 'https://example.com/r.git', ref: 'v1.0', subdir: 'docs/api' }],
    ['http://127.0.0.1:9418/repo.git#main', { scheme: 'http', ref: 'main' }],
    ['git://127.0.0.1/repo#:sub', { remote: 'git://127.0.0.1/repo', scheme: 'git', ref: '', subdir: 'sub' }],
    ['GIT://host/repo', { scheme: 'git' }],
    ['ssh://git@example.com/o/r', { scheme: 'ssh', remote: 'ssh://git@example.com/o/r' }],
    [
      'git@github.com:moby/buildkit.git#v0.1:/x/../y',
      { remote: 'git@github.com:moby/buildkit.git', scheme: 'ssh', ref: 'v0.1', subdir: 'y' },
    ],
    ['https://example.com/r.git?tag=v1&subdir=docs', { ref: 'refs/tags/v1', subdir: 'docs' }],
    ['https://example.com/r.git?branch=dev&keep-git-dir', { ref: 'refs/heads/dev', keepGitDir: true }],
    ['https://example.com/r.git?ref=main&checksum=abc123', { ref: 'main', checksum: 'abc123' }],
    ['https://example.com/r.git?keep-git-dir=false', { keepGitDir: false }],
  ])('%s is a git source', (source, expected) => {
    expect(parseGitRef(source)).toMatchObject(expected);
  });

  test.each([
    'https://example.com/file.tar.gz',
    'https://example.com/r.git/file', // the path must end in .git
    'ftp://example.com/r.git',
    'github.com/moby/buildkit', // contexts only
    './git@host:path',
    'dir/file.txt',
    '/abs/path',
  ])('%s is not', (source) => {
    expect(parseGitRef(source)).toBeUndefined();
  });

  test.each([
    ['https://example.com/r.git?x=1', 'unexpected query "x"'],
    ['https://example.com/r.git?ref=', 'query "ref" has no value'],
    ['https://example.com/r.git?tag=a&tag=b', 'query "tag" has multiple values'],
    ['https://example.com/r.git?ref=a&branch=b', 'ref conflicts: "a" vs "refs/heads/b"'],
    ['https://example.com/r.git?tag=a&branch=b', 'branch conflicts with tag'],
    ['https://example.com/r.git?keep-git-dir=maybe', 'invalid keep-git-dir value: "maybe"'],
  ])('%s is refused: %s', (source, message) => {
    expect(() => parseGitRef(source)).toThrow(message);
  });
});

describe('gitSettings', () => {
  const ref = parseGitRef('https://example.com/r.git?keep-git-dir=true&checksum=abc')!;
  test('the flags and the URL must agree', () => {
    expect(gitSettings(ref, {})).toEqual({ keepGitDir: true, checksum: 'abc' });
    expect(() => gitSettings(ref, { keepGitDir: false })).toThrow('inconsistent keep-git-dir configuration');
    expect(() => gitSettings(ref, { checksum: 'def' })).toThrow('checksum mismatch "def" != "abc"');
    expect(gitSettings(parseGitRef('git://h/r')!, { keepGitDir: true, checksum: 'f00' })).toEqual({ keepGitDir: true, checksum: 'f00' });
  });
});
