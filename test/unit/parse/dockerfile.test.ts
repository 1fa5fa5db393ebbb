// What the parser makes of each instruction form. Where a value is a Word, the tests also
// expand it, because that is what the user observes (ENV A="x y" sets `x y`).
import { expandWord, parseDockerfile, type Step } from '../../../src/parse/index.js';

/** The steps of a one-stage Dockerfile whose FROM line is added here. */
function steps(body: string): readonly Step[] {
  const plan = parseDockerfile(`FROM scratch\n${body}`);
  return plan.stages[0]?.steps ?? [];
}

/** A step narrowed to one kind (CMD and ENTRYPOINT share a type, as do COPY and ADD). */
type StepOf<K extends Step['kind']> = Step & { readonly kind: K };

/** The single step of `body`, narrowed to its kind. */
function only<K extends Step['kind']>(kind: K, body: string): StepOf<K> {
  const all = steps(body);
  expect(all).toHaveLength(1);
  const step = all[0] as Step;
  expect(step.kind).toBe(kind);
  return step as StepOf<K>;
}

const noVars = new Map<string, string>();

describe('FROM and stages', () => {
  test('stages in order, names lower-cased, unnamed stages without a name', () => {
    const plan = parseDockerfile('FROM golang:1.22 AS Build\nRUN go build\nfrom --platform=$BUILDPLATFORM alpine as final\nFROM scratch\n');
    expect(plan.stages.map((s) => [s.index, s.name, s.from.image, s.from.platform])).toEqual([
      [0, 'build', 'golang:1.22', undefined],
      [1, 'final', 'alpine', '$BUILDPLATFORM'],
      [2, undefined, 'scratch', undefined],
    ]);
    expect(plan.stages[0]?.steps.map((s) => s.text)).toEqual(['RUN go build']);
    expect(plan.stages[1]?.from).toEqual({
      loc: { file: 'Dockerfile', line: 3 },
      text: 'FROM --platform=$BUILDPLATFORM alpine as final',
      image: 'alpine',
      platform: '$BUILDPLATFORM',
    });
    expect(plan.stages[1]?.steps).toEqual([]);
  });

  test('stage names may hold digits, dots, dashes and underscores', () => {
    const plan = parseDockerfile('FROM a AS b-1.x_y\n');
    expect(plan.stages[0]?.name).toBe('b-1.x_y');
  });

  test('global ARGs come before the first FROM; ARGs inside a stage are steps', () => {
    const plan = parseDockerfile('ARG BASE=alpine\nARG TAG\nFROM $BASE:${TAG:-latest}\nARG BASE\nRUN echo $BASE\n');
    expect(plan.globalArgs.map((a) => a.args)).toEqual([[{ name: 'BASE', default: 'alpine' }], [{ name: 'TAG' }]]);
    expect(plan.globalArgs[0]?.loc.line).toBe(1);
    expect(plan.stages[0]?.from.image).toBe('$BASE:${TAG:-latest}');
    expect(plan.stages[0]?.steps.map((s) => s.kind)).toEqual(['ARG', 'RUN']);
  });

  test('the plan carries the file name and the escape character', () => {
    const plan = parseDockerfile('FROM a\n', 'build/Containerfile');
    expect(plan.file).toBe('build/Containerfile');
    expect(plan.escapeChar).toBe('\\');
    expect(plan.stages[0]?.from.loc).toEqual({ file: 'build/Containerfile', line: 1 });
  });
});

describe('RUN', () => {
  test('shell form keeps the command as written', () => {
    const run = only('RUN', `RUN apt-get update && echo "$HOME" 'x  y'`);
    expect(run.cmd).toEqual({ form: 'shell', command: `apt-get update && echo "$HOME" 'x  y'` });
    expect(run.network).toBeUndefined();
  });

  test('exec form is a JSON array', () => {
    expect(only('RUN', 'RUN ["echo", "a b", "$HOME"]').cmd).toEqual({ form: 'exec', argv: ['echo', 'a b', '$HOME'] });
  });

  test('text that looks like JSON but is not falls back to shell form', () => {
    expect(only('RUN', "RUN ['echo', 'hi']").cmd).toEqual({ form: 'shell', command: "['echo', 'hi']" });
    expect(only('RUN', 'RUN ["echo", "hi"').cmd).toEqual({ form: 'shell', command: '["echo", "hi"' });
    expect(only('RUN', 'RUN [ "a" ] && b').cmd).toEqual({ form: 'shell', command: '[ "a" ] && b' });
  });

  test('--network', () => {
    expect(only('RUN', 'RUN --network=none true').network).toBe('none');
    expect(only('RUN', 'RUN --network=host ["true"]')).toMatchObject({ network: 'host', cmd: { form: 'exec' } });
  });

  test('-- ends the flags', () => {
    expect(only('RUN', 'RUN -- --version').cmd).toEqual({ form: 'shell', command: '--version' });
  });
});

