// `tsbuild run`: a throwaway container of a stored image, with docker run's flags.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { mountsBelow, ok, REPO, rootWithBusybox, tsbuild } from '../helpers/tsbuild.js';

describe('tsbuild run', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
    await ok(env.root, ['build', '-q', '-t', 'hello', join(REPO, 'examples/hello')]);
  });
  afterAll(async () => env?.cleanup());
  afterEach(async () => {
    expect(await mountsBelow(env.root)).toEqual([]);
    // the container's snapshot is gone: only layer dirs remain (busybox, WORKDIR, COPY, RUN)
    expect((await readdir(join(env.root, 'overlay2'))).filter((n) => n !== 'l')).toHaveLength(4);
  });

  test('runs the image’s Cmd with its Env and WorkingDir', async () => {
    const r = await tsbuild(env.root, ['run', '--rm', 'hello']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('Hello from an image built by tsbuild!\nbuilt by tsbuild on x86_64\n');
  });

  test('-e, -w, -u and a command', async () => {
    const r = await tsbuild(env.root, [
      'run',
      '-e',
      'FOO=bar',
      '-w',
      '/tmp/new/dir',
      '-u',
      'nobody',
      'hello',
      'sh',
      '-c',
      'echo "$FOO $(pwd) $(id -u):$(id -g) $GREETING_FILE"',
    ]);
    expect(r.stdout).toBe('bar /tmp/new/dir 65534:65534 /app/greeting.txt\n');
  });

  test('the exit code becomes tsbuild’s', async () => {
    expect((await tsbuild(env.root, ['run', 'hello', 'sh', '-c', 'exit 7'])).exitCode).toBe(7);
    const missing = await tsbuild(env.root, ['run', 'hello', '/no/such/binary']);
    expect(missing.exitCode).toBe(127);
  });

  test('--network none has only lo; writes do not reach the image', async () => {
    const r = await tsbuild(env.root, [
      'run',
      '--network',
      'none',
      'hello',
      'sh',
      '-c',
      "awk -F: 'NR>2{print $1}' /proc/net/dev | tr -d ' '; echo x > /app/greeting.txt",
    ]);
    expect(r.stdout).toBe('lo\n');
    expect((await tsbuild(env.root, ['run', 'hello', 'cat', '/app/greeting.txt'])).stdout).toBe('Hello from an image built by tsbuild!\n');
  });

  test('an unknown image is one clear error', async () => {
    const r = await tsbuild(env.root, ['run', 'nosuch:image']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe('Error: No such image: nosuch:image\n');
  });
});
