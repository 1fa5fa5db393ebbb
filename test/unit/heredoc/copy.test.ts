// The files COPY/ADD make of their heredocs: content (tabs, expansion), mode, mtime, and the
// sources the builder copies them by. Expected contents are those of moby/buildkit's
// dockerfile_heredoc_test.go (testCopyHeredoc, testCopyHeredocSpecialSymbols,
// testHeredocIndent, testHeredocVarSubstitution).
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyHeredocFiles, inlineFilesKey, writeCopyHeredocs, type InlineFile } from '../../../src/builder/heredoc.js';
import { parseDockerfile, type CopyStep, type Env } from '../../../src/parse/index.js';

/** The files of the single COPY/ADD of `body`, expanded with `env`. */
function filesOf(body: string, env: Env = new Map()): InlineFile[] {
  const steps = parseDockerfile(`FROM busybox\n${body}`).stages[0]?.steps ?? [];
  const copy = steps.find((s): s is CopyStep => s.kind === 'COPY' || s.kind === 'ADD');
  return copyHeredocFiles(copy?.heredocs ?? [], env);
}

function contents(files: readonly InlineFile[]): [string, string][] {
  return files.map((f) => [f.name, f.content.toString('utf8')]);
}

describe('content', () => {
  const name = new Map([['name', 'world']]);
  test.each([
    ['COPY <<EOF single\nsingle file\nEOF', [['EOF', 'single file\n']]],
    [
      'COPY <<EOF <<EOF2 double/\nfirst file\nEOF\nsecond file\nEOF2',
      [
        ['EOF', 'first file\n'],
        ['EOF2', 'second file\n'],
      ],
    ],
    ['COPY <<EOF /dest/foo-copy\n\tfoo\nEOF', [['EOF', '\tfoo\n']]],
    ['COPY <<-EOF /dest/bar-copy\n\tbar\nEOF', [['EOF', 'bar\n']]],
    ['COPY <<EOF /dest/c1\nHello ${name}!\nEOF', [['EOF', 'Hello world!\n']]],
    ["COPY <<'EOF' /dest/c2\nHello ${name}!\nEOF", [['EOF', 'Hello ${name}!\n']]],
    ['COPY <<"EOF" /dest/c3\nHello ${name}!\nEOF', [['EOF', 'Hello ${name}!\n']]],
    ["COPY <<EOF /dest/q1\nHello '${name}'!\nEOF", [['EOF', "Hello 'world'!\n"]]],
    ['COPY <<EOF /dest/q2\nHello "${name}"!\nEOF', [['EOF', 'Hello "world"!\n']]],
    ["COPY <<'EOF' /dest/qsingle1\nHello '${name}'!\nEOF", [['EOF', "Hello '${name}'!\n"]]],
    ['COPY <<"EOF" /dest/qdouble2\nHello "${name}"!\nEOF', [['EOF', 'Hello "${name}"!\n']]],
    ['COPY <<EOF quotefile\n"quotes in file"\nEOF', [['EOF', '"quotes in file"\n']]],
    ['COPY <<EOF slashfile1\n\\\nEOF', [['EOF', '\n']]],
    ['COPY <<EOF slashfile2\n\\\\\nEOF', [['EOF', '\\\n']]],
    ['COPY <<EOF slashfile3\n\\$\nEOF', [['EOF', '$\n']]],
    ['COPY <<"EOF" rawslashfile1\n\\\nEOF', [['EOF', '\\\n']]],
    ['COPY <<"EOF" rawslashfile2\n\\\\\nEOF', [['EOF', '\\\\\n']]],
    ['COPY <<"EOF" rawslashfile3\n\\$\nEOF', [['EOF', '\\$\n']]],
    ['ADD <<file.txt /dest/\nhello world\nfile.txt', [['file.txt', 'hello world\n']]],
    ['COPY <<EOF /x\nEOF', [['EOF', '']]],
  ])('%j', (body, expected) => {
    expect(contents(filesOf(body, name))).toEqual(expected);
  });

  test('ARGs and ENV of the step are what the builder passes; unset is empty', () => {
    const env = new Map([
      ['V', 'from env'],
      ['EMPTY', ''],
    ]);
    expect(contents(filesOf('COPY <<EOF /x\n$V|$UNSET|${EMPTY:-dflt}|${V:+set}|${V%env}\nEOF', env))).toEqual([
      ['EOF', 'from env||dflt|set|from \n'],
    ]);
  });

  test('tabs are stripped before expanding: a value keeps its own tabs', () => {
    expect(contents(filesOf('COPY <<-EOF /x\n\t$V\nEOF', new Map([['V', 'a\n\tb']])))).toEqual([['EOF', 'a\n\tb\n']]);
  });

  test('a required variable that is unset fails the expansion', () => {
    expect(() => filesOf('COPY <<EOF /x\n${V:?must be set}\nEOF')).toThrow('V: must be set');
  });

  test('every file is 0644', () => {
    expect(filesOf('COPY <<a <<b /d/\nA\na\nB\nb').map((f) => f.mode)).toEqual([0o644, 0o644]);
  });

  test('a delimiter that is a path becomes its last clean component, or is refused', () => {
    expect(filesOf('COPY <<a/../b /d/\nx\na/../b').map((f) => f.name)).toEqual(['b']);
    expect(() => filesOf('COPY <<a/b /d/\nx\na/b')).toThrow('heredoc "a/b" cannot be made into a file');
    expect(() => filesOf('COPY <<.. /d/\nx\n..')).toThrow('heredoc ".." cannot be made into a file');
  });

  test('the cache key changes with the content', () => {
    const one = filesOf('COPY <<EOF /x\n$V\nEOF', new Map([['V', '1']]));
    const two = filesOf('COPY <<EOF /x\n$V\nEOF', new Map([['V', '2']]));
    expect(inlineFilesKey(one)).not.toBe(inlineFilesKey(two));
  });
});