describe('CMD and ENTRYPOINT', () => {
  test.each(['CMD', 'ENTRYPOINT'] as const)('%s shell and exec forms', (kind) => {
    expect(only(kind, `${kind} nginx -g 'daemon off;'`).cmd).toEqual({ form: 'shell', command: "nginx -g 'daemon off;'" });
    expect(only(kind, `${kind} ["nginx", "-g", "daemon off;"]`).cmd).toEqual({
      form: 'exec',
      argv: ['nginx', '-g', 'daemon off;'],
    });
    expect(only(kind, `${kind} []`).cmd).toEqual({ form: 'exec', argv: [] });
    expect(only(kind, `${kind} [ "/usr/bin/redis-server" ]`).cmd).toEqual({
      form: 'exec',
      argv: ['/usr/bin/redis-server'],
    });
  });

  test('JSON escapes are decoded', () => {
    expect(only('CMD', 'CMD ["a\\"b", "\\u00e9", "\\/x"]').cmd).toEqual({ form: 'exec', argv: ['a"b', 'é', '/x'] });
  });
});

describe('SHELL', () => {
  test('is an argv', () => {
    expect(only('SHELL', 'SHELL ["/bin/bash", "-o", "pipefail", "-c"]').argv).toEqual(['/bin/bash', '-o', 'pipefail', '-c']);
  });
});

describe('COPY and ADD', () => {
  test('sources and destination, unexpanded', () => {
    const copy = only('COPY', 'COPY a.txt $SRC/b* /app/');
    expect(copy).toMatchObject({ kind: 'COPY', sources: ['a.txt', '$SRC/b*'], dest: '/app/' });
  });

  test('JSON form allows spaces in names', () => {
    expect(only('COPY', 'COPY ["my file", "other", "/dest dir/"]')).toMatchObject({
      sources: ['my file', 'other'],
      dest: '/dest dir/',
    });
  });

  test('outside JSON form quotes do not group: Docker splits on whitespace, then removes quotes', () => {
    expect(only('COPY', 'COPY "a" \'b\' /d').sources.map((w) => expandWord(w, noVars))).toEqual(['a', 'b']);
    expect(() => steps('COPY "a b" /d')).toThrow(
      'Dockerfile:2: failed to process "\\"a": unexpected end of statement while looking for matching double-quote',
    );
  });

  test('a variable holding spaces stays one source (expanded as one word)', () => {
    const copy = only('COPY', 'COPY $FILES /d');
    expect(copy.sources.map((w) => expandWord(w, new Map([['FILES', 'a b']])))).toEqual(['a b']);
  });

  test('COPY flags', () => {
    expect(only('COPY', 'COPY --from=build --chown=app:app --chmod=0755 --link /out /usr/bin/')).toMatchObject({
      from: 'build',
      chown: 'app:app',
      chmod: '0755',
      link: true,
      sources: ['/out'],
      dest: '/usr/bin/',
    });
    expect(only('COPY', 'COPY --from=0 --link=false a b')).toEqual(expect.not.objectContaining({ link: expect.anything() }));
    expect(only('COPY', 'COPY --chown=$USER:$GROUP a b').chown).toBe('$USER:$GROUP');
    // --exclude repeats and is kept as written (BuildKit never expands it); --parents is a bool.
    expect(only('COPY', 'COPY --exclude=*.md --parents --exclude=$X a/./b c/')).toMatchObject({ exclude: ['*.md', '$X'], parents: true });
    expect(only('COPY', 'COPY --parents=false a b')).toEqual(expect.not.objectContaining({ parents: expect.anything() }));
  });

  test('flag values lose their quotes as Docker extracts them', () => {
    expect(only('COPY', 'COPY --chown="app user" a b').chown).toBe('app user');
  });

  test('ADD flags', () => {
    const add = only('ADD', 'ADD --checksum=sha256:abc --keep-git-dir --chown=1:1 https://example.com/x.tgz /x');
    expect(add).toMatchObject({ kind: 'ADD', checksum: 'sha256:abc', keepGitDir: true, chown: '1:1' });
    expect(add.sources).toEqual(['https://example.com/x.tgz']);
    expect(only('ADD', 'ADD --exclude=a --exclude=b --keep-git-dir=false https://h/r.git /x')).toMatchObject({
      exclude: ['a', 'b'],
      keepGitDir: false,
    });
  });
});

