// Every mistake is reported before anything is built, as `Dockerfile:LINE: reason`, with the
// first line of the offending instruction and, where Docker has one, Docker's wording.
import { DockerfileError } from '../../../src/errors.js';
import { parseDockerfile } from '../../../src/parse/index.js';

function errorOf(text: string): DockerfileError {
  try {
    parseDockerfile(text);
  } catch (err) {
    if (err instanceof DockerfileError) return err;
    throw err;
  }
  throw new Error('expected a DockerfileError');
}

describe('whole-file errors', () => {
  test.each([
    ['', 'Dockerfile:1: the Dockerfile cannot be empty'],
    ['\n  \n# only a comment\n', 'Dockerfile:1: file with no instructions'],
    ['ARG A=1\nARG B\n', 'Dockerfile:1: dockerfile contains no stages to build'],
  ])('%j', (text, message) => {
    expect(errorOf(text).message).toBe(message);
  });

  test('the error carries the location separately', () => {
    const err = errorOf('FROM a\n\nRUNN x');
    expect(err.location).toEqual({ file: 'Dockerfile', line: 3 });
    expect(err.detail).toBe('unknown instruction: RUNN (did you mean RUN?)');
  });

  test('the file name given is the one reported', () => {
    expect(() => parseDockerfile('FROM a\nFOO', 'app/Dockerfile.dev')).toThrow('app/Dockerfile.dev:2: unknown instruction: FOO');
  });
});

