// Heredocs and parser directives as BuildKit's Dockerfile frontend reads them. Expected values
// come from moby/buildkit's frontend/dockerfile tests (parser_heredoc_test.go,
// instructions/parse_heredoc_test.go, dockerfile_heredoc_test.go), restated as tables.
import { DockerfileError } from '../../../src/errors.js';
import { expandHeredocBody, parseDockerfile, type Heredoc, type Step } from '../../../src/parse/index.js';
import { chompHeredocBody, heredocContent, parseHeredocWord } from '../../../src/parse/heredoc.js';

function steps(body: string): readonly Step[] {
  return parseDockerfile(`FROM scratch\n${body}`).stages[0]?.steps ?? [];
}

function only(body: string): Step {
  const all = steps(body);
  expect(all).toHaveLength(1);
  return all[0] as Step;
}

function heredocsOf(step: Step): readonly Heredoc[] | undefined {
  return step.kind === 'RUN' || step.kind === 'COPY' || step.kind === 'ADD' ? step.heredocs : undefined;
}

function errorOf(text: string): string {
  try {
    parseDockerfile(text);
  } catch (err) {
    if (err instanceof DockerfileError) return err.message;
    throw err;
  }
  throw new Error('expected a DockerfileError');
}

const doc = (name: string, body: string, more: Partial<Heredoc> = {}): Heredoc => ({
  name,
  body,
  expand: true,
  chomp: false,
  ...more,
});

describe('which lines open heredocs, and their bodies (parser_heredoc_test.go)', () => {
  const cases: ReadonlyArray<readonly [string, readonly Heredoc[] | undefined]> = [
    ['RUN <<EMPTY\nEMPTY', [doc('EMPTY', '')]],
    ['RUN 3<<EMPTY2\nEMPTY2', [doc('EMPTY2', '', { fd: 3 })]],
    ['RUN "<<NOHEREDOC"', undefined],
    ["RUN '<<EOF'", undefined],
    ['RUN <<INDENT\n\tfoo\n\tbar\nINDENT', [doc('INDENT', '\tfoo\n\tbar\n')]],
    ['RUN <<-UNINDENT\n\tbaz\n\tquux\nUNINDENT', [doc('UNINDENT', '\tbaz\n\tquux\n', { chomp: true })]],
    ['RUN <<-UNINDENT2\n\tbaz\n\tquux\n\tUNINDENT2', [doc('UNINDENT2', '\tbaz\n\tquux\n', { chomp: true })]],
    ['RUN <<-EXPAND\n\texpand $NAME\nEXPAND', [doc('EXPAND', '\texpand $NAME\n', { chomp: true })]],
    ["RUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND", [doc('NOEXPAND', "\tdon't expand $NAME\n", { chomp: true, expand: false })]],
    [
      'RUN <<COMMENT\n# internal comment\necho hello world\necho foo bar # trailing comment\nCOMMENT',
      [doc('COMMENT', '# internal comment\necho hello world\necho foo bar # trailing comment\n')],
    ],
    ['RUN --network=none <<MOUNT\necho hello\nMOUNT', [doc('MOUNT', 'echo hello\n')]],
    ["RUN <<COMPLEX python3\nprint('hello world')\nCOMPLEX", [doc('COMPLEX', "print('hello world')\n")]],
    ["RUN <<eo'f'\necho foo\neof", [doc('eof', 'echo foo\n', { expand: false })]],
    ["RUN <<eo\\'f\necho foo\neo'f", [doc("eo'f", 'echo foo\n')]],
    ["RUN <<'e'o\\'f\necho foo\neo'f", [doc("eo'f", 'echo foo\n', { expand: false })]],
    ["RUN <<'one two'\necho bar\none two", [doc('one two', 'echo bar\n', { expand: false })]],
    ['RUN <<"EOF"\n$X\nEOF', [doc('EOF', '$X\n', { expand: false })]],
    ['RUN <<$EOF\n$EOF', [doc('$EOF', '')]],
    // Blanks after << belong to the operator, so `<< EOF` is a heredoc...
    ['RUN <<  EOF\nEOF', [doc('EOF', '')]],
    ['RUN cat <<  EOF  > foo\nEOF', [doc('EOF', '')]],
    // ...and a redirection written against the name is part of it, as in BuildKit.
    ['RUN cat <<EOF>/out\nhi\nEOF>/out', [doc('EOF>/out', 'hi\n')]],
    ['RUN << -EOF\nx\n-EOF', [doc('-EOF', 'x\n')]],
    ['RUN <<EOF <<EOF2\na\nEOF\nb\nEOF2', [doc('EOF', 'a\n'), doc('EOF2', 'b\n')]],
    ['COPY <<X <<Y /dest\nY\nX\nX\nY', [doc('X', 'Y\n'), doc('Y', 'X\n')]],
    ['COPY <<EOF /quotes\n"foo"\n\'bar\'\nEOF', [doc('EOF', '"foo"\n\'bar\'\n')]],
    ['COPY <<file.txt /dest\nhello world\nfile.txt', [doc('file.txt', 'hello world\n')]],
    ['ADD <<EOF /x\nadded\nEOF', [doc('EOF', 'added\n')]],
    // Bodies keep their line endings byte for byte; the delimiter line may end in CRLF.
    ['RUN <<EOF\r\necho a\r\nEOF\r\n', [doc('EOF', 'echo a\r\n')]],
    // JSON form never has heredocs.
    ['RUN ["<<EOF"]', undefined],
    ['RUN cat <<<"here-string"', undefined],
  ];
  test.each(cases)('%j', (body, expected) => {
    expect(heredocsOf(only(body))).toEqual(expected);
  });

  test('the command keeps only the instruction line', () => {
    const run = only('RUN <<\'EOF\' | python\nprint("hello")\nprint("world")\nEOF');
    expect(run).toMatchObject({
      kind: 'RUN',
      text: "RUN <<'EOF' | python",
      cmd: { form: 'shell', command: "<<'EOF' | python" },
      heredocs: [doc('EOF', 'print("hello")\nprint("world")\n', { expand: false })],
    });
  });

  test('`<<- EOF` is not a heredoc in BuildKit: its body lines are instructions', () => {
    expect(errorOf('FROM a\nRUN cat <<- EOF\nhello\nEOF')).toBe('Dockerfile:3: unknown instruction: hello (did you mean shell?)');
  });

  test('a heredoc word on another instruction is not one', () => {
    expect(errorOf('FROM a\nUSER <<INVALID\nINVALID')).toBe('Dockerfile:3: unknown instruction: INVALID');
  });
});