describe('ENV', () => {
  const values = (body: string) => only('ENV', body).pairs.map(([key, value]) => [key, expandWord(value, noVars)] as const);

  test('KEY=VALUE pairs, several per line', () => {
    expect(values('ENV A=1 B=2')).toEqual([
      ['A', '1'],
      ['B', '2'],
    ]);
  });

  test('legacy form: the value is the rest of the line', () => {
    expect(values('ENV A hello   world')).toEqual([['A', 'hello   world']]);
    expect(values('ENV SCUBA 1 DUBA 3')).toEqual([['SCUBA', '1 DUBA 3']]);
    expect(values('ENV SCUBA "1 DUBA 3"')).toEqual([['SCUBA', '1 DUBA 3']]);
  });

  test('values stay unexpanded in the plan', () => {
    expect(only('ENV', 'ENV PATH=/opt/bin:$PATH').pairs).toEqual([['PATH', '/opt/bin:$PATH']]);
  });

  test.each([
    ['ENV name="value value1"', 'value value1'],
    ['ENV name=value\\ value2', 'value value2'],
    [`ENV name="value'quote space'value2"`, "value'quote space'value2"],
    [`ENV name='value"double quote"value2'`, 'value"double quote"value2'],
    ['ENV name="a\\"b"', 'a"b'],
    [`ENV name="a\\'b"`, "a\\'b"],
    [`ENV name='a\\"b'`, 'a\\"b'],
    [`ENV name="''"`, "''"],
    ['ENV name=""', ''],
    ['ENV name=', ''],
    ['ENV name="a=b"', 'a=b'],
  ])('%s', (body, expected) => {
    expect(values(body)).toEqual([['name', expected]]);
  });

  test("a quoted value spanning a continuation keeps the next line's indentation", () => {
    expect(values('ENV name=value \\\n    name2="value2a \\\n           value2b"')).toEqual([
      ['name', 'value'],
      ['name2', 'value2a            value2b'],
    ]);
  });

  test('quotes and escapes are removed from keys', () => {
    expect(only('ENV', 'ENV "A"=1 B\\C=2').pairs.map(([key]) => key)).toEqual(['A', 'BC']);
  });
});

describe('LABEL', () => {
  const labels = (body: string) =>
    only('LABEL', body).pairs.map(([key, value]) => [expandWord(key, noVars), expandWord(value, noVars)] as const);

  test('pairs with quotes', () => {
    expect(labels('LABEL a=b "com.example.key"="some value" c=d\\ e')).toEqual([
      ['a', 'b'],
      ['com.example.key', 'some value'],
      ['c', 'd e'],
    ]);
  });

  test('legacy form', () => {
    expect(labels('LABEL maintainer James Turnbull "james@example.com"')).toEqual([['maintainer', 'James Turnbull james@example.com']]);
  });

  test('multi-line labels', () => {
    expect(labels('LABEL a=1 \\\n      b="two words" \\\n      c=3')).toEqual([
      ['a', '1'],
      ['b', 'two words'],
      ['c', '3'],
    ]);
  });
});

describe('ARG', () => {
  test('several declarations, with and without defaults', () => {
    expect(only('ARG', 'ARG A=1 B C="x y" D=').args).toEqual([
      { name: 'A', default: '1' },
      { name: 'B' },
      { name: 'C', default: '"x y"' },
      { name: 'D', default: '' },
    ]);
  });
});

describe('single-word instructions', () => {
  test('WORKDIR, USER, STOPSIGNAL take the rest of the line', () => {
    expect(only('WORKDIR', 'WORKDIR /app/$NAME').path).toBe('/app/$NAME');
    expect(only('WORKDIR', 'WORKDIR /a b').path).toBe('/a b');
    expect(only('USER', 'USER app:app').user).toBe('app:app');
    expect(only('STOPSIGNAL', 'STOPSIGNAL SIGQUIT').signal).toBe('SIGQUIT');
  });

  test('MAINTAINER', () => {
    expect(only('MAINTAINER', 'MAINTAINER Jane Doe <jane@example.com>').name).toBe('Jane Doe <jane@example.com>');
  });
});

