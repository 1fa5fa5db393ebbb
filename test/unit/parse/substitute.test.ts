// Expected values are Docker's: the vectors in moby/buildkit frontend/dockerfile/shell
// (envVarTest, wordsTest, lex_test.go), restated as tables.
import { checkWordSyntax, expandWord, expandWords, type Env } from '../../../src/parse/index.js';

const ERROR = Symbol('error');

function env(values: Record<string, string>): Env {
  return new Map(Object.entries(values));
}

describe('expandWord: quotes, escapes and plain variables', () => {
  const vars = env({ PWD: '/home', SHELL: 'bash', KOREAN: '한국어', NULL: '' });
  const cases: ReadonlyArray<readonly [string, string | typeof ERROR]> = [
    ['hello', 'hello'],
    ["he'll'o", 'hello'],
    ["he'llo", ERROR],
    ["he\\'llo", "he'llo"],
    ["he\\\\'llo", ERROR],
    ['abc\\tdef', 'abctdef'],
    ['"abc\\tdef"', 'abc\\tdef'],
    ['"abc\\\\tdef"', 'abc\\tdef'],
    ["'abc\\tdef'", 'abc\\tdef'],
    ['hello\\', 'hello'],
    ['hello\\\\', 'hello\\'],
    ['"hello', ERROR],
    ['"hello\\"', ERROR],
    ['"hel\'lo"', "hel'lo"],
    ["'hello", ERROR],
    ["'hello\\'", 'hello\\'],
    ["'hello\\\\there'", 'hello\\\\there'],
    ['"\'\'"', "''"],
    ['$.', '$.'],
    ['he$1x', 'hex'],
    ['he$.x', 'he$.x'],
    ['he$pwd.', 'he.'],
    ['he$PWD', 'he/home'],
    ['he\\$PWD', 'he$PWD'],
    ['he\\\\$PWD', 'he\\/home'],
    ['"he\\$PWD"', 'he$PWD'],
    ['"he\\\\$PWD"', 'he\\/home'],
    ['\\${}', '${}'],
    ['he\\${}xx', 'he${}xx'],
    ['${}', ERROR],
    ['he${}xx', ERROR],
    ['he${hi}xx', 'hexx'],
    ['he${PWD}', 'he/home'],
    ['he${.}', ERROR],
    ["'he${XX}'", 'he${XX}'],
    ['"he${PWD}"', 'he/home'],
    ['"he\'$PWD\'"', "he'/home'"],
    ["'$PWD'", '$PWD'],
    ["'\\$PWD'", '\\$PWD'],
    ['he${PWD', ERROR],
    ['안녕$KOREAN', '안녕한국어'],
    ["안'녕'하세요", '안녕하세요'],
    ['${aaa}}', '}'],
    ['${{aaa}', ERROR],
    ['${aaa', ERROR],
    ['${:}', ERROR],
    ['${:-bbb}', ERROR],
  ];
  test.each(cases)('%s', (word, expected) => {
    if (expected === ERROR) expect(() => expandWord(word, vars)).toThrow();
    else expect(expandWord(word, vars)).toBe(expected);
  });
});

