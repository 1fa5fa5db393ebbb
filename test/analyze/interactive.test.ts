// `tsbuild analyze -i` in a real terminal (tmux on a private socket, 80×24), driven with keys
// and read back from the screen: the layer list, the tree as of the selected layer with each
// entry's change and size, the filters, resizing, and the terminal given back on q and Ctrl-C.
// The image's layers add, modify and remove files and waste bytes in ways the test chooses.
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { CLI, contextOf, ok, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';
import { Tmux } from '../helpers/tmux.js';

const DOCKERFILE = `FROM busybox
COPY app /app/
RUN echo changed-config > /app/config.txt && rm /app/old.txt && mkdir /data && head -c 5000 /dev/zero > /data/blob.bin
RUN rm /data/blob.bin && echo new > /app/new.txt
`;

let store: { root: string; cleanup(): Promise<void> };
let tmux: Tmux;

beforeAll(async () => {
  tmux = await Tmux.require();
  store = await rootWithBusybox();
  const ctx = await contextOf({
    Dockerfile: DOCKERFILE,
    'app/config.txt': 'v1\n',
    'app/old.txt': 'old\n',
    'app/keep.txt': 'keep\n',
    // A name that would turn the text after it red if it reached the terminal as it is.
    'app/evil\x1b[31mred': '',
  });
  await ok(store.root, ['build', '-t', 'demo', ctx]);
});

afterAll(async () => {
  await tmux?.kill();
  await store?.cleanup();
});

/** Starts the view on `demo` in a new session; the shell prints the exit status and the tty modes after it. */
async function startView(cols = 80, rows = 24, image = 'demo', root = store.root): Promise<string> {
  const command = `node ${CLI} analyze --root ${root} -i ${image}; echo EXIT=$?; echo "MODES=$(stty -a | tr ' ' '\\n' | grep -x -e -icanon -e icanon -e -echo -e echo | tr '\\n' ' ')."; sleep 600`;
  const s = await tmux.start(command, cols, rows);
  await tmux.waitFor(s, (l) => l.some((x) => x.includes('INSTRUCTION')), 'the layer list');
  return s;
}

const has = (text: string) => (lines: string[]) => lines.some((l) => l.includes(text));

/** The file pane's rows (stacked layout): change and wasted marks, size, name (without branch lines and folding marks). */
function files(lines: string[]): { mark: string; size: string; name: string }[] {
  const head = lines.findIndex((l) => /SIZE {2}NAME/.test(l));
  return lines
    .slice(head + 1, -1)
    .map((l) => /^ (.)(.) +(\S+) {2}[│├└─\s]*(?:[▸▾] )?(.+)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ mark: `${m[1]}${m[2]}`.trim(), size: m[3]!, name: m[4]!.trim() }));
}

const names = (lines: string[]) => files(lines).map((f) => f.name);