describe('EXPOSE and VOLUME', () => {
  test('EXPOSE ports, unvalidated until expanded', () => {
    expect(only('EXPOSE', 'EXPOSE 80 443/tcp 53/udp 8000-8010 $PORT').ports).toEqual(['80', '443/tcp', '53/udp', '8000-8010', '$PORT']);
  });

  test('VOLUME as JSON or as words', () => {
    expect(only('VOLUME', 'VOLUME ["/data", "/var/log app"]').paths).toEqual(['/data', '/var/log app']);
    expect(only('VOLUME', 'VOLUME /data /cache').paths).toEqual(['/data', '/cache']);
    expect(only('VOLUME', 'VOLUME [" /padded "]').paths).toEqual(['/padded']);
  });
});

describe('HEALTHCHECK', () => {
  test('NONE', () => {
    expect(only('HEALTHCHECK', 'HEALTHCHECK NONE').test).toEqual(['NONE']);
    expect(only('HEALTHCHECK', 'healthcheck none').test).toEqual(['NONE']);
  });

  test('shell and exec forms', () => {
    expect(only('HEALTHCHECK', 'HEALTHCHECK CMD curl -f http://localhost/ || exit 1').test).toEqual([
      'CMD-SHELL',
      'curl -f http://localhost/ || exit 1',
    ]);
    expect(only('HEALTHCHECK', 'HEALTHCHECK   CMD   a b').test).toEqual(['CMD-SHELL', 'a b']);
    expect(only('HEALTHCHECK', 'HEALTHCHECK CMD ["/bin/check", "--quiet"]').test).toEqual(['CMD', '/bin/check', '--quiet']);
  });

  test('durations in nanoseconds, retries', () => {
    const hc = only(
      'HEALTHCHECK',
      'HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2.5s --start-interval=1h --retries=3 \\\n  CMD true',
    );
    expect(hc).toMatchObject({
      intervalNs: 90_000_000_000,
      timeoutNs: 500_000_000,
      startPeriodNs: 2_500_000_000,
      startIntervalNs: 3_600_000_000_000,
      retries: 3,
      test: ['CMD-SHELL', 'true'],
    });
  });

  test('zero and absent values are unset', () => {
    const hc = only('HEALTHCHECK', 'HEALTHCHECK --interval=0s --timeout=0 --retries=0 CMD ["foo"]');
    expect(hc).toEqual({
      kind: 'HEALTHCHECK',
      loc: { file: 'Dockerfile', line: 2 },
      text: 'HEALTHCHECK --interval=0s --timeout=0 --retries=0 CMD ["foo"]',
      test: ['CMD', 'foo'],
    });
  });

  test.each([
    ['300ms', 300_000_000],
    ['1.5h', 5_400_000_000_000],
    ['2h45m', 9_900_000_000_000],
    ['1500us', 1_500_000],
    ['2000µs', 2_000_000],
    ['1000000ns', 1_000_000],
    ['.5s', 500_000_000],
    ['1s500ms', 1_500_000_000],
  ])('Go duration %s', (duration, ns) => {
    expect(only('HEALTHCHECK', `HEALTHCHECK --timeout=${duration} CMD true`).timeoutNs).toBe(ns);
  });
});

describe('ONBUILD', () => {
  test('records the trigger as written', () => {
    expect(only('ONBUILD', 'ONBUILD RUN echo "hi"').trigger).toBe('RUN echo "hi"');
    expect(only('ONBUILD', 'onbuild copy . /app').trigger).toBe('copy . /app');
    expect(only('ONBUILD', 'ONBUILD RUN ["echo", "test"]')).toMatchObject({
      trigger: 'RUN ["echo", "test"]',
      text: 'ONBUILD RUN ["echo", "test"]',
    });
  });
});

