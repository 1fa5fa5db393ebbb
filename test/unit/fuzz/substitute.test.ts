// Property-based tests of Docker's variable substitution (expandWord): on plain words it agrees
// with a small reference model written from the Dockerfile reference; on any word it returns a
// string or throws the substitution's own "failed to process" error, never a crash.
import fc from 'fast-check';
import { checkWordSyntax, expandWord, expandWords } from '../../../src/parse/index.js';
import { referencedVariables } from '../../../src/parse/substitute.js';
import { fuzzParameters } from '../../fuzz/settings.js';

type Env = Map<string, string>;
const NAMES = ['A', 'B', 'long_name', '_x1'];

/** A piece of a word and its meaning in the reference model. */
interface Piece {
  readonly text: string;
  readonly expected: (env: Env) => string;
}

// Literal text that means itself: no $, quotes, escape, braces or `<` (heredoc words).
const plain = fc.string({ unit: fc.constantFrom(...'abcXYZ019 ./_-:=,@+%#'.split('')), maxLength: 8 });
const name = fc.constantFrom(...NAMES);

const literal = plain.map((s): Piece => ({ text: s, expected: () => s }));
const braced = name.map((n): Piece => ({ text: `\${${n}}`, expected: (env) => env.get(n) ?? '' }));
// $NAME is only unambiguous when no name character follows: the model appends a '/'.
const bare = name.map((n): Piece => ({ text: `$${n}/`, expected: (env) => `${env.get(n) ?? ''}/` }));
// Defaults and alternatives (the word after the modifier is literal text here).
const modifier = fc
  .tuple(
    name,
    fc.constantFrom(':-', '-', ':+', '+'),
    plain.filter((s) => !s.includes('}')),
  )
  .map(([n, op, w]): Piece => ({
    text: `\${${n}${op}${w}}`,
    expected: (env) => {
      const v = env.get(n);
      switch (op) {
        case ':-':
          return v === undefined || v === '' ? w : v;
        case '-':
          return v === undefined ? w : v;
        case ':+':
          return v === undefined || v === '' ? '' : w;
        default:
          return v === undefined ? '' : w;
      }
    },
  }));
// Single quotes keep everything literally; double quotes still expand.
const single = fc
  .string({ unit: fc.constantFrom(...'ab $\\{}"'.split('')), maxLength: 8 })
  .map((s): Piece => ({ text: `'${s}'`, expected: () => s }));
const double = fc.tuple(plain, name).map(([s, n]): Piece => ({ text: `"${s}\${${n}}"`, expected: (env) => s + (env.get(n) ?? '') }));
// An escaped special character is itself.
const escaped = fc.constantFrom('$', '"', "'", '\\', '{').map((c): Piece => ({ text: `\\${c}`, expected: () => c }));

const piece = fc.oneof(literal, braced, bare, modifier, single, double, escaped);
const env = fc.dictionary(name, fc.string({ maxLength: 6 }), { maxKeys: NAMES.length }).map((o) => new Map(Object.entries(o)));

describe('expandWord under fuzzing', () => {
  test('plain words: the same result as the reference model, whatever the values hold', () => {
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), env, (pieces, e) => {
        const word = pieces.map((p) => p.text).join('');
        expect(expandWord(word, e)).toBe(pieces.map((p) => p.expected(e)).join(''));
      }),
      fuzzParameters(3000),
    );
  });

  test('a value is never expanded again (no recursion, whatever it holds)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (value) => {
        // A variable whose value refers to itself, or to another one.
        const e = new Map([
          ['A', value],
          ['B', '$A${A}'],
        ]);
        expect(expandWord('${A}', e)).toBe(value);
        expect(expandWord('$B', e)).toBe('$A${A}');
      }),
      fuzzParameters(1000),
    );
  });

  test('any word: a string, or the substitution’s own error; syntax checked once holds for every environment', () => {
    const wordChars = fc.constantFrom(...'$ {}:-+?#%/\\"\'`<ab*\n'.split(''), 'A', 'B');
    const anyWord = fc.oneof(fc.string({ unit: wordChars, maxLength: 24 }), fc.string({ unit: 'binary', maxLength: 24 }));
    fc.assert(
      fc.property(anyWord, env, fc.constantFrom('\\', '`'), (word, e, escape) => {
        let syntaxOk = true;
        try {
          checkWordSyntax(word, escape);
        } catch (err) {
          syntaxOk = false;
          expect(err).toBeInstanceOf(Error);
          expect((err as Error).message).toMatch(/^failed to process /);
        }
        for (const f of [expandWord, expandWords]) {
          try {
            f(word, e, escape);
          } catch (err) {
            expect((err as Error).message).toMatch(/^failed to process /);
            // With the syntax right, only `${V?msg}` / `${V:?msg}` on an unset or empty V may fail.
            if (syntaxOk) expect(word).toContain('?');
          }
        }
        if (syntaxOk) {
          // With every variable it names set and non-empty, a word of good syntax always expands.
          const full = new Map(referencedVariables(word, escape).map((n) => [n, 'v']));
          expect(() => expandWord(word, full, escape)).not.toThrow();
        }
      }),
      fuzzParameters(5000),
    );
  });
});
