// `tsbuild diff IMAGE IMAGE` on images built with the CLI: two images that differ by one
// change of each kind (an added file, a deleted file, content changed at the same size, a chmod,
// a chown, a symlink retargeted, a file turned into a directory) give exactly those lines, in
// path order; a RUN's deletions (whiteouts, an opaque directory) are deletions; images whose
// filesystems are the same give nothing and exit 0, whatever their IDs;
// --json's shape; diff(1)'s exit codes; one line for each kind of bad input.
import { busyboxStore, ok, tsbuild } from '../helpers/tsbuild.js';
import { buildPair, context, EXPECTED_LINES, type Json } from './pair.js';

describe('tsbuild diff', () => {
  const env = busyboxStore();
  beforeAll(async () => {
    await buildPair(env.root);
  });

  test('each kind of change is one line, in path order, and the exit status is 1', async () => {
    const r = await tsbuild(env.root, ['diff', 'before', 'after']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${EXPECTED_LINES}\n`);
    expect(r.exitCode).toBe(1);
  });

  test('the other way round: added and deleted swap, changes reverse', async () => {
    const r = await tsbuild(env.root, ['diff', 'after', 'before']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout.split('\n')).toEqual([
      'A /data/gone.txt  5B',
      'C /data/kind  dir -> 2B  type',
      'D /data/kind/inside  0B',
      'C /data/link  symlink  target "/data/new.txt" -> "/data/a.txt"',
      'C /data/mode.txt  5B  mode 0600 -> 0644',
      'D /data/new.txt  4B',
      'C /data/owner.txt  6B  owner 1000:1000 -> 0:0',
      'C /data/same.txt  5B  content (same size)',
      '',
    ]);
  });

  test('the same filesystem is no difference (exit 0, no output): the same image, or other IDs and re-stored files', async () => {
    expect(await tsbuild(env.root, ['diff', 'before', 'before'])).toEqual({ exitCode: 0, stdout: '', stderr: '' });
    // Another config (a LABEL), and a layer storing files again unchanged (new mtimes only).
    const ctx = await context({}, ['FROM before', 'LABEL x=y', 'RUN cp -p /data/a.txt /tmp/a && touch /data/a.txt /data/same.txt']);
    await ok(env.root, ['build', '-q', '-t', 'touched', ctx]);
    const ids = await Promise.all(
      ['before', 'touched'].map(async (i) => (JSON.parse(await ok(env.root, ['inspect', i])) as Json[])[0]!.Id),
    );
    expect(ids[0]).not.toBe(ids[1]);
    const r = await tsbuild(env.root, ['diff', 'before', 'touched']);
    expect(r).toEqual({ exitCode: 1, stdout: 'A /tmp/a  6B\n', stderr: '' });
    const same = await context({}, ['FROM before', 'LABEL x=y', 'RUN touch /data/a.txt /data/same.txt']);
    await ok(env.root, ['build', '-q', '-t', 'retouched', same]);
    expect(await tsbuild(env.root, ['diff', 'before', 'retouched'])).toEqual({ exitCode: 0, stdout: '', stderr: '' });
  });

  test("a RUN's deletions (whiteouts) and a directory made anew (opaque) are deletions", async () => {
    const deleting = await context({}, ['FROM before', 'RUN rm -rf /data/kind /data/gone.txt /bin/ls']);
    await ok(env.root, ['build', '-q', '-t', 'deleting', deleting]);
    expect(await tsbuild(env.root, ['diff', 'before', 'deleting'])).toEqual({
      exitCode: 1,
      stdout: 'D /bin/ls  symlink -> "/bin/busybox"\nD /data/gone.txt  5B\nD /data/kind  2B\n',
      stderr: '',
    });
    const anew = await context({}, ['FROM before', 'RUN rm -rf /data && mkdir /data && echo n > /data/n']);
    await ok(env.root, ['build', '-q', '-t', 'anew', anew]);
    const r = await tsbuild(env.root, ['diff', 'before', 'anew']);
    expect(r.stdout.split('\n')).toEqual([
      ...['a.txt  6B', 'gone.txt  5B', 'kind  2B', 'link  symlink -> "/data/a.txt"', 'mode.txt  5B'].map((l) => `D /data/${l}`),
      'A /data/n  2B',
      ...['owner.txt  6B', 'same.txt  5B'].map((l) => `D /data/${l}`),
      '',
    ]);
  });

  test('--json: the documented schema, one change per path with what changed', async () => {
    const r = await tsbuild(env.root, ['diff', '--json', 'before', 'after']);
    expect(r.exitCode).toBe(1);
    const d = JSON.parse(r.stdout) as Json;
    expect(Object.keys(d).sort()).toEqual(['changes', 'from', 'identical', 'summary', 'to']);
    expect(d.from).toEqual({ name: 'before', id: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
    expect(d.to.name).toBe('after');
    expect(d.identical).toBe(false);
    expect(d.summary).toEqual({ added: 2, removed: 1, changed: 5, addedBytes: 4, removedBytes: 5 });
    const state = (o: Json): void => {
      expect(Object.keys(o).sort()).toEqual(
        o.type === 'symlink' ? ['gid', 'mode', 'size', 'target', 'type', 'uid'] : ['gid', 'mode', 'size', 'type', 'uid'],
      );
      expect(['file', 'dir', 'symlink', 'special']).toContain(o.type);
      for (const k of ['size', 'mode', 'uid', 'gid']) expect(Number.isInteger(o[k])).toBe(true);
    };
    for (const c of d.changes as Json[]) {
      expect(Object.keys(c).sort()).toEqual(
        c.change === 'added'
          ? ['after', 'change', 'path', 'what']
          : c.change === 'removed'
            ? ['before', 'change', 'path', 'what']
            : ['after', 'before', 'change', 'path', 'what'],
      );
      if (c.before) state(c.before);
      if (c.after) state(c.after);
    }
    const byPath = new Map((d.changes as Json[]).map((c) => [c.path, c]));
    expect([...byPath.keys()]).toEqual(EXPECTED_LINES.split('\n').map((l) => l.split(' ')[1]));
    expect(byPath.get('/data/same.txt')).toMatchObject({ change: 'changed', what: ['content'], before: { size: 5 }, after: { size: 5 } });
    expect(byPath.get('/data/mode.txt')).toMatchObject({ what: ['mode'], before: { mode: 0o644 }, after: { mode: 0o600 } });
    expect(byPath.get('/data/owner.txt')).toMatchObject({ what: ['owner'], before: { uid: 0, gid: 0 }, after: { uid: 1000, gid: 1000 } });
    expect(byPath.get('/data/link')).toMatchObject({
      what: ['target'],
      before: { target: '/data/a.txt' },
      after: { target: '/data/new.txt' },
    });
    expect(byPath.get('/data/kind')).toMatchObject({ what: ['type'], before: { type: 'file', size: 2 }, after: { type: 'dir' } });
    expect(byPath.get('/data/new.txt')).toEqual({
      path: '/data/new.txt',
      change: 'added',
      after: expect.objectContaining({ type: 'file', size: 4 }),
      what: [],
    });
    expect(byPath.get('/data/gone.txt')).toMatchObject({ change: 'removed', before: { type: 'file', size: 5 } });

    const same = JSON.parse((await tsbuild(env.root, ['diff', '--json', 'before', 'before'])).stdout) as Json;
    expect(same).toMatchObject({ identical: true, changes: [], summary: { added: 0, removed: 0, changed: 0 } });
  });

  test('trouble is exit 2 with one line: a missing image, a missing archive, an unknown transport, a bad reference, usage', async () => {
    const cases: [string[], RegExp][] = [
      [['diff', 'before', 'nosuch'], /^Error: No such image: nosuch:latest\n$/],
      [['diff', 'docker-archive:/nonexistent/x.tar', 'before'], /^Error: docker-archive: no such file: \/nonexistent\/x\.tar\n$/],
      [['diff', 'before', 'dockr://busybox'], /^Error: unknown transport "dockr:\/\/" in "dockr:\/\/busybox": use docker:\/\/, .*\n$/],
      [['diff', 'before', 'docker://Not_A/Valid:Ref:x'], /^Error: invalid reference format .*\n$/],
      [
        ['diff', 'before', 'containers-storage:docker.io/library/busybox'],
        /^Error: transport "containers-storage:" is not supported: .*\n$/,
      ],
      [['diff', 'before'], /^Error: "tsbuild diff" requires exactly 2 arguments\./],
    ];
    for (const [args, message] of cases) {
      const r = await tsbuild(env.root, args);
      expect({ args, code: r.exitCode, stdout: r.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(r.stderr).toMatch(message);
      if (args.length === 3) expect(r.stderr.split('\n')).toHaveLength(2); // one line and its newline
    }
  });
});