describe('line numbers', () => {
  test('each step is at its instruction line; bodies are counted', () => {
    const text = 'FROM a\nRUN <<A <<B\none\nA\ntwo\nB\n\nCOPY <<EOF /x\nEOF\nRUN echo done\n';
    const plan = parseDockerfile(text);
    expect(plan.stages[0]?.steps.map((s) => [s.kind, s.loc.line])).toEqual([
      ['RUN', 2],
      ['COPY', 8],
      ['RUN', 10],
    ]);
  });

  test('an instruction continued onto several lines opens its heredocs after the last', () => {
    const run = only('RUN cat <<EOF1 | tr a-z A-Z > ./out1; \\\n\tcat <<EOF2 > ./out2\nhello\nEOF1\nworld\nEOF2\n');
    expect(run.loc.line).toBe(2);
    expect(heredocsOf(run)).toEqual([doc('EOF1', 'hello\n'), doc('EOF2', 'world\n')]);
  });

  test('the body is not read for directives, comments or continuations', () => {
    const text = 'FROM a\nRUN <<EOF\n# escape=`\necho a \\\n  b\n\n#comment\nEOF\nRUN x';
    const [run, next] = parseDockerfile(text).stages[0]?.steps ?? [];
    expect(heredocsOf(run as Step)).toEqual([doc('EOF', '# escape=`\necho a \\\n  b\n\n#comment\n')]);
    expect(next?.loc.line).toBe(9);
  });
});

describe('errors', () => {
  test.each([
    ['FROM a\nRUN <<EOF\necho hi\n', 'Dockerfile:2: unterminated heredoc'],
    ['FROM a\nRUN <<A <<B\nA\n', 'Dockerfile:2: unterminated heredoc'],
    ['FROM a\nRUN <<-EOF\n  EOF\n', 'Dockerfile:2: unterminated heredoc'],
    ['FROM a\nRUN <<EOF\nEOF \n', 'Dockerfile:2: unterminated heredoc'],
    ['FROM a\nRUN echo \\\n  <<EOF\nx\n', 'Dockerfile:2: unterminated heredoc'],
    ['FROM a\nCOPY /foo <<EOF\nEOF', 'Dockerfile:2: COPY cannot accept a heredoc as a destination'],
    ['FROM a\nADD <<EOF <<-X\nEOF\nX', 'Dockerfile:2: ADD cannot accept a heredoc as a destination'],
    // A COPY body that will be expanded must be well-formed, like any word.
    ['FROM a\nCOPY <<EOF /x\n${A:-x\nEOF', 'Dockerfile:2: failed to process "${A:-x\\n": syntax error: missing \'}\''],
    [
      'FROM a\nCOPY <<EOF /x\nlen=${#arr}\nEOF',
      'Dockerfile:2: failed to process "len=${#arr}\\n": unsupported modifier (a) in substitution',
    ],
  ])('%j', (text, message) => {
    expect(errorOf(text)).toBe(message);
  });

  test.each([
    // Quoted delimiters are never expanded, and RUN bodies are the shell's business.
    "FROM a\nCOPY <<'EOF' /x\n${A\nEOF",
    'FROM a\nRUN <<EOF\necho ${#arr[@]}\nEOF',
    // An unterminated quote on the line: BuildKit finds no heredoc (and the shell complains).
    'FROM a\nRUN echo "<<EOF',
  ])('accepted: %j', (text) => {
    expect(() => parseDockerfile(text)).not.toThrow();
  });
});