describe('instruction errors', () => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    // structure
    // BuildKit's suggestion, in the case the word was written in.
    ['FROM a\nfoo bar', 'Dockerfile:2: unknown instruction: foo (did you mean from?)'],
    ['RUN echo hi\nFROM a', 'Dockerfile:1: no build stage in current context'],
    ['ARG V\nENV A=1\nFROM a', 'Dockerfile:2: no build stage in current context'],
    ['FROM a AS x\nFROM b AS X', 'Dockerfile:2: Duplicate stage name "x", stage names should be unique'],

    // FROM
    ['FROM', 'Dockerfile:1: FROM requires either one or three arguments'],
    ['FROM a b', 'Dockerfile:1: FROM requires either one or three arguments'],
    ['FROM a AS b c', 'Dockerfile:1: FROM requires either one or three arguments'],
    ['FROM a AS 1st', 'Dockerfile:1: invalid name for build stage: "1st", name can\'t start with a number or contain symbols'],
    ['FROM a AS my/stage', 'Dockerfile:1: invalid name for build stage: "my/stage", name can\'t start with a number or contain symbols'],
    ['FROM --platfrom=linux/amd64 a', 'Dockerfile:1: unknown flag: --platfrom'],
    ['FROM --platform a', 'Dockerfile:1: missing a value on flag: --platform'],
    ['FROM ${IMAGE', 'Dockerfile:1: failed to process "${IMAGE": syntax error: missing \'}\''],

    // argument counts
    [
      'FROM a\nCOPY onlyone',
      'Dockerfile:2: COPY requires at least two arguments, but only one was provided. Destination could not be determined',
    ],
    [
      'FROM a\nADD ["onlyone"]',
      'Dockerfile:2: ADD requires at least two arguments, but only one was provided. Destination could not be determined',
    ],
    ['FROM a\nWORKDIR', 'Dockerfile:2: WORKDIR requires exactly one argument'],
    ['FROM a\nUSER', 'Dockerfile:2: USER requires exactly one argument'],
    ['FROM a\nSTOPSIGNAL', 'Dockerfile:2: STOPSIGNAL requires exactly one argument'],
    ['FROM a\nMAINTAINER', 'Dockerfile:2: MAINTAINER requires exactly one argument'],
    ['FROM a\nRUN', 'Dockerfile:2: RUN requires at least one argument'],
    ['FROM a\nRUN []', 'Dockerfile:2: RUN requires at least one argument'],
    ['FROM a\nEXPOSE', 'Dockerfile:2: EXPOSE requires at least one argument'],
    ['FROM a\nVOLUME', 'Dockerfile:2: VOLUME requires at least one argument'],
    ['FROM a\nVOLUME ["/a", ""]', 'Dockerfile:2: VOLUME specified can not be an empty string'],
    ['FROM a\nARG', 'Dockerfile:2: ARG requires at least one argument'],
    ['FROM a\nARG =x', 'Dockerfile:2: ARG names can not be blank'],
    ['FROM a\nONBUILD', 'Dockerfile:2: ONBUILD requires at least one argument'],

    // ENV and LABEL
    ['FROM a\nENV', 'Dockerfile:2: ENV requires at least one argument'],
    ['FROM a\nENV K', 'Dockerfile:2: ENV must have two arguments'],
    ['FROM a\nENV A=1 B', 'Dockerfile:2: Syntax error - can\'t find = in "B". Must be of the form: name=value'],
    ['FROM a\nENV =x', 'Dockerfile:2: ENV names can not be blank'],
    ['FROM a\nENV $NAME=x', 'Dockerfile:2: variables in ENV names are not supported by tsbuild: $NAME'],
    ['FROM a\nLABEL', 'Dockerfile:2: LABEL requires at least one argument'],
    ['FROM a\nLABEL version', 'Dockerfile:2: LABEL must have two arguments'],
    ['FROM a\nLABEL a=1 =2', 'Dockerfile:2: LABEL names can not be blank'],

    // flags
    ['FROM a\nCOPY --foo=x a b', 'Dockerfile:2: unknown flag: --foo'],
    ['FROM a\nRUN --from=x echo', 'Dockerfile:2: unknown flag: --from'],
    ['FROM a\nADD --from=x a b', 'Dockerfile:2: unknown flag: --from'],
    ['FROM a\nCOPY --checksum=sha256:x a b', 'Dockerfile:2: unknown flag: --checksum'],
    ['FROM a\nWORKDIR --x /a', 'Dockerfile:2: unknown flag: --x'],
    ['FROM a\nCMD --doit [ "a", "b" ]', 'Dockerfile:2: unknown flag: --doit'],
    ['FROM a\nCOPY --from=a --from=b x y', 'Dockerfile:2: duplicate flag specified: --from'],
    ['FROM a\nCOPY --link --link x y', 'Dockerfile:2: duplicate flag specified: --link'],
    ['FROM a\nCOPY --chown x y', 'Dockerfile:2: missing a value on flag: --chown'],
    ['FROM a\nCOPY --link= x y', 'Dockerfile:2: missing a value on flag: --link'],
    ['FROM a\nCOPY --link=yes x y', 'Dockerfile:2: expecting boolean value for flag --link, not: yes'],
    ['FROM a\nRUN --mount=type=cache,target=/root/.cache,sharing=none true', 'Dockerfile:2: unsupported sharing value "none"'],
    ['FROM a\nRUN --security=privileged true', 'Dockerfile:2: security mode "privileged" is not supported; use insecure or sandbox'],
    // BuildKit's ADD has no --parents.
    ['FROM a\nADD --parents a b', 'Dockerfile:2: unknown flag: --parents'],
    ['FROM a\nCOPY --exclude a b', 'Dockerfile:2: missing a value on flag: --exclude'],
    ['FROM a\nCOPY --parents=maybe a b', 'Dockerfile:2: expecting boolean value for flag --parents, not: maybe'],
    ['FROM a\nRUN --network=bridge true', 'Dockerfile:2: invalid network mode "bridge"'],
    [
      'FROM a\nCOPY --from=$STAGE a b',
      'Dockerfile:2: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
    ],

    // JSON
    ['FROM a\nSHELL /bin/bash -c', 'Dockerfile:2: SHELL requires the arguments to be in JSON form'],
    ['FROM a\nSHELL ["/bin/bash", "-c"', 'Dockerfile:2: SHELL requires the arguments to be in JSON form'],
    ['FROM a\nSHELL []', 'Dockerfile:2: SHELL requires at least one argument'],
    ['FROM a\nSHELL', 'Dockerfile:2: SHELL requires at least one argument'],
    ['FROM a\nCMD ["echo", 1]', 'Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only'],

    // substitution syntax, in every word the builder will expand
    ['FROM a\nENV A=${V', 'Dockerfile:2: failed to process "${V": syntax error: missing \'}\''],
    ['FROM a\nWORKDIR ${V:&x}', 'Dockerfile:2: failed to process "${V:&x}": unsupported modifier (:&) in substitution'],
    ['FROM a\nLABEL "a=b', 'Dockerfile:2: failed to process "\\"a": unexpected end of statement while looking for matching double-quote'],
    ['FROM a\nCOPY --chown=${U a b', 'Dockerfile:2: failed to process "${U": syntax error: missing \'}\''],
    ['FROM a\nUSER ${}', 'Dockerfile:2: failed to process "${}": syntax error: bad substitution'],
    ['FROM a\nEXPOSE ${P', 'Dockerfile:2: failed to process "${P": syntax error: missing \'}\''],
    [
      "FROM a\nARG X='open",
      'Dockerfile:2: failed to process "\'open": unexpected end of statement while looking for matching single-quote',
    ],
    ['FROM --platform=${P:=x} a', 'Dockerfile:1: failed to process "${P:=x}": unsupported modifier (:=) in substitution'],

    // HEALTHCHECK
    ['FROM a\nHEALTHCHECK', 'Dockerfile:2: HEALTHCHECK requires at least one argument'],
    ['FROM a\nHEALTHCHECK NONE x', 'Dockerfile:2: HEALTHCHECK NONE takes no arguments'],
    ['FROM a\nHEALTHCHECK CMD', 'Dockerfile:2: Missing command after HEALTHCHECK CMD'],
    ['FROM a\nHEALTHCHECK CMD []', 'Dockerfile:2: Missing command after HEALTHCHECK CMD'],
    ['FROM a\nHEALTHCHECK CONNECT TCP 7000', 'Dockerfile:2: Unknown type "CONNECT" in HEALTHCHECK (try CMD)'],
    ['FROM a\nHEALTHCHECK --interval=5 CMD true', 'Dockerfile:2: time: missing unit in duration "5"'],
    ['FROM a\nHEALTHCHECK --interval=abc CMD true', 'Dockerfile:2: time: invalid duration "abc"'],
    ['FROM a\nHEALTHCHECK --timeout=5x CMD true', 'Dockerfile:2: time: unknown unit "x" in duration "5x"'],
    ['FROM a\nHEALTHCHECK --timeout=.s CMD true', 'Dockerfile:2: time: invalid duration ".s"'],
    ['FROM a\nHEALTHCHECK --timeout=1.s.5 CMD true', 'Dockerfile:2: time: missing unit in duration "1.s.5"'],
    ['FROM a\nHEALTHCHECK --interval=500us CMD true', 'Dockerfile:2: Interval "interval" cannot be less than 1ms'],
    ['FROM a\nHEALTHCHECK --start-period=-1s CMD true', 'Dockerfile:2: Interval "start-period" cannot be less than 1ms'],
    ['FROM a\nHEALTHCHECK --retries=two CMD true', 'Dockerfile:2: strconv.ParseInt: parsing "two": invalid syntax'],
    ['FROM a\nHEALTHCHECK --retries=-1 CMD true', 'Dockerfile:2: --retries cannot be negative (-1)'],
    ['FROM a\nHEALTHCHECK --retries=9999999999 CMD true', 'Dockerfile:2: strconv.ParseInt: parsing "9999999999": value out of range'],
    ['FROM a\nHEALTHCHECK --port=80 CMD true', 'Dockerfile:2: unknown flag: --port'],

    // ONBUILD
    ['FROM a\nONBUILD ONBUILD RUN x', "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"],
    ['FROM a\nONBUILD FROM b', "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"],
    ['FROM a\nONBUILD maintainer me', "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger"],

    // directives (heredoc errors: heredoc.test.ts)
    ['# escape=x\nFROM a', "Dockerfile:1: invalid escape token 'x' does not match ` or \\"],
    ['# escape=\\\n# escape=`\nFROM a', 'Dockerfile:2: only one escape parser directive can be used'],
    ['# syntax=docker/dockerfile:1\n# SYNTAX=docker/dockerfile:1.7\nFROM a', 'Dockerfile:2: only one syntax parser directive can be used'],
    ['# check=skip=all\n# check=error=true\nFROM a', 'Dockerfile:2: only one check parser directive can be used'],
  ];
  test.each(cases)('%j', (text, message) => {
    expect(errorOf(text).message).toBe(message);
  });
});

