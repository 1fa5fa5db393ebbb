import { compileMatch, hasWildcards } from '../../../src/context/pattern.js';

// Expected values are Go's filepath.Match on Linux.
const cases: [pattern: string, name: string, match: boolean | 'bad'][] = [
  ['*.txt', 'a.txt', true],
  ['*.txt', 'dir/a.txt', false],
  ['*/*.txt', 'dir/a.txt', true],
  ['a?c', 'abc', true],
  ['a?c', 'a/c', false],
  ['[abc]x', 'bx', true],
  ['[^abc]x', 'dx', true],
  ['[^abc]x', 'ax', false],
  ['[a-c]', 'b', true],
  ['[z-a]', 'b', false],
  ['[\\]]', ']', true],
  ['[\\-]', '-', true],
  ['a\\*', 'a*', true],
  ['a\\*', 'ab', false],
  ['**', 'ab', true],
  ['**', 'a/b', false], // ** is just two stars: no crossing '/'
  ['a-b.c', 'a-b.c', true],
  ['a.c', 'abc', false],
  ['é?', 'éx', true],
  ['[é]', 'é', true],
  ['(x)', '(x)', true],
  ['[]a]', ']', 'bad'],
  ['[a', 'a', 'bad'],
  ['[-]', '-', 'bad'],
  ['a\\', 'a', 'bad'],
];

describe('Go filepath.Match', () => {
  it.each(cases)('%s against %s', (pattern, name, want) => {
    const m = compileMatch(pattern);
    expect(m === undefined ? 'bad' : m(name)).toBe(want);
  });

  it('finds unescaped wildcards', () => {
    expect(hasWildcards('*.go')).toBe(true);
    expect(hasWildcards('file[1]')).toBe(true);
    expect(hasWildcards('a\\*b')).toBe(false);
    expect(hasWildcards('plain')).toBe(false);
  });
});