describe('text, line numbers and line structure', () => {
  test('keywords are case-insensitive; text has the keyword upper-cased', () => {
    const [run] = steps('run  echo   hi');
    expect(run).toMatchObject({ kind: 'RUN', text: 'RUN echo   hi' });
  });

  test('continuation lines are joined; their indentation is kept as Docker does', () => {
    const [run] = steps('RUN echo hello \\\n  world\\\n  goodnight  \\\n  moon');
    expect(run).toMatchObject({
      loc: { line: 2 },
      text: 'RUN echo hello   world  goodnight    moon',
      cmd: { form: 'shell', command: 'echo hello   world  goodnight    moon' },
    });
  });

  test('comments and blank lines inside a continuation are dropped', () => {
    const all = steps('RUN apt-get update && \\\n    # install tools\n\n    apt-get install -y git\nUSER app');
    expect(all.map((s) => [s.loc.line, s.text])).toEqual([
      [2, 'RUN apt-get update &&     apt-get install -y git'],
      [6, 'USER app'],
    ]);
  });

  test('a continuation swallows the next instruction after blank and comment lines, as in Docker', () => {
    const all = steps('RUN echo hello \\\n# a comment\n\n# another\n\nthis is more\nUSER x');
    expect(all.map((s) => s.text)).toEqual(['RUN echo hello this is more', 'USER x']);
  });

  test('an escaped escape at the end of a line does not continue it', () => {
    const all = steps('RUN echo foo\\\\\nUSER x');
    expect(all.map((s) => s.text)).toEqual(['RUN echo foo\\\\', 'USER x']);
  });

  test('a trailing escape on the last line is dropped', () => {
    expect(steps('USER app \\').map((s) => s.text)).toEqual(['USER app']);
  });

  test('comments, blank lines, indentation, CRLF and a byte order mark', () => {
    const plan = parseDockerfile('\ufeff# comment\r\n\r\n  FROM alpine\r\n\t# indented comment\r\n   RUN a \\\r\n b\r\n');
    expect(plan.stages[0]?.from.loc.line).toBe(3);
    expect(plan.stages[0]?.steps.map((s) => [s.loc.line, s.text])).toEqual([[5, 'RUN a  b']]);
  });

  test('# escape=` makes the backtick the escape and continuation character', () => {
    const plan = parseDockerfile(
      '# escape=`\nFROM mcr.microsoft.com/windows/servercore\nRUN dir C:\\ `\n    && echo done\nWORKDIR C:\\app\nENV P="C:\\a b" Q=x` y',
    );
    expect(plan.escapeChar).toBe('`');
    const [run, workdir, env] = plan.stages[0]?.steps ?? [];
    expect(run).toMatchObject({ loc: { line: 3 }, cmd: { form: 'shell', command: 'dir C:\\     && echo done' } });
    expect(workdir).toMatchObject({ path: 'C:\\app' });
    expect(expandWord((workdir as { path: string }).path, noVars, plan.escapeChar)).toBe('C:\\app');
    const pairs = (env as StepOf<'ENV'>).pairs;
    expect(pairs.map(([k, v]) => [k, expandWord(v, noVars, '`')])).toEqual([
      ['P', 'C:\\a b'],
      ['Q', 'x y'],
    ]);
  });

  test('directives are recognised only at the top; other comments are comments', () => {
    expect(parseDockerfile('# syntax=docker/dockerfile:1\n# escape=`\nFROM a').escapeChar).toBe('`');
    expect(parseDockerfile('# hello\n# escape=`\nFROM a').escapeChar).toBe('\\');
    expect(parseDockerfile('\n# escape=`\nFROM a').escapeChar).toBe('\\');
  });
});

describe('a complete multi-stage Dockerfile', () => {
  test('plan', () => {
    const plan = parseDockerfile(
      [
        'ARG GO_VERSION=1.22',
        '',
        '# build the binary',
        'FROM golang:${GO_VERSION} AS build',
        'WORKDIR /src',
        'COPY go.mod go.sum ./',
        'RUN --network=default go mod download',
        'COPY . .',
        'RUN CGO_ENABLED=0 go build -o /out/app ./cmd/app',
        '',
        'FROM alpine:3.20',
        'RUN apk add --no-cache ca-certificates',
        'COPY --from=build /out/app /usr/local/bin/app',
        'EXPOSE 8080',
        'USER nobody',
        'ENTRYPOINT ["app"]',
        'CMD ["--help"]',
      ].join('\n'),
    );
    expect(plan.globalArgs).toHaveLength(1);
    expect(plan.stages.map((s) => [s.name, s.from.image, s.from.loc.line])).toEqual([
      ['build', 'golang:${GO_VERSION}', 4],
      [undefined, 'alpine:3.20', 11],
    ]);
    expect(plan.stages[0]?.steps.map((s) => s.kind)).toEqual(['WORKDIR', 'COPY', 'RUN', 'COPY', 'RUN']);
    expect(plan.stages[1]?.steps.map((s) => [s.loc.line, s.kind])).toEqual([
      [12, 'RUN'],
      [13, 'COPY'],
      [14, 'EXPOSE'],
      [15, 'USER'],
      [16, 'ENTRYPOINT'],
      [17, 'CMD'],
    ]);
    expect(plan.stages[1]?.steps[1]).toMatchObject({ from: 'build', sources: ['/out/app'] });
  });
});