describe('writeCopyHeredocs', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsbuild-heredoc-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('files 0644 with the given mtime, each its own source, resolvable by name', async () => {
    const files = filesOf('COPY <<EOF <<*.txt <<.dockerignore <<EOF /d/\none\nEOF\nstar\n*.txt\n*\n.dockerignore\ntwo\nEOF');
    const mtime = new Date('2024-02-03T04:05:06Z');
    const { context, sources } = await writeCopyHeredocs(dir, files, { mtime });
    expect(sources).toEqual(['0/EOF', '1/[\\*].txt', '2/.dockerignore', '3/EOF']);

    const resolved = [];
    for (const source of sources) resolved.push(...(await context.resolveSource(source)));
    expect(resolved.map((s) => s.name)).toEqual(['EOF', '*.txt', '.dockerignore', 'EOF']);
    const read = await Promise.all(resolved.map((s) => readFile(s.hostPath, 'utf8')));
    // Two heredocs of one name both get the last body of that name, as in BuildKit.
    expect(read).toEqual(['two\n', 'star\n', '*\n', 'two\n']);
    for (const s of resolved) {
      const st = await stat(s.hostPath);
      expect(st.mode & 0o7777).toBe(0o644);
      expect(st.mtime.toISOString()).toBe(mtime.toISOString());
    }
    // A heredoc named .dockerignore is a file, not ignore rules.
    expect(context.isExcluded('0/EOF')).toBe(false);
  });

  test('names with pattern characters or backslashes match only themselves', async () => {
    const files = filesOf("COPY <<a[b] <<'q?' <<'a\\b' /d/\n1\na[b]\n2\nq?\n3\na\\b");
    const { context, sources } = await writeCopyHeredocs(dir, files);
    const resolved = [];
    for (const source of sources) resolved.push(...(await context.resolveSource(source)));
    expect(resolved.map((s) => s.name)).toEqual(['a[b]', 'q?', 'a\\b']);
    expect(await Promise.all(resolved.map((s) => readFile(s.hostPath, 'utf8')))).toEqual(['1\n', '2\n', '3\n']);
  });

  test('without an mtime, the files are dated when they are written', async () => {
    const before = Date.now();
    const { context, sources } = await writeCopyHeredocs(dir, filesOf('COPY <<EOF /x\nhi\nEOF'));
    const [source] = await context.resolveSource(sources[0] as string);
    const mtime = (await stat(source?.hostPath as string)).mtimeMs;
    expect(mtime).toBeGreaterThanOrEqual(before - 1000);
    expect(mtime).toBeLessThanOrEqual(Date.now() + 1000);
  });
});
