// `tsbuild run -i` and `-t`: stdin passed through and its EOF, a pseudo-terminal of the
// container's own, and `-it` driven in a real terminal (tmux on a private socket): typed
// commands, window resizes, Ctrl-C reaching the shell inside, and the terminal restored after
// (test/helpers/tmux.ts).
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { Tmux } from '../helpers/tmux.js';
import { CLI, mountsBelow, rootWithBusybox, tsbuild } from '../helpers/tsbuild.js';

describe('tsbuild run -i and -t', () => {
  let env: Awaited<ReturnType<typeof rootWithBusybox>>;
  beforeAll(async () => {
    env = await rootWithBusybox('overlay2');
  });
  afterAll(async () => env?.cleanup());
  afterEach(async () => {
    expect(await mountsBelow(env.root)).toEqual([]);
  });

  test('-i passes stdin, and its EOF ends cat', async () => {
    const r = await tsbuild(env.root, ['run', '-i', 'busybox', 'cat'], { input: 'hi\n' });
    expect(r).toMatchObject({ exitCode: 0, stdout: 'hi\n', stderr: '' });
    // /dev/stdin opens: the command reads a pipe, not Node's socket
    const dev = await tsbuild(env.root, ['run', '-i', 'busybox', 'sh', '-c', 'wc -c < /dev/stdin'], { input: 'abc' });
    expect(dev.stdout.trim()).toBe('3');
  });

  test('without -i stdin is empty', async () => {
    const r = await tsbuild(env.root, ['run', 'busybox', 'sh', '-c', 'cat; echo "end $(wc -c < /dev/stdin)"'], { input: 'hi\n' });
    expect(r).toMatchObject({ exitCode: 0, stdout: 'end 0\n' });
  });

  test('-i: a command that reads nothing ends the run though stdin stays open', async () => {
    const child = execa('node', [CLI, 'run', '--root', env.root, '-i', 'busybox', 'sh', '-c', 'exit 4'], {
      reject: false,
      stdin: 'pipe',
      env: { TSBUILD_ROOT: '' },
    });
    const r = await child;
    expect(r.exitCode).toBe(4);
  });

  test('-t gives a terminal inside, without a terminal outside', async () => {
    const r = await tsbuild(env.root, [
      'run',
      '-t',
      'busybox',
      'sh',
      '-c',
      'tty; test -t 0 && test -t 1 && test -t 2 && echo all-ttys; echo console > /dev/console',
    ]);
    expect(r.exitCode).toBe(0);
    // the terminal's own line discipline turns \n into \r\n, as docker run -t shows
    expect(r.stdout).toBe('/dev/pts/0\r\nall-ttys\r\nconsole\r\n');
    const noTty = await tsbuild(env.root, ['run', 'busybox', 'sh', '-c', 'test -t 0 || echo no-tty']);
    expect(noTty.stdout).toBe('no-tty\n');
  });

  test('-i and -t carry megabytes intact, all of the output before the run ends', async () => {
    const data = randomBytes(5 << 20);
    const i = await execa('node', [CLI, 'run', '--root', env.root, '-i', 'busybox', 'md5sum'], {
      input: data,
      reject: false,
      env: { TSBUILD_ROOT: '' },
    });
    expect(i.stdout).toBe(`${createHash('md5').update(data).digest('hex')}  -`);
    const t = await tsbuild(env.root, ['run', '-t', 'busybox', 'seq', '1', '100000']);
    expect(t.stdout).toBe(Array.from({ length: 100000 }, (_, n) => `${n + 1}\r\n`).join(''));
  });

  test('-it without a terminal is refused as docker refuses it', async () => {
    const r = await tsbuild(env.root, ['run', '-it', 'busybox', 'sh'], { input: '' });
    expect(r).toMatchObject({ exitCode: 1, stdout: '', stderr: 'Error: the input device is not a TTY\n' });
  });

  /** The user's terminal is back in its cooked mode: `stty -a`, printed after MARK, says so. */
  function expectCooked(lines: string[], mark: string) {
    const after = lines.slice(lines.findIndex((l) => l.includes(mark))).join('\n');
    for (const flag of ['icanon', 'isig', 'echo', 'icrnl', 'opost']) expect(after).toMatch(new RegExp(`(^|\\s)${flag}(\\s|$)`, 'm'));
  }

  const shell = (root: string) => `node ${CLI} run --root ${root} -it busybox sh; echo EXIT=$?; stty -a; sleep 600`;
  const showing = (text: string) => (lines: string[]) => lines.some((l) => l.includes(text));

  test('-it in a terminal: commands, resizes, Ctrl-C to the shell, exit status, terminal restored', async () => {
    const tmux = await Tmux.require();
    try {
      const s = await tmux.start(shell(env.root), 100, 30);
      await tmux.waitFor(s, showing('/ #'), 'the prompt');
      await tmux.keys(s, 'echo hel""lo-$((6*7))', 'Enter');
      await tmux.waitFor(s, showing('hello-42'), 'the echo');
      await tmux.keys(s, 'stty size', 'Enter');
      await tmux.waitFor(s, showing('30 100'), 'the first size');
      await tmux.resize(s, 120, 40);
      await tmux.keys(s, 'stty size', 'Enter');
      await tmux.waitFor(s, showing('40 120'), 'the new size');
      await tmux.keys(s, 'sleep 100', 'Enter');
      await new Promise((r) => setTimeout(r, 500));
      await tmux.keys(s, 'C-c');
      // Ctrl-C reached sleep as SIGINT (130) in the container, not tsbuild: the shell lives on
      await tmux.keys(s, 'echo alive-$?', 'Enter');
      await tmux.waitFor(s, showing('alive-130'), 'the shell after Ctrl-C');
      await tmux.keys(s, 'exit 3', 'Enter');
      expectCooked(await tmux.waitFor(s, showing('EXIT=3'), 'the exit status'), 'EXIT=3');
    } finally {
      await tmux.kill();
    }
  });

  test('-it stopped by SIGTERM: the container goes, the terminal is restored, exit 143', async () => {
    const tmux = await Tmux.require();
    try {
      const s = await tmux.start(shell(env.root), 100, 30);
      await tmux.waitFor(s, showing('/ #'), 'the prompt');
      // tsbuild is the pane shell's child
      const pane = Number(await tmux.format(s, '#{pane_pid}'));
      const [pid] = (await readFile(`/proc/${pane}/task/${pane}/children`, 'utf8')).trim().split(' ').map(Number);
      process.kill(pid!, 'SIGTERM');
      expectCooked(await tmux.waitFor(s, showing('EXIT=143'), 'the exit status'), 'EXIT=143');
    } finally {
      await tmux.kill();
    }
  });
});
