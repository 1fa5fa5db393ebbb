// The terminal while the full-screen view owns it: the alternate screen (so the shell's screen
// comes back as it was), no cursor, no line wrapping, raw keys (Node's readline parses the
// escape sequences of arrows and page keys into named keypresses), and resize events. `stop`
// gives everything back, once, whichever way the view ends: q, Ctrl-C, a signal or an error.
// Frames are whole lines of exactly the terminal's width (text.ts); only lines that changed
// since the last frame are written, each at its own row, so a frame never scrolls the screen.
import { emitKeypressEvents } from 'node:readline';

/** A keypress as readline reports it. */
export interface Key {
  readonly name?: string;
  readonly sequence?: string;
  readonly ctrl?: boolean;
  readonly shift?: boolean;
  readonly meta?: boolean;
}

const ENTER = '\x1b[?1049h\x1b[?25l\x1b[?7l\x1b[2J';
const LEAVE = '\x1b[0m\x1b[?7h\x1b[?25h\x1b[?1049l';

export class Screen {
  private shown: string[] = [];
  private started = false;
  /** Removes the listeners start() added. */
  private readonly unlisten: (() => void)[] = [];

  constructor(
    private readonly input: NodeJS.ReadStream,
    private readonly output: NodeJS.WriteStream,
  ) {}

  get cols(): number {
    return this.output.columns || 80;
  }

  get rows(): number {
    return this.output.rows || 24;
  }

  /** Takes the terminal: keys go to `onKey`, size changes to `onResize` (after a full clear). */
  start(onKey: (key: Key) => void, onResize: () => void): void {
    this.started = true;
    emitKeypressEvents(this.input);
    this.input.setRawMode(true);
    this.input.resume();
    this.output.write(ENTER);
    this.listen(this.input, 'keypress', (_s: string | undefined, key: Key | undefined) => onKey(key ?? {}));
    this.listen(this.output, 'resize', () => {
      this.shown = [];
      this.output.write('\x1b[2J');
      onResize();
    });
  }

  /** Shows `lines` (one per row, each exactly `cols` wide), writing only the rows that changed. */
  draw(lines: readonly string[]): void {
    let out = '';
    for (let i = 0; i < lines.length; i++) {
      if (this.shown[i] !== lines[i]) out += `\x1b[${i + 1};1H${lines[i]}`;
    }
    this.shown = [...lines];
    if (out) this.output.write(out);
  }

  /** Gives the terminal back as it was: main screen, cursor, wrapping, cooked input. Idempotent. */
  stop(): void {
    if (!this.started) return;
    this.started = false;
    for (const off of this.unlisten.splice(0)) off();
    this.output.write(LEAVE);
    if (this.input.isTTY) this.input.setRawMode(false);
    this.input.pause();
  }

  private listen<A extends unknown[]>(emitter: NodeJS.EventEmitter, event: string, fn: (...args: A) => void): void {
    emitter.on(event, fn);
    this.unlisten.push(() => emitter.off(event, fn));
  }
}
