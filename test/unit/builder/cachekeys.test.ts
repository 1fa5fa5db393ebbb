// The build cache's keys (src/builder/cachekeys.ts): everything a recipe names decides the key,
// so changing any one of them is a miss; the same inputs give the same key in any process; and
// no two kinds of step can share a key.
import { copyFromKey, copyKey, runKey, workdirKey, type CopyFromKey, type CopyKey, type RunKey } from '../../../src/builder/cachekeys.js';

const run: RunKey = {
  parent: 'sha256:p',
  argv: ['/bin/sh', '-c', 'make'],
  env: ['PATH=/bin'],
  user: '',
  cwd: '/',
  network: 'host',
  pipes: '',
};
const copy: CopyKey = {
  parent: 'sha256:p',
  kind: 'COPY',
  sources: ['a'],
  checksum: 'sha256:c',
  dest: '/d',
  workdir: '/',
  chown: '',
  chmod: '',
  inline: '',
};
const copyFrom: CopyFromKey = { parent: 'sha256:p', source: 'sha256:s', sources: ['/a'], dest: '/d', workdir: '/', chown: '', chmod: '' };

/** Each field changed alone gives another key. */
function eachFieldMatters<T extends object>(base: T, key: (k: T) => string, changed: { [K in keyof T]: T[K] }): void {
  const keys = new Set([key(base)]);
  for (const field of Object.keys(changed) as (keyof T)[]) {
    const k = key({ ...base, [field]: changed[field] });
    expect({ field, seen: keys.has(k) }).toEqual({ field, seen: false });
    keys.add(k);
  }
}

test('RUN: the parent, the command, its environment, user, directory, network and heredoc scripts each decide the key', () => {
  expect(runKey({ ...run })).toBe(runKey(run));
  eachFieldMatters(run, runKey, {
    parent: '',
    argv: ['/bin/sh', '-c', 'make install'],
    env: ['PATH=/bin', 'A=1'],
    user: 'nobody',
    cwd: '/src',
    network: 'none',
    pipes: 'abc',
  });
});

test('COPY and ADD: the parent, kind, sources, their content, destination, workdir, owner, mode and heredocs each decide the key', () => {
  eachFieldMatters(copy, copyKey, {
    parent: 'sha256:q',
    kind: 'ADD',
    sources: ['b'],
    checksum: 'sha256:other',
    dest: '/e',
    workdir: '/w',
    chown: '1:1',
    chmod: 0o644,
    inline: 'def',
  });
});

test('COPY --from: the source root’s chain decides the key, and so does everything COPY has', () => {
  eachFieldMatters(copyFrom, copyFromKey, {
    parent: 'sha256:q',
    source: 'scratch',
    sources: ['/b'],
    dest: '/e',
    workdir: '/w',
    chown: 'app',
    chmod: 0o755,
  });
});

test('WORKDIR: the parent, the directory and its owner', () => {
  const base = { parent: 'sha256:p', dir: '/app', user: '' };
  eachFieldMatters(base, workdirKey, { parent: '', dir: '/srv', user: 'app' });
});

test('keys of different kinds of step never meet', () => {
  const keys = [
    runKey(run),
    copyKey(copy),
    copyKey({ ...copy, kind: 'ADD' }),
    copyFromKey(copyFrom),
    workdirKey({ parent: 'sha256:p', dir: '/d', user: '' }),
  ];
  expect(new Set(keys).size).toBe(keys.length);
});