describe('expandWord: ${V:-w} ${V-w} ${V:+w} ${V+w} ${V:?m} ${V?m}', () => {
  const vars = env({ PWD: '/home', SHELL: 'bash', NULL: '' });
  const cases: ReadonlyArray<readonly [string, string | typeof ERROR]> = [
    ['he${XXX:-000}xx', 'he000xx'],
    ['he${PWD:-000}xx', 'he/homexx'],
    ['he${XXX:-$PWD}xx', 'he/homexx'],
    ['he${XXX:-${PWD:-yyy}}xx', 'he/homexx'],
    ['he${XXX:-${YYY:-yyy}}xx', 'heyyyxx'],
    ['he${XXX:+${PWD}}xx', 'hexx'],
    ['he${PWD:+${XXX}}xx', 'hexx'],
    ['he${PWD:+${SHELL}}xx', 'hebashxx'],
    ['he${PWD:+${PWD}:}xx', 'he/home:xx'],
    ['he${XXX:-\\$PWD:}xx', 'he$PWD:xx'],
    ['he${XXX:-\\${PWD}z}xx', 'he${PWDz}xx'],
    ['${aaa:-bbb}}', 'bbb}'],
    ['${aaa:-bbb {foo}', 'bbb {foo'],
    ['${aaa:-bbb ${foo}', ERROR],
    ['${aaa:-bbb', ERROR],
    ['${NULL-dflt}|${NULL:-dflt}', '|dflt'],
    ['${NULL+alt}|${NULL:+alt}', 'alt|'],
    ['he${XXX:YYY}', ERROR],
    ['he${PWD:=000}xx', ERROR],
    ['he${PWD?}', 'he/home'],
    ['he${PWD:?}', 'he/home'],
    ['he${NULL?}', 'he'],
    ['he${NULL:?}', ERROR],
    ['he${XXX?}', ERROR],
    ['he${XXX:?}', ERROR],
    ['${1:-bbb}${999}aaa', 'bbbaaa'],
    ['$@@@', '@@'],
    ['${#:-bbb}${$}', 'bbb'],
  ];
  test.each(cases)('%s', (word, expected) => {
    if (expected === ERROR) expect(() => expandWord(word, vars)).toThrow();
    else expect(expandWord(word, vars)).toBe(expected);
  });
});

describe('expandWord: ${V#p} ${V##p} ${V%p} ${V%%p} ${V/p/r} ${V//p/r}', () => {
  const cases: ReadonlyArray<readonly [string, Record<string, string>, string | typeof ERROR]> = [
    ['${FOO#*x*y}', { FOO: 'xxyy' }, 'y'],
    ['${FOO#*}', { FOO: 'xxyy' }, 'xxyy'],
    ['${FOO##*x}', { FOO: 'xxyy' }, 'yy'],
    ['${FOO#$BAR}', { FOO: 'xxyy', BAR: 'x' }, 'xyy'],
    ['${FOO#?\\?}', { FOO: '???y' }, '?y'],
    ['${FOO#()[]{\\}^$.\\*\\?|\\\\}', { FOO: '()[]{}^$.*?|\\x' }, 'x'],
    ['${FOO%%\\**}', { FOO: 'xx**' }, 'xx'],
    ['${FOO%%\\**\\*}', { FOO: 'a***yy*' }, 'a'],
    ['${ABC:-.}${FOO%x}${ABC:-.}', { FOO: 'xxyy' }, '.xxyy.'],
    ['${VERSION#v}', { VERSION: 'v1.2.3' }, '1.2.3'],
    ['${FILE%.*}|${FILE%%.*}', { FILE: 'a.tar.gz' }, 'a.tar|a'],
    ['${FOO:#}', {}, ERROR],
    ['${FOO:%%}', {}, ERROR],
    ['${FOO#\\x}', { FOO: 'x' }, ERROR],
    ['${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}', { FOO: '/foo*/*/*.txt', NEEDLE: '\\*/' }, '/foo.*/*.txt - /foo..*.txt'],
    ['${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}', { FOO: '/tmp/tmp/bar.txt', NEEDLE: '/tmp' }, '/tmp/bar.txt - /bar.txt'],
    ['${FOO/$N/$R} - ${FOO//$N/$R}', { FOO: '/a/foo/b/c.txt', N: '/?/', R: '/' }, '/foo/b/c.txt - /foo/c.txt'],
    ['${FOO//\\//\\/}', { FOO: '/tmp/foo.txt' }, '\\/tmp\\/foo.txt'],
    ['${FOO/$BAR/ww}', { FOO: 'xxyy', BAR: '' }, 'wwxxyy'],
    ['${FOO///}', { FOO: 'xxyy' }, 'xxyy'],
    ['${FOO//ww}', { FOO: 'xxyy' }, ERROR],
    ['${FOO//}', { FOO: 'xxyy' }, ERROR],
  ];
  test.each(cases)('%s with %j', (word, values, expected) => {
    if (expected === ERROR) expect(() => expandWord(word, env(values))).toThrow();
    else expect(expandWord(word, env(values))).toBe(expected);
  });
});

