// `tsbuild run -i` and `-t`: stdin passed through and its EOF, a pseudo-terminal of the
// container's own, and `-it` driven in a real terminal (tmux on a private socket): typed
// commands, window resizes, Ctrl-C reaching the shell inside, and the terminal restored after.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { execa } from 'execa';
import { CLI, mountsBelow, REPO, rootWithBusybox, tsbuild } from '../helpers/tsbuild.js';

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

  /** COMMAND in a terminal of its own: a tmux server on a private socket, removed by `close`. */
  async function terminal(command: string) {
    const socket = `tsbuild-test-${process.pid}-${randomBytes(4).toString('hex')}`;
    const tmux = (...args: string[]) => execa('tmux', ['-L', socket, '-f', '/dev/null', ...args], { cwd: REPO });
    await tmux('new-session', '-d', '-x', '100', '-y', '30', command);
    const socketPath = (await tmux('display-message', '-p', '#{socket_path}')).stdout.trim();
    const panePid = Number((await tmux('display-message', '-p', '#{pane_pid}')).stdout.trim());
    const screen = async () => (await tmux('capture-pane', '-p', '-S', '-100')).stdout;
    return {
      tmux,
      screen,
      panePid,
      async waitFor(text: string) {
        for (let i = 0; i < 200; i++) {
          if ((await screen()).includes(text)) return;
          await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`"${text}" never appeared; the screen:\n${await screen()}`);
      },
      async close() {
        await execa('tmux', ['-L', socket, 'kill-server'], { reject: false });
        await rm(socketPath, { force: true }); // the server leaves its socket file behind
      },
    };
  }

  /** The user's terminal is back in its cooked mode: `stty -a` printed after EXIT=... */
  async function expectCooked(screen: string, mark: string) {
    const after = screen.slice(screen.indexOf(mark));
    for (const flag of ['icanon', 'isig', 'echo', 'icrnl', 'opost']) expect(after).toMatch(new RegExp(`(^|\\s)${flag}(\\s|$)`, 'm'));
  }

  const shell = (root: string) => `node ${CLI} run --root ${root} -it busybox sh; echo EXIT=$?; stty -a; sleep 600`;

  test('-it in a terminal: commands, resizes, Ctrl-C to the shell, exit status, terminal restored', async () => {
    const t = await terminal(shell(env.root));
    try {
      await t.waitFor('/ #'); // capture-pane drops the prompt's trailing space
      await t.tmux('send-keys', 'echo hel""lo-$((6*7))', 'Enter');
      await t.waitFor('hello-42');
      await t.tmux('send-keys', 'stty size', 'Enter');
      await t.waitFor('30 100');
      await t.tmux('resize-window', '-x', '120', '-y', '40');
      await t.tmux('send-keys', 'stty size', 'Enter');
      await t.waitFor('40 120');
      await t.tmux('send-keys', 'sleep 100', 'Enter');
      await new Promise((r) => setTimeout(r, 500));
      await t.tmux('send-keys', 'C-c');
      // Ctrl-C reached sleep as SIGINT (130) in the container, not tsbuild: the shell lives on
      await t.tmux('send-keys', 'echo alive-$?', 'Enter');
      await t.waitFor('alive-130');
      await t.tmux('send-keys', 'exit 3', 'Enter');
      await t.waitFor('EXIT=3');
      await expectCooked(await t.screen(), 'EXIT=3');
    } finally {
      await t.close();
    }
  });

  test('-it stopped by SIGTERM: the container goes, the terminal is restored, exit 143', async () => {
    const t = await terminal(shell(env.root));
    try {
      await t.waitFor('/ #');
      // tsbuild is the pane shell's child
      const [pid] = (await readFile(`/proc/${t.panePid}/task/${t.panePid}/children`, 'utf8')).trim().split(' ').map(Number);
      process.kill(pid!, 'SIGTERM');
      await t.waitFor('EXIT=143');
      await expectCooked(await t.screen(), 'EXIT=143');
    } finally {
      await t.close();
    }
  });
});
