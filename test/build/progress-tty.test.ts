// The build's live view in a real terminal (tmux on a private socket), read back from the
// screen while the build runs and after it: the header and the step rows with their timers, the
// running step's last lines in a window that goes away when the step ends, CACHED rows on a
// rebuild, a failed step's whole output, lines cut to the width (and a resize taken), and what
// the user types meanwhile left for the shell.
import { CLI, contextOf, rootWithBusybox } from '../helpers/tsbuild.js';
import { Tmux } from '../helpers/tmux.js';

let store: { root: string; cleanup(): Promise<void> };
let tmux: Tmux;

beforeAll(async () => {
  tmux = await Tmux.require();
  store = await rootWithBusybox();
});

afterAll(async () => {
  await tmux?.kill();
  await store?.cleanup();
});

/** Starts `build ARGS CTX` in a new session; the shell prints its exit status after it. */
function build(ctx: string, cols = 100, rows = 40, args = ''): Promise<string> {
  return tmux.start(`node ${CLI} build --root ${store.root} ${args} ${ctx}; echo EXIT=$?; sleep 600`, cols, rows);
}

/**
 * The screen once it passes `check`. Not Tmux.waitFor, which waits for a screen that stays the
 * same: the live view's timers change it every tenth of a second.
 */
async function until(session: string, check: (lines: string[]) => boolean, what: string, ms = 15_000): Promise<string[]> {
  const end = Date.now() + ms;
  for (;;) {
    const lines = await tmux.screen(session);
    if (check(lines)) return lines;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the screen:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const has = (text: string | RegExp) => (lines: string[]) => lines.some((l) => (typeof text === 'string' ? l.includes(text) : text.test(l)));
const exited = (lines: string[]) => lines.some((l) => /^EXIT=\d+$/.test(l));
/** The rows of the output window under the running step. */
const windowRows = (lines: string[]) => lines.filter((l) => l.startsWith(' => => # '));

describe('the TTY view', () => {
  test('a header and timed rows; the running step shows its last lines, which go away when it ends', async () => {
    const ctx = await contextOf({
      Dockerfile: 'FROM busybox\nENV A=b\nRUN for i in $(seq 1 12); do echo line-$i; sleep 0.25; done\nRUN sleep 1\n',
    });
    const s = await build(ctx);
    const running = await until(s, has(' => => # line-9'), 'line-9 in the window');
    expect(running[0]).toMatch(/^\[\+\] Building \d+\.\ds \(2\/4\)$/);
    expect(running[1]).toMatch(/^ => \[1\/4\] FROM busybox +\d+\.\ds$/);
    expect(running[2]).toMatch(/^ => \[2\/4\] ENV A=b +\d+\.\ds$/);
    expect(running[3]).toMatch(/^ => \[3\/4\] RUN for i in .* +\d+\.\ds$/);
    // The last six lines, the newest at the bottom.
    const shown = windowRows(running).map((l) => l.slice(9));
    expect(shown).toHaveLength(6);
    const last = Number(shown.at(-1)!.slice(5));
    expect(shown).toEqual([5, 4, 3, 2, 1, 0].map((k) => `line-${last - k}`));
    // The timers run.
    const timer = (lines: string[]) => Number(/(\d+\.\d)s$/.exec(lines[3]!)![1]);
    const later = await until(s, (l) => timer(l) >= timer(running) + 0.3, 'the timer to run');
    expect(later[0]).toMatch(/^\[\+\] Building/);
    // The next step runs: the window is gone, the finished row keeps its time.
    const next = await until(s, has(/^ => \[4\/4\] RUN sleep 1 /), 'step 4');
    expect(windowRows(next)).toEqual([]);
    expect(next[0]).toMatch(/\(3\/4\)$/);
    expect(Number(/(\d+\.\d)s$/.exec(next[3]!)![1])).toBeGreaterThanOrEqual(2.5);
    const end = await tmux.waitFor(s, exited, 'the build to end');
    expect(end[0]).toMatch(/^\[\+\] Building \d+\.\ds \(4\/4\) FINISHED$/);
    expect(end.slice(1, 5).every((l) => /^ => \[\d\/4\] .* \d+\.\ds$/.test(l))).toBe(true);
    expect(end).toContain('EXIT=0');
    expect(windowRows(end)).toEqual([]);

    // Built again: the RUN steps are CACHED rows.
    const again = await build(ctx);
    const cached = await tmux.waitFor(again, exited, 'the rebuild to end');
    expect(cached.filter((l) => /^ => CACHED \[[34]\/4\] RUN .* 0\.\ds$/.test(l))).toHaveLength(2);
    expect(cached).toContain('EXIT=0');
  });

  test('a failed step: its whole output after the view, not cut to the width; the error line', async () => {
    const long = 'w'.repeat(150);
    const ctx = await contextOf({
      Dockerfile: `FROM busybox\nRUN for i in $(seq 1 20); do echo out-$i; done; echo ${long}; echo to-stderr >&2; sleep 0.5; exit 3\n`,
    });
    const s = await build(ctx, 80, 60);
    // While it runs, the long line is cut to the width in the window.
    const running = await until(s, has('to-stderr'), 'the last lines in the window');
    const cut = running.find((l) => l.startsWith(' => => # www'))!;
    expect(cut.length).toBeLessThan(80);
    expect(cut.endsWith('…')).toBe(true);
    await tmux.waitFor(s, exited, 'the build to end');
    // Rows the terminal wrapped, joined again (-J): a line cut by tsbuild would stay cut.
    const end = (await tmux.run('capture-pane', '-p', '-J', '-t', s)).split('\n').map((l) => l.trimEnd());
    const text = end.join('\n');
    expect(end[0]).toMatch(/^\[\+\] Building \d+\.\ds \(1\/2\) FAILED$/);
    expect(text).toMatch(/^ => ERROR \[2\/2\] RUN for i in/m);
    const from = end.indexOf('------');
    expect(end[from + 1]).toMatch(/^ > \[2\/2\] RUN for i in .*:$/);
    const outLines = Array.from({ length: 20 }, (_, i) => `out-${i + 1}`);
    expect(end.slice(from + 2, from + 25)).toEqual([...outLines, long, 'to-stderr', '------']);
    expect(text).toMatch(/^Error: Dockerfile:2: /m);
    expect(end).toContain('EXIT=1');
  });

  test('rows are cut to the width, and a resize is taken', async () => {
    const ctx = await contextOf({ Dockerfile: `FROM busybox\nRUN echo ${'a'.repeat(120)}; sleep 3\n` });
    const s = await build(ctx, 100, 30);
    const wide = await until(s, has(' => [2/2] RUN'), 'the RUN row');
    const row = (lines: string[]) => lines.find((l) => l.startsWith(' => [2/2] RUN'))!;
    expect(row(wide)).toMatch(/^ => \[2\/2\] RUN echo a+… {2}\d+\.\ds$/);
    expect(row(wide).length).toBe(99);
    await tmux.resize(s, 60, 30);
    const narrow = await until(s, (l) => row(l)?.length === 59, 'the row cut to 60 columns');
    expect(row(narrow)).toMatch(/^ => \[2\/2\] RUN echo a+… {2}\d+\.\ds$/);
    // One header: the frame was redrawn in place, not again below itself.
    expect(narrow.filter((l) => l.startsWith('[+] Building'))).toHaveLength(1);
    const end = await tmux.waitFor(s, exited, 'the build to end');
    // The final list is whole: the instruction is not cut.
    expect(end.join('')).toContain(`RUN echo ${'a'.repeat(120)}; sleep 3`);
  });

  test('a list taller than the terminal: the live frame keeps the header and the newest rows; the final list is whole, once', async () => {
    // The last step runs for 2 s, so that the live frame showing it is there to be captured
    // (quick steps can all be over between two captures, leaving only the final list).
    const runs = Array.from({ length: 12 }, (_, i) => `RUN echo step-${i + 1}${i === 11 ? '; sleep 2' : ''}`);
    const ctx = await contextOf({ Dockerfile: `FROM busybox\n${runs.join('\n')}\n` });
    const s = await build(ctx, 60, 10);
    // A live frame with the last step running (not the final list, which has no running step;
    // not a capture taken halfway through a redraw, whose top line is still a row).
    const live = await until(
      s,
      (lines) => has(/^ => \[13\/13\] RUN/)(lines) && !exited(lines) && (lines[0] ?? '').startsWith('[+] Building'),
      'a late step',
    );
    expect(live[0]).toMatch(/^\[\+\] Building \d+\.\ds \(\d+\/13\)$/);
    expect(live.some((l) => l.includes('[1/13] FROM'))).toBe(false);
    await tmux.waitFor(s, exited, 'the build to end');
    // The whole history of the pane: no frame left behind above the final list.
    const all = (await tmux.run('capture-pane', '-p', '-S', '-', '-t', s)).split('\n').filter((l) => l.trim() !== '');
    expect(all.filter((l) => l.startsWith('[+] Building'))).toEqual([expect.stringMatching(/\(13\/13\) FINISHED$/)]);
    expect(all.slice(1, 14).map((l) => /^ => \[(\d+)\/13\]/.exec(l)?.[1])).toEqual(Array.from({ length: 13 }, (_, i) => String(i + 1)));
    expect(all.slice(14)).toEqual([expect.stringMatching(/^Successfully built/), 'EXIT=0']);
  });

  test('a warning is printed above the view, which goes on below it', async () => {
    const ctx = await contextOf({ Dockerfile: 'FROM busybox\nRUN sleep 0.5\n' });
    const s = await build(ctx, 100, 30, '--build-arg UNUSED=1');
    const end = await tmux.waitFor(s, exited, 'the build to end');
    const at = (re: RegExp) => end.findIndex((l) => re.test(l));
    expect(end.filter((l) => l.includes('[UNUSED]'))).toEqual(['[Warning] One or more build-args [UNUSED] were not consumed']);
    expect(end.filter((l) => l.startsWith('[+] Building'))).toHaveLength(1);
    expect(at(/UNUSED/)).toBeLessThan(at(/^\[\+\] Building .* FINISHED$/));
    expect(end).toContain('EXIT=0');
  });

  test('Ctrl-C: the view ends FAILED with the step it stopped, the cursor is back', async () => {
    const ctx = await contextOf({ Dockerfile: 'FROM busybox\nRUN echo started; sleep 30\n' });
    const s = await build(ctx);
    await until(s, has(' => => # started'), 'the step to start');
    await tmux.keys(s, 'C-c');
    const end = await tmux.waitFor(s, exited, 'the build to end');
    expect(end[0]).toMatch(/^\[\+\] Building \d+\.\ds \(1\/2\) FAILED$/);
    expect(end).toContainEqual(expect.stringMatching(/^ => ERROR \[2\/2\] RUN echo started; sleep 30 +\d+\.\ds$/));
    expect(end).toContain('Error: build interrupted');
    expect(end).toContain('EXIT=130');
    expect(await tmux.format(s, '#{cursor_flag}')).toBe('1');
  });

  test('what the user types during the build is left for the shell', async () => {
    const ctx = await contextOf({ Dockerfile: 'FROM busybox\nRUN sleep 2\n' });
    const s = await tmux.start(`env PS1='$ ' bash --norc --noprofile`, 100, 30);
    await tmux.waitFor(s, has('$'), 'the prompt');
    await tmux.keys(s, '-l', `node ${CLI} build --root ${store.root} --progress tty ${ctx}; echo EXIT=$?`);
    await tmux.keys(s, 'Enter');
    await until(s, has(' => [2/2] RUN sleep 2'), 'the RUN step');
    await tmux.keys(s, '-l', 'echo typed-ahead');
    const end = await tmux.waitFor(
      s,
      (l) => exited(l) && l.some((x) => x.startsWith('$ echo typed-ahead')),
      'the typed text on the prompt',
    );
    const lines = end.filter((l) => l.trim() !== '');
    expect(lines.at(-1)).toBe('$ echo typed-ahead');
    expect(lines).toContain('EXIT=0');
    // The terminal keeps its modes, and the cursor is shown again.
    expect(await tmux.format(s, '#{cursor_flag}')).toBe('1');
  });
});