describe('expandWord: errors a user reads', () => {
  test.each([
    ['${V:?must be set}', {}, 'failed to process "${V:?must be set}": V: must be set'],
    ['${V?}', {}, 'failed to process "${V?}": V: is not allowed to be unset'],
    ['${V:?}', { V: '' }, 'failed to process "${V:?}": V: is not allowed to be empty'],
    ['${V:?message here$ARG}', { ARG: 'x' }, 'failed to process "${V:?message here$ARG}": V: message herex'],
    ['${V', {}, 'failed to process "${V": syntax error: missing \'}\''],
    ['${V:&x}', {}, 'failed to process "${V:&x}": unsupported modifier (:&) in substitution'],
    ['${}', {}, 'failed to process "${}": syntax error: bad substitution'],
    ["a'b", {}, 'failed to process "a\'b": unexpected end of statement while looking for matching single-quote'],
  ])('%s', (word, values, message) => {
    expect(() => expandWord(word, env(values))).toThrow(message);
  });
});

describe('expandWord with the backtick escape character', () => {
  const vars = env({ V: 'v' });
  test.each([
    ['a`$V', 'a$V'],
    ['"a`"b"', 'a"b'],
    ['C:\\path\\$V', 'C:\\path\\v'],
    ['"C:\\dir"', 'C:\\dir'],
    ['``', '`'],
  ])('%s', (word, expected) => {
    expect(expandWord(word, vars, '`')).toBe(expected);
  });
});

describe('expandWords: splitting on unquoted whitespace after expansion', () => {
  const vars = env({ hi: 'hi', space: 'abc  def', leading: '  ab c', trailing: 'ab c   ' });
  test.each([
    ['hello', ['hello']],
    ['hello${hi}bye', ['hellohibye']],
    ['hello${space}bye', ['helloabc', 'defbye']],
    ['hello"${space}"bye', ['helloabc  defbye']],
    ['hello "${space}"bye', ['hello', 'abc  defbye']],
    ['hello${leading}def', ['hello', 'ab', 'cdef']],
    ['hello"${leading}" def', ['hello  ab c', 'def']],
    ['hello${trailing}d', ['helloab', 'c', 'd']],
    ['hel"lo${trailing}"', ['helloab c   ']],
    ['hello" there  "', ['hello there  ']],
    ['hello there     ', ['hello', 'there']],
    ['hello\\ there', ['hello there']],
    ['hello\\" there', ['hello"', 'there']],
    ["hello'\\\\there'", ['hello\\\\there']],
    ["hello'$there'", ['hello$there']],
    ['""', []],
  ])('%s', (word, expected) => {
    expect(expandWords(word, vars)).toEqual(expected);
  });

  test('an unterminated quote is an error', () => {
    expect(() => expandWords('hello" there', vars)).toThrow('matching double-quote');
  });
});

describe('checkWordSyntax', () => {
  test.each(['plain', '$V ${V} ${V:-x} ${V:?must be set} ${V?} ${V#*/} ${V//a/b}', "'$'", '\\${'])(
    'accepts %s whatever the environment',
    (word) => {
      expect(() => checkWordSyntax(word)).not.toThrow();
    },
  );

  test.each([
    ['${V', "syntax error: missing '}'"],
    ['${V:&x}', 'unsupported modifier (:&) in substitution'],
    ['${V:-"x}', "syntax error: missing '}'"],
    ['"open', 'matching double-quote'],
    ['${V#\\q}', "invalid escape '\\q'"],
  ])('rejects %s', (word, message) => {
    expect(() => checkWordSyntax(word)).toThrow(message);
  });
});
