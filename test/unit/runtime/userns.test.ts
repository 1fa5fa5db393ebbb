// The subordinate ranges a rootless user gets (src/runtime/userns.ts), read as newuidmap reads them.
import { describeMap, parseSubordinate, ROOTLESS_ENV, unmappedOwner, type UserNamespace } from '../../../src/runtime/userns.js';

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

describe('unmappedOwner', () => {
  const subordinate: UserNamespace = {
    kind: 'subordinate',
    uidMap: [
      { inside: 0, outside: 1000, count: 1 },
      { inside: 1, outside: 100000, count: 65536 },
    ],
    gidMap: [
      { inside: 0, outside: 1000, count: 1 },
      { inside: 1, outside: 100000, count: 1000 },
    ],
    dataHome: '/home/alice/.local/share',
  };
  const single: UserNamespace = {
    kind: 'single',
    uidMap: [{ inside: 0, outside: 1000, count: 1 }],
    gidMap: [{ inside: 0, outside: 1000, count: 1 }],
    missing: 'alice has no range in /etc/subuid; as root: usermod --add-subuids 100000-165535 alice',
    dataHome: '/home/alice/.local/share',
  };
  const within = (ns: UserNamespace | undefined, f: () => void): void => {
    const saved = process.env[ROOTLESS_ENV];
    if (ns) process.env[ROOTLESS_ENV] = JSON.stringify(ns);
    else delete process.env[ROOTLESS_ENV];
    try {
      f();
    } finally {
      if (saved === undefined) delete process.env[ROOTLESS_ENV];
      else process.env[ROOTLESS_ENV] = saved;
    }
  };

  test('as root (no namespace of ours) every owner is fine', () => {
    within(undefined, () => expect(unmappedOwner(70000, 70000)).toBeUndefined());
  });

  test('names the IDs past the subordinate ranges and says to widen them', () => {
    within(subordinate, () => {
      expect(unmappedOwner(65536, 1000)).toBeUndefined();
      expect(unmappedOwner(65537, 1000)).toBe(
        "uid 65537 is not mapped in tsbuild's user namespace (rootless): the subordinate ranges map uids 0-65536 and gids 0-1000: " +
          'give the user a larger range in /etc/subuid and /etc/subgid',
      );
      expect(unmappedOwner(0, 1001)).toMatch(/^gid 1001 is not mapped/);
    });
  });

  test('with a single ID, anything but 0 names how to add a range', () => {
    within(single, () => {
      expect(unmappedOwner(0, 0)).toBeUndefined();
      expect(unmappedOwner(1000, 1000)).toBe(
        "uid 1000 and gid 1000 are not mapped in tsbuild's user namespace (rootless): tsbuild maps a single ID (0) because " +
          'alice has no range in /etc/subuid; as root: usermod --add-subuids 100000-165535 alice',
      );
    });
  });
});
