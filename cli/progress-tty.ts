// The build's live view on a terminal, as BuildKit's: a header with the build's time and how
// many steps are done, a row per step started with its timer (`=> CACHED [3/9] COPY ...`), and
// under the running step the last lines of its output in a small window that goes away when the
// step ends. The frame is redrawn in place ten times a second and on a resize (cursor up,
// rewrite, clear what is left); in it each line is cut to the terminal's width and the frame to
// its height (the header and the newest rows), so that counting lines to go back up stays right
// and a frame costs the same however many steps came before. What stays on the screen at the end
// is never cut: the whole list, and a failed step's whole output after it.
// The view never reads stdin nor changes the terminal's mode: what the user types meanwhile
// stays in the terminal's input queue for the shell, as it would without tsbuild.
import { seconds, type BuildEnd, type ProgressView, type StepStart } from './progress.js';
import { oneLine } from './terminal.js';

/** Lines of the running step's output in its window. */
const WINDOW = 6;
/** How often the frame is drawn. */
const TICK_MS = 100;

interface Row {
  readonly step: StepStart;
  readonly notes: string[];
  /** Once the step ended: its time, and whether it was a cache hit. */
  durationMs?: number;
  cached?: boolean;
}

export class TtyView implements ProgressView {
  private readonly began = Date.now();
  private readonly rows: Row[] = [];
  private ended = 0;
  /** The running step's whole output (shown if it fails), and its last lines. */
  private full: Buffer[] = [];
  private window: string[] = [];
  private partial = '';
  private readonly decoder = new TextDecoder();
  /** The widths of the live frame's lines on the screen now, the cursor below them. */
  private drawn: number[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly showCursor = (): void => void this.to.write('\u001b[?25h');
  private readonly redraw = (): void => this.draw();

  constructor(private readonly to: NodeJS.WriteStream) {
    this.timer = setInterval(this.redraw, TICK_MS);
    this.timer.unref();
    to.on('resize', this.redraw);
    to.write('\u001b[?25l');
    // The cursor comes back however the process ends.
    process.once('exit', this.showCursor);
  }

  start(step: StepStart): void {
    this.rows.push({ step, notes: [] });
    this.full = [];
    this.window = [];
    this.partial = '';
  }

  /** A row says CACHED when its step ended as a cache hit (end()). */
  cached(): void {}

  layer(): void {}

  note(text: string): void {
    this.rows.at(-1)?.notes.push(text);
  }

  output(_stream: 'stdout' | 'stderr', chunk: Buffer): void {
    this.full.push(chunk);
    const text = this.partial + this.decoder.decode(chunk, { stream: true });
    const lines = text.split('\n');
    this.partial = lines.pop()!;
    if (lines.length) this.window = [...this.window, ...lines].slice(-WINDOW);
  }

  end(step: StepStart, durationMs: number, cached: boolean): void {
    const row = this.rows.find((r) => r.step === step);
    if (row) Object.assign(row, { durationMs, cached });
    this.ended++;
    this.window = [];
    this.partial = '';
  }

  /** Above the frame, which is drawn again below it (stderr is most often the same terminal). */
  warning(message: string): void {
    this.to.write(this.up());
    this.drawn = [];
    process.stderr.write(`${oneLine(message)}${process.stderr.isTTY ? '\u001b[K' : ''}\n`);
    this.draw();
  }

  close(end: BuildEnd): void {
    clearInterval(this.timer);
    this.to.removeListener('resize', this.redraw);
    const failed = end.error?.step;
    this.paint(this.frame(end, this.columns(), false, Infinity));
    this.drawn = [];
    if (failed && this.full.length) {
      // As BuildKit: the failed step's output in full, between rules, untouched as RUN output is.
      this.to.write(`------\n${oneLine(` > [${failed.index}/${failed.total}] ${failed.text}:`)}\n`);
      const all = Buffer.concat(this.full);
      this.to.write(all);
      this.to.write(all.at(-1) === 0x0a ? '------\n' : '\n------\n');
    }
    this.showCursor();
    process.removeListener('exit', this.showCursor);
  }

  /** The live frame, redrawn over the last one. */
  private draw(): void {
    // Rows that scrolled off the screen cannot be rewritten: the header and the newest rows stay.
    const lines = this.frame(undefined, this.columns(), true, Math.max(3, (this.to.rows || 24) - 1));
    this.paint(lines);
    this.drawn = lines.map((l) => [...l].length);
  }

  /**
   * `lines` over the frame on the screen: each line cleared to its end, what is left below
   * cleared after them. Never a clear from the frame's top: tmux (scroll-on-clear) would keep a
   * copy of a frame that began at the screen's top in its history.
   */
  private paint(lines: readonly string[]): void {
    this.to.write(`${this.up()}${lines.map((l) => `${l}\u001b[K\n`).join('')}\u001b[J`);
  }

  /**
   * Back to the frame's first line. After a resize the terminal has wrapped the frame's lines
   * anew (tmux, VTE and most others reflow): each takes as many rows as the new width makes it.
   */
  private up(): string {
    const cols = this.columns();
    const rows = this.drawn.reduce((n, w) => n + Math.max(1, Math.ceil(w / cols)), 0);
    return rows ? `\r\u001b[${rows}A` : '';
  }

  private columns(): number {
    return Math.max(20, this.to.columns || 80);
  }

  /**
   * The lines of a frame for `cols` columns, at most `height`: the header and the newest rows. A
   * live one (`clip`) is cut to the width, the final one (`end` given) is whole.
   */
  private frame(end: BuildEnd | undefined, cols: number, clip: boolean, height: number): string[] {
    const now = Date.now();
    const total = this.rows[0]?.step.total ?? 0;
    const state = end ? (end.error ? ' FAILED' : ' FINISHED') : '';
    const header = `[+] Building ${seconds(end?.durationMs ?? now - this.began)} (${this.ended}/${total})${state}`;
    const failed = end?.error?.step;
    const body: string[][] = [];
    let count = 1;
    // From the newest row back, as far as the height goes.
    for (let i = this.rows.length - 1; i >= 0 && count < height; i--) {
      const row = this.rows[i]!;
      const s = row.step;
      const mark = s === failed ? 'ERROR ' : row.cached ? 'CACHED ' : '';
      const lines = [
        aligned(oneLine(` => ${mark}[${s.index}/${s.total}] ${s.text}`), seconds(row.durationMs ?? now - s.startedAt), cols, clip),
      ];
      for (const n of row.notes) lines.push(cut(oneLine(` => => ${n}`), cols, clip));
      if (row.durationMs === undefined && !end && i === this.rows.length - 1) {
        const shown = this.partial ? [...this.window, this.partial].slice(-WINDOW) : this.window;
        for (const l of shown) lines.push(cut(` => => # ${windowLine(l)}`, cols, clip));
      }
      body.push(lines);
      count += lines.length;
    }
    const lines = body.reverse().flat();
    return [header, ...lines.slice(Math.max(0, lines.length - (height - 1)))];
  }
}

/** A line of output as the window shows it: what a carriage return left, tabs as spaces, escaped. */
function windowLine(line: string): string {
  const text = line.replace(/\r$/, '');
  return oneLine(text.slice(text.lastIndexOf('\r') + 1).replace(/\t/g, '  '));
}

/**
 * `left`, and `right` at the right edge of `cols` columns; when it does not fit, `left` is cut
 * (`clip`) or `right` follows it after two spaces.
 */
function aligned(left: string, right: string, cols: number, clip: boolean): string {
  const room = cols - 1 - right.length - 2;
  const chars = [...left];
  if (chars.length <= room) return `${left}${' '.repeat(room - chars.length)}  ${right}`;
  return clip ? `${chars.slice(0, room - 1).join('')}…  ${right}` : `${left}  ${right}`;
}

/** At most `cols - 1` characters when `clip` (the last column left free: writing there wraps on some terminals). */
function cut(line: string, cols: number, clip: boolean): string {
  const chars = [...line];
  return clip && chars.length > cols - 1 ? `${chars.slice(0, cols - 2).join('')}…` : line;
}