describe('line numbers', () => {
  test('a multi-line instruction is reported at its first line', () => {
    const text = 'FROM a\nRUN echo one\nCOPY --bogus \\\n  a \\\n  b\n';
    expect(errorOf(text).message).toBe('Dockerfile:3: unknown flag: --bogus');
  });

  test('comments and blank lines are counted', () => {
    const text = '# syntax=docker/dockerfile:1\n\n# a comment\nFROM a\n\n\nENV \\\n  # why\n  K\n';
    expect(errorOf(text).message).toBe('Dockerfile:7: ENV must have two arguments');
  });

  test('the first error wins', () => {
    expect(errorOf('FROM a\nWORKDIR\nUSER\n').message).toBe('Dockerfile:2: WORKDIR requires exactly one argument');
  });
});

describe('what Docker accepts is accepted', () => {
  test.each([
    'FROM a\nRUN echo "<<EOF"',
    'FROM a\nRUN cat <<<"here-string"',
    'FROM a\nRUN ["cat", "<<EOF"]',
    'FROM a\nCMD',
    // Docker groups words by quotes only, so an unquoted ${...} with spaces splits (as in Docker).
    'FROM a\nENV A=${B:-x} C=1',
    'FROM a\nHEALTHCHECK --interval=nonsense NONE',
    'FROM a\nONBUILD NOTANINSTRUCTION x',
    'FROM a\nENV A="${B:?B must be set}"',
    'FROM a\nEXPOSE 80/tcp\nexpose 443',
    'FROM a AS scratchpad\nFROM scratchpad',
  ])('%j', (text) => {
    expect(() => parseDockerfile(text)).not.toThrow();
  });
});

test('an unquoted ${...} holding spaces is split by ENV, as Docker does', () => {
  expect(errorOf('FROM a\nENV A=${B:?B must be set}').message).toBe(
    'Dockerfile:2: Syntax error - can\'t find = in "must". Must be of the form: name=value',
  );
});
