// `tsbuild run -i` and `-t`: stdin passed through and its EOF, a pseudo-terminal of the
// container's own, and `-it` driven in a real terminal (tmux on a private socket): typed
// commands, window resizes, Ctrl-C reaching the shell inside, and the terminal restored after.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
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
    const r = await tsbuild(env.root, ['run', '-t', 'busybox', 'sh', '-c', 'tty; test -t 0 && test -t 1 && test -t 2 && echo all-ttys']);
    expect(r.exitCode).toBe(0);
    // the terminal's own line discipline turns \n into \r\n, as docker run -t shows
    expect(r.stdout).toBe('/dev/pts/0\r\nall-ttys\r\n');
    const noTty = await tsbuild(env.root, ['run', 'busybox', 'sh', '-c', 'test -t 0 || echo no-tty']);
    expect(noTty.stdout).toBe('no-tty\n');
  });

  test('-it without a terminal is refused as docker refuses it', async () => {
    const r = await tsbuild(env.root, ['run', '-it', 'busybox', 'sh'], { input: '' });
    expect(r).toMatchObject({ exitCode: 1, stdout: '', stderr: 'Error: the input device is not a TTY\n' });
  });

  test('-it in a terminal: commands, resizes, Ctrl-C to the shell, exit status, terminal restored', async () => {
    const socket = `tsbuild-test-${process.pid}-${randomBytes(4).toString('hex')}`;
    const tmux = (...args: string[]) => execa('tmux', ['-L', socket, '-f', '/dev/null', ...args], { cwd: REPO });
    const screen = async () => (await tmux('capture-pane', '-p', '-S', '-100')).stdout;
    const waitFor = async (text: string) => {
      for (let i = 0; i < 200; i++) {
        if ((await screen()).includes(text)) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`"${text}" never appeared; the screen:\n${await screen()}`);
    };
    const command = `node ${CLI} run --root ${env.root} -it busybox sh; echo EXIT=$?; stty -a; sleep 600`;
    await tmux('new-session', '-d', '-x', '100', '-y', '30', command);
    const socketPath = (await tmux('display-message', '-p', '#{socket_path}')).stdout.trim();
    try {
      await waitFor('/ #'); // capture-pane drops the prompt's trailing space
      await tmux('send-keys', 'echo hel""lo-$((6*7))', 'Enter');
      await waitFor('hello-42');
      await tmux('send-keys', 'stty size', 'Enter');
      await waitFor('30 100');
      await tmux('resize-window', '-x', '120', '-y', '40');
      await tmux('send-keys', 'stty size', 'Enter');
      await waitFor('40 120');
      await tmux('send-keys', 'sleep 100', 'Enter');
      await new Promise((r) => setTimeout(r, 500));
      await tmux('send-keys', 'C-c');
      // Ctrl-C reached sleep as SIGINT (130) in the container, not tsbuild: the shell lives on
      await tmux('send-keys', 'echo alive-$?', 'Enter');
      await waitFor('alive-130');
      await tmux('send-keys', 'exit 3', 'Enter');
      await waitFor('EXIT=3');
      const after = (await screen()).slice((await screen()).indexOf('EXIT=3'));
      // the user's terminal is back in its cooked mode
      for (const flag of ['icanon', 'isig', 'echo', 'icrnl', 'opost']) expect(after).toMatch(new RegExp(`(^|\\s)${flag}(\\s|$)`, 'm'));
    } finally {
      await execa('tmux', ['-L', socket, 'kill-server'], { reject: false });
      await rm(socketPath, { force: true }); // the server leaves its socket file behind
    }
  });
});