describe('COPY and ADD sources', () => {
  test('heredoc sources are inline files; the other words stay context paths', () => {
    expect(only('COPY <<EOF foo.txt /bar\nthis is inline\nEOF')).toMatchObject({
      kind: 'COPY',
      sources: ['foo.txt'],
      dest: '/bar',
      heredocs: [doc('EOF', 'this is inline\n')],
    });
  });

  test('only heredocs: no context sources', () => {
    const copy = only("COPY --chmod=0755 <<EOF1 <<'EOF2' /bar/\nfirst $X\nEOF1\nsecond $X\nEOF2");
    expect(copy).toMatchObject({
      sources: [],
      dest: '/bar/',
      chmod: '0755',
      heredocs: [doc('EOF1', 'first $X\n'), doc('EOF2', 'second $X\n', { expand: false })],
    });
  });

  test('no heredocs: no heredocs member', () => {
    expect('heredocs' in only('COPY a b')).toBe(false);
    expect('heredocs' in only('RUN a')).toBe(false);
  });

  test('`<<-` bodies are chomped for the file, not in the plan', () => {
    const [heredoc] = heredocsOf(only('COPY <<-EOF /bar\n\tTESTING\n\t\tx\nEOF')) ?? [];
    expect(heredoc).toEqual(doc('EOF', '\tTESTING\n\t\tx\n', { chomp: true }));
    expect(heredocContent(heredoc as Heredoc)).toBe('TESTING\nx\n');
  });

  test('`COPY << EOF /d`: the line opens a heredoc, but the words `<<` and `EOF` are paths (BuildKit)', () => {
    expect(only('COPY << EOF /d/\nhi\nEOF')).toMatchObject({ sources: ['<<', 'EOF'], dest: '/d/' });
  });

  test('in JSON form a `<<name` source is an empty inline file (BuildKit)', () => {
    expect(only('COPY ["<<EOF", "/d"]')).toMatchObject({ sources: [], heredocs: [doc('EOF', '')] });
  });
});

describe('the escape directive', () => {
  test('with a backtick escape, continuations use it and heredocs work the same', () => {
    const text = '# escape=`\nFROM a\nRUN cat <<EOF `\n  > C:\\out.txt\nC:\\path\\file\nEOF\nCOPY <<EOF C:\\dest\\\nx\nEOF\n';
    const plan = parseDockerfile(text);
    expect(plan.escapeChar).toBe('`');
    const [run, copy] = plan.stages[0]?.steps ?? [];
    expect(run).toMatchObject({
      loc: { line: 3 },
      cmd: { command: 'cat <<EOF   > C:\\out.txt' },
      heredocs: [doc('EOF', 'C:\\path\\file\n')],
    });
    expect(copy).toMatchObject({ loc: { line: 7 }, dest: 'C:\\dest\\', heredocs: [doc('EOF', 'x\n')] });
  });

  test('COPY heredoc bodies always escape with a backslash, as BuildKit does', () => {
    expect(expandHeredocBody('C:\\path\\$X\n', new Map([['X', 'x']]))).toBe('C:path$X\n');
  });
});

describe('expanding a COPY heredoc body (dockerfile_heredoc_test.go)', () => {
  const vars = new Map([['name', 'world']]);
  test.each([
    ['Hello ${name}!\n', 'Hello world!\n'],
    ["Hello '${name}'!\n", "Hello 'world'!\n"],
    ['Hello "${name}"!\n', 'Hello "world"!\n'],
    ['"quotes in file"\n', '"quotes in file"\n'],
    ['\\\n', '\n'],
    ['\\\\\n', '\\\n'],
    ['\\$\n', '$\n'],
    ['$unset.${unset:-default}\n', '.default\n'],
    ['trailing \\', 'trailing '],
  ])('%j', (body, expected) => {
    expect(expandHeredocBody(body, vars)).toBe(expected);
  });
});

