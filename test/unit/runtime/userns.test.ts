// The subordinate ranges a rootless user gets (src/runtime/userns.ts), read as newuidmap reads them.
import { describeMap, parseSubordinate } from '../../../src/runtime/userns.js';

describe('parseSubordinate', () => {
  const file = 'alice:100000:65536\nbob:165536:65536\n# comment\n1000:300000:1000\nalice:500000:10\nbroken:line\nalice:x:5\n';

  test('takes every range of the user, by name or by uid, in file order', () => {
    expect(parseSubordinate(file, 'alice', 1000)).toEqual([
      { start: 100000, count: 65536 },
      { start: 300000, count: 1000 },
      { start: 500000, count: 10 },
    ]);
  });

  test('a user without a line has no range', () => {
    expect(parseSubordinate(file, 'carol', 1002)).toEqual([]);
  });
});

test('describeMap shows single IDs bare and ranges with their size', () => {
  expect(
    describeMap([
      { inside: 0, outside: 1000, count: 1 },
      { inside: 1, outside: 100000, count: 65536 },
    ]),
  ).toBe('0 -> 1000, 1 -> 100000 (65536)');
});
