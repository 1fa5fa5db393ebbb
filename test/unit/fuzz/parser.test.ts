// Property-based tests of the Dockerfile parser: whatever the text, parseDockerfile returns a plan
// or throws a DockerfileError naming a line of the file; never a TypeError, RangeError or other
// crash. Inputs are mostly Dockerfile-shaped (keywords, flags, quotes, variables, continuations,
// heredocs, directives) so that they reach deep into the parser, plus some arbitrary text.
import fc from 'fast-check';
import { DockerfileError } from '../../../src/errors.js';
import { parseDockerfile } from '../../../src/parse/index.js';
import { fuzzParameters } from '../../fuzz/settings.js';

const KEYWORDS = (
  'FROM RUN CMD LABEL MAINTAINER EXPOSE ENV ADD COPY ENTRYPOINT VOLUME USER WORKDIR ARG ONBUILD STOPSIGNAL HEALTHCHECK SHELL ' +
  'from Run NOPE'
).split(' ');
const PIECES = [
  'busybox',
  'AS',
  'as',
  'stage',
  '--from=stage',
  '--chown=1:2',
  '--chmod=755',
  '--platform=$P',
  '--link',
  '--network=none',
  '--mount=type=cache,target=/x',
  '--interval=5s',
  '--',
  '-',
  '=',
  'A=1',
  'B="x y"',
  "C='z'",
  '$A',
  '${A}',
  '${A:-d}',
  '${A:+a}',
  '${A?err}',
  '${A#*}',
  '${A%%x}',
  '${A/x/y}',
  '${',
  '}',
  '$',
  '"',
  "'",
  '\\',
  '`',
  '[',
  ']',
  '["sh", "-c", "x"]',
  '[ "a" ]',
  '[1,',
  '{"a":1}',
  '<<EOF',
  '<<-EOF',
  "<<'EOF'",
  '<<"EOF"',
  'EOF',
  'NONE',
  'CMD',
  '/src',
  '/dst/',
  '.',
  '..',
  '*',
  '?',
  '#',
  '# comment',
  '8080/tcp',
  '80-90',
  'SIGKILL',
  '9',
  '0',
  '99999999999999999999',
  'ü',
  '\u00a0',
  '\u2028',
  '\t',
  '\r',
];
const DIRECTIVES = [
  '# syntax=docker/dockerfile:1',
  '# escape=`',
  '# escape=\\',
  '# escape=x',
  '# check=skip=all',
  '#escape = `',
  '# syntax=',
];

const word = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...PIECES) }, { weight: 1, arbitrary: fc.string({ maxLength: 12 }) });
const args = fc.array(word, { maxLength: 6 }).map((ws) => ws.join(' '));
const instruction = fc
  .tuple(fc.constantFrom(...KEYWORDS), args, fc.constantFrom('', ' \\', ' `', '\r'))
  .map(([k, a, end]) => `${k} ${a}${end}`);
const line = fc.oneof(
  { weight: 8, arbitrary: instruction },
  { weight: 1, arbitrary: fc.constantFrom(...DIRECTIVES, '', '   ', '# just a comment', 'EOF', '  EOF', '\tEOF') },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
);
const dockerfile = fc
  .tuple(
    fc.array(fc.constantFrom(...DIRECTIVES), { maxLength: 2 }),
    fc.boolean(),
    fc.array(line, { maxLength: 25 }),
    fc.constantFrom('\n', '\r\n'),
  )
  .map(([directives, withFrom, lines, eol]) => [...directives, ...(withFrom ? ['FROM busybox'] : []), ...lines].join(eol));

function check(text: string): void {
  const lines = Math.max(1, text.split(/\r\n|\r|\n/).length);
  try {
    parseDockerfile(text);
  } catch (err) {
    if (!(err instanceof DockerfileError))
      throw new Error(`not a DockerfileError for ${JSON.stringify(text)}: ${String(err)}`, { cause: err });
    expect(err.message).toMatch(/^Dockerfile:\d+: \S/);
    expect(err.location.line).toBeGreaterThanOrEqual(1);
    expect(err.location.line).toBeLessThanOrEqual(lines);
  }
}

describe('parseDockerfile under fuzzing', () => {
  test('Dockerfile-shaped text: a plan or a DockerfileError with a line of the file', () => {
    fc.assert(fc.property(dockerfile, check), fuzzParameters(3000));
  });

  test('arbitrary text, control characters and lone surrogates included', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 300 }), check), fuzzParameters(2000));
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 200 }).map((s) => `FROM a\nRUN ${s}`),
        check,
      ),
      fuzzParameters(1000),
    );
  });

  test('the same text always gives the same answer', () => {
    fc.assert(
      fc.property(dockerfile, (text) => {
        const once = (): unknown => {
          try {
            return parseDockerfile(text);
          } catch (err) {
            return (err as Error).message;
          }
        };
        expect(once()).toEqual(once());
      }),
      fuzzParameters(500),
    );
  });
});