describe('analyze -i', () => {
  test('without a terminal: one error line, exit 2', async () => {
    const r = await tsbuild(store.root, ['analyze', '-i', 'demo']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe('Error: -i needs a terminal: standard input and output must be a TTY\n');
    expect(r.stdout).toBe('');
  });

  test('layers, moving between them, opening a directory, filters, resizing, q', async () => {
    const s = await startView();
    let screen = await tmux.screen(s);
    expect(screen[0]).toMatch(/demo:latest \([0-9a-f]{12}\) {2}size 1\.99MB {2}wasted 5\.01kB {2}layers 4/);
    expect(screen).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^> 0 +1\.99MB +0B {2}\(base\) \(Imported from busybox-static\)/),
        expect.stringMatching(/^ {2}1 +12B +7B {2}Dockerfile:2 {2}COPY app \/app\/$/),
        expect.stringMatching(/^ {2}2 +5\.01kB +5kB {2}Dockerfile:3 {2}RUN echo changed-config > \/app\/config\.txt …$/),
        expect.stringMatching(/^ {2}3 +4B +0B {2}Dockerfile:4 {2}RUN rm \/data\/blob\.bin/),
      ]),
    );
    // Layer 0: busybox's tree, everything added by it; the keys in the footer.
    expect(screen).toContain(' Layer 0: (base) (Imported from busybox-static)  filter: none');
    expect(files(screen)).toContainEqual({ mark: 'A', size: '1.98MB', name: 'bin/' });
    expect(names(screen)).not.toContain('app/');
    expect(screen.at(-1)).toContain('q quit  Tab pane  ↑↓ move  ←→ fold  a added  m modified  r removed  w wasted');

    // Down: layer 1, whose COPY added /app.
    await tmux.keys(s, 'Down');
    screen = await tmux.waitFor(s, has('Layer 1: Dockerfile:2  COPY app /app/'), 'layer 1');
    expect(screen).toContainEqual(expect.stringMatching(/^> 1 /));
    expect(files(screen)).toContainEqual({ mark: 'AW', size: '12B', name: 'app/' });
    expect(files(screen)).toContainEqual({ mark: '', size: '1.98MB', name: 'bin/' });

    // Layer 2; Tab to the files; the cursor stayed on bin/, the first row is app/: open it.
    await tmux.keys(s, 'Down', 'Tab', 'Home', 'Enter');
    screen = await tmux.waitFor(s, (l) => names(l).includes('config.txt'), 'the entries of /app');
    expect(files(screen).slice(0, 6)).toEqual([
      { mark: 'MW', size: '20B', name: 'app/' },
      { mark: 'MW', size: '15B', name: 'config.txt' },
      { mark: '', size: '0B', name: 'evil\\u001b[31mred' },
      { mark: '', size: '5B', name: 'keep.txt' },
      { mark: 'RW', size: '4B', name: 'old.txt' },
      { mark: '', size: '1.98MB', name: 'bin/' },
    ]);
    expect(files(screen)).toContainEqual({ mark: 'AW', size: '5kB', name: 'data/' });

    // Each filter alone, then off again.
    const filtered = async (key: string, what: string): Promise<string[]> => {
      await tmux.keys(s, key);
      const on = await tmux.waitFor(s, has(`filter: ${what}`), `filter ${what}`);
      await tmux.keys(s, key);
      await tmux.waitFor(s, has('filter: none'), `filter ${what} off`);
      return names(on);
    };
    expect(await filtered('a', 'added')).toEqual(['data/', 'blob.bin']);
    expect(await filtered('m', 'modified')).toEqual(['app/', 'config.txt']);
    expect(await filtered('r', 'removed')).toEqual(['app/', 'old.txt']);
    expect(await filtered('w', 'wasted')).toEqual(['app/', 'config.txt', 'old.txt', 'data/', 'blob.bin']);

    // Layer 3 removes what layer 2 added: the tree follows the selected layer.
    await tmux.keys(s, 'Tab', 'Down', 'r');
    screen = await tmux.waitFor(s, has('filter: removed'), 'layer 3 removed');
    expect(files(screen)).toEqual([
      { mark: 'MW', size: '0B', name: 'data/' },
      { mark: 'RW', size: '5kB', name: 'blob.bin' },
    ]);
    await tmux.keys(s, 'r');
    await tmux.waitFor(s, has('filter: none'), 'filter off');

    // Wider: the panes side by side, every row within the width, nothing left of the old layout.
    await tmux.resize(s, 120, 40);
    screen = await tmux.waitFor(s, (l) => l.length === 40 && /^ Layers +│ Layer 3: /.test(l[1] ?? ''), 'the wide layout');
    expect(screen.every((l) => [...l].length <= 120)).toBe(true);
    expect(screen.slice(1, 39).every((l) => l.includes('│'))).toBe(true);
    expect(screen.at(-1)).toContain('PgUp/PgDn page');
    // Narrower: stacked again, and no trace of the separator of the wide layout.
    await tmux.resize(s, 60, 20);
    screen = await tmux.waitFor(s, (l) => l.length === 20 && l[1] === ' Layers', 'the narrow layout');
    expect(screen.every((l) => [...l].length <= 60)).toBe(true);
    expect(screen.some((l) => l.includes('│ Layer'))).toBe(false);
    expect(screen).toContainEqual(expect.stringMatching(/^> 3 +4B +0B {2}Dockerfile:4 {2}RUN rm/));
    expect(screen).toContainEqual(expect.stringMatching(/^ Layer 3: .* filter: none/));
    expect(names(screen)).toContain('app/');

    // q: exit 0, and the terminal as it was (main screen, cursor shown, line input and echo).
    await tmux.keys(s, 'q');
    screen = await tmux.waitFor(s, has('MODES='), 'the exit status and the tty modes');
    expect(screen).toContain('EXIT=0');
    expect(screen).toContain('MODES=icanon echo .');
    expect(await tmux.format(s, '#{alternate_on} #{cursor_flag}')).toBe('0 1');
  });

  test('paging through a long directory; Ctrl-C quits with 130 and gives the terminal back', async () => {
    const s = await startView();
    // Layer 0: open /bin (busybox's applets: hundreds of entries), then page, end and home.
    await tmux.keys(s, 'Tab', 'Enter');
    let screen = await tmux.waitFor(s, (l) => names(l)[0] === 'bin/' && names(l).includes('busybox'), '/bin opened');
    const first = names(screen);
    expect(files(screen)).toContainEqual({ mark: 'A', size: '1.98MB', name: 'busybox' });
    expect(files(screen)).toContainEqual({ mark: 'A', size: '12B', name: 'ash → /bin/busybox' });
    await tmux.keys(s, 'NPage', 'NPage');
    // Two pages down: none of the first page's rows is left, and the list is as long.
    screen = await tmux.waitFor(s, (l) => names(l).length > 0 && !names(l).some((n) => first.includes(n)), 'two pages down');
    expect(names(screen)).toHaveLength(first.length);
    await tmux.keys(s, 'PPage', 'PPage');
    screen = await tmux.waitFor(s, (l) => names(l)[0] === 'bin/', 'back up');
    expect(names(screen)).toEqual(first);
    await tmux.keys(s, 'End');
    await tmux.waitFor(s, (l) => names(l).at(-1) === 'var/', 'the end');
    await tmux.keys(s, 'Home', 'C-c');
    screen = await tmux.waitFor(s, has('MODES='), 'the exit status and the tty modes');
    expect(screen).toContain('EXIT=130');
    expect(screen).toContain('MODES=icanon echo .');
    expect(await tmux.format(s, '#{alternate_on} #{cursor_flag}')).toBe('0 1');
  });

  test('an image beside the store (docker-archive:FILE): its layers and files, the store never opened', async () => {
    const dir = await tempDir('tsbuild-tui-archive-');
    await ok(store.root, ['save', '-o', join(dir, 'demo.tar'), 'demo']);
    const noStore = join(dir, 'no-store');
    const s = await startView(80, 24, `docker-archive:${join(dir, 'demo.tar')}`, noStore);
    // No build record beside an archive: the instructions are the history's.
    await tmux.keys(s, 'Down');
    await tmux.waitFor(s, (l) => l.some((x) => /Layer 1: .*COPY app \/app\//.test(x)), 'layer 1 from the history');
    await tmux.keys(s, 'Tab', 'Home', 'Enter');
    let screen = await tmux.waitFor(s, (l) => names(l).includes('config.txt'), 'the entries of /app');
    expect(names(screen)).toContain('app/');
    await tmux.keys(s, 'q');
    screen = await tmux.waitFor(s, has('MODES='), 'the exit status');
    expect(screen).toContain('EXIT=0');
    await expect(access(noStore)).rejects.toThrow(/ENOENT/);
  });
});
