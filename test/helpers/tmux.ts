// A real terminal for tests of full-screen output: a tmux server on a private socket (`-L`, a
// name of this process's own), one detached session per command, read back with capture-pane.
// `kill` ends that server only, by its socket, and removes the socket file; other tmux servers on
// the machine are untouched.
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { execa } from 'execa';

export class Tmux {
  readonly socket = `tsbuild-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  private sessions = 0;
  /** The server's socket file, which kill-server leaves behind. */
  private socketPath: string | undefined;

  /** Fails with what to install when tmux is missing. */
  static async require(): Promise<Tmux> {
    const r = await execa('tmux', ['-V'], { reject: false });
    if (r.exitCode !== 0) throw new Error(`tmux is needed for this test and was not found (${r.shortMessage}): apt-get install tmux`);
    return new Tmux();
  }

  async run(...args: string[]): Promise<string> {
    return (await execa('tmux', ['-L', this.socket, ...args])).stdout;
  }

  /** Starts `command` (a shell command line) in a new detached session of cols × rows; returns its name. */
  async start(command: string, cols: number, rows: number): Promise<string> {
    const name = `s${++this.sessions}`;
    await this.run('new-session', '-d', '-s', name, '-x', String(cols), '-y', String(rows), command);
    this.socketPath ??= await this.run('display-message', '-p', '-t', name, '#{socket_path}');
    return name;
  }

  async keys(session: string, ...keys: string[]): Promise<void> {
    await this.run('send-keys', '-t', session, ...keys);
  }

  async resize(session: string, cols: number, rows: number): Promise<void> {
    await this.run('resize-window', '-t', session, '-x', String(cols), '-y', String(rows));
  }

  /** The pane's text as shown now: one string per row. */
  async screen(session: string): Promise<string[]> {
    return (await this.run('capture-pane', '-p', '-t', session)).split('\n');
  }

  /** A tmux format of the session's pane (`#{alternate_on}`, `#{cursor_flag}` ...). */
  async format(session: string, format: string): Promise<string> {
    return this.run('display-message', '-p', '-t', session, format);
  }

  /**
   * Waits until the screen passes `check` and stays the same for a moment (a frame can reach
   * tmux in pieces: its title may be new while its rows are not yet); fails with the last
   * screen after `ms`.
   */
  async waitFor(session: string, check: (lines: string[]) => boolean, what: string, ms = 15_000): Promise<string[]> {
    const end = Date.now() + ms;
    let last: string | undefined;
    for (;;) {
      const lines = await this.screen(session);
      const now = lines.join('\n');
      if (check(lines) && now === last) return lines;
      last = now;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the screen:\n${now}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async kill(): Promise<void> {
    await execa('tmux', ['-L', this.socket, 'kill-server'], { reject: false });
    if (this.socketPath) await rm(this.socketPath, { force: true });
  }
}