describe('heredoc words (ParseHeredoc)', () => {
  test.each(['<<EOF', "<<'EOF'", '<<"EOF"', '<<-EOF', "<<-'EOF'", '<<-"EOF"', '<<EO"F"', '<< EOF', '<<- EOF'])('valid: %j', (word) => {
    expect(parseHeredocWord(word)?.name).toBe('EOF');
  });
  test.each(['', 'EOF', '<<', '<<-', '<EOF', '<<<EOF', '<<EOF sh'])('not a heredoc: %j', (word) => {
    expect(parseHeredocWord(word)).toBeUndefined();
  });
  test.each(["<<'EOF", '<<"EOF', "<<EOF'", '<<EOF"'])('invalid: %j', (word) => {
    expect(() => parseHeredocWord(word)).toThrow('unexpected end of statement');
  });

  test('chomping strips leading tabs only', () => {
    expect(chompHeredocBody('\thello\n\t\tworld\n  spaces\n\r\tcr\n')).toBe('hello\nworld\n  spaces\n\r\tcr\n');
  });
});

describe('ONBUILD', () => {
  test('the trigger carries its bodies, and parses back to the same step', () => {
    const onbuild = only('ONBUILD RUN <<-EOF\n\techo "hello world" >> /dest\n\tEOF');
    expect(onbuild).toMatchObject({ kind: 'ONBUILD', trigger: 'RUN <<-EOF\n\techo "hello world" >> /dest\nEOF' });
    const trigger = (onbuild as Step & { kind: 'ONBUILD' }).trigger;
    expect(heredocsOf(only(trigger))).toEqual([doc('EOF', '\techo "hello world" >> /dest\n', { chomp: true })]);
  });

  test('JSON-form triggers open none', () => {
    expect(only('ONBUILD RUN ["<<EOF"]')).toMatchObject({ trigger: 'RUN ["<<EOF"]' });
  });
});

describe('parser directives', () => {
  test('# syntax= is recorded; docker/dockerfile:1 and friends need no warning', () => {
    for (const value of [
      'docker/dockerfile:1',
      'docker/dockerfile:1.7-labs',
      'docker.io/docker/dockerfile:1.4.3',
      'docker/dockerfile-upstream:master',
      `docker/dockerfile:1@sha256:${'a'.repeat(64)}`,
      'docker/dockerfile',
    ]) {
      const plan = parseDockerfile(`# syntax=${value}\nFROM a\n`);
      expect([plan.syntax, plan.warnings]).toEqual([value, undefined]);
    }
  });

  test('another frontend is a warning at its line, not an error', () => {
    const plan = parseDockerfile('# check=skip=all\n#Syntax = example.com/my/frontend:2 --flag\nFROM a\n');
    expect(plan.syntax).toBe('example.com/my/frontend:2');
    expect(plan.warnings).toEqual([
      {
        loc: { file: 'Dockerfile', line: 2 },
        message:
          '# syntax=example.com/my/frontend:2 --flag: tsbuild does not run Dockerfile frontend images; ' +
          'building with its built-in Dockerfile syntax (docker/dockerfile:1) instead',
      },
    ]);
  });

  test('directives end at the first other line; later ones are comments', () => {
    for (const text of ['\n# syntax=foo/bar\nFROM a', '# hello\n# syntax=foo/bar\nFROM a', 'FROM a\n# syntax=foo/bar\n']) {
      const plan = parseDockerfile(text);
      expect([plan.syntax, plan.warnings]).toEqual([undefined, undefined]);
    }
    // Not an escape directive there, so a backtick does not continue a line.
    expect(errorOf('FROM a\n# escape=`\nRUN a `\n  b')).toBe('Dockerfile:4: unknown instruction: b');
  });

  test('# check= is accepted silently', () => {
    const plan = parseDockerfile('# check=error=true;skip=JSONArgsRecommended\nFROM a\n');
    expect(plan.warnings).toBeUndefined();
  });
});

describe('JSON-form errors name the instruction line', () => {
  test.each([
    ['FROM a\n\nSHELL [broken', 'Dockerfile:3: SHELL requires the arguments to be in JSON form'],
    ['FROM a\nSHELL ["/bin/sh", \\\n  "-c"', 'Dockerfile:2: SHELL requires the arguments to be in JSON form'],
    [
      'FROM a\nRUN echo a\nCMD ["echo", \\\n  {"a": 1}]',
      'Dockerfile:3: when using JSON array syntax, arrays must be comprised of strings only',
    ],
    ['FROM a\nCOPY ["a", 1, "/b"]', 'Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only'],
    ['FROM a\nRUN ["<<EOF", 2]\nEOF', 'Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only'],
  ])('%j', (text, message) => {
    expect(errorOf(text)).toBe(message);
  });
});
