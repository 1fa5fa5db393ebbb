// Docker's variable substitution: the small shell-like lexer BuildKit runs over Dockerfile words
// (moby/buildkit frontend/dockerfile/shell, `ProcessWord` / `ProcessWords`). It is not a shell:
// there is no command substitution, globbing or arithmetic, only `$V`, `${V}` and the modifiers
// below, plus quote and escape removal.
//
// Which instructions expand, and how (BuildKit's dockerfile2llb):
//   one word each (expandWord)   ENV keys and values, LABEL keys and values, ARG defaults, WORKDIR,
//                                USER, STOPSIGNAL, VOLUME paths, COPY/ADD sources, destination,
//                                --chown, --chmod, --checksum; FROM image and --platform (global
//                                ARGs only). The result is never split: `COPY $FILES /d` with
//                                FILES="a b" copies one source named `a b`.
//   split into words (expandWords) EXPOSE: each port word may expand to several ports.
//   never expanded               RUN, CMD, ENTRYPOINT (the shell does it at run time), SHELL,
//                                HEALTHCHECK, ONBUILD triggers, MAINTAINER, COPY --from.
// Quotes are removed by the same pass that expands (`ENV A="x y"` sets `x y`), which is why the
// parser keeps words exactly as written.
//
// BuildKit runs the same lexer in other modes for here-documents (LexOptions below): to find
// `<<EOF` words on a line and read their delimiters, and to expand COPY/ADD heredoc bodies.

/** Variables visible to a word: build args and ENV in force at that step. */
export type Env = ReadonlyMap<string, string>;

type Lookup = (name: string) => string | undefined;

const EOF = undefined;

/** Go's unicode.IsSpace, which is what the lexer splits words on. */
function isSpace(ch: string): boolean {
  return /^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u.test(ch);
}

/** POSIX special parameters: never set in a Dockerfile, but `$@` etc. still parse as names. */
const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

/** Accumulates the word list for `expandWords`: unquoted expansion results split on spaces. */
class WordList {
  private buf = '';
  private inWord = false;
  private readonly words: string[] = [];

  /** A character that came from unquoted text or an expansion: whitespace separates words. */
  addChar(ch: string): void {
    if (!isSpace(ch)) {
      this.addRaw(ch);
    } else if (this.inWord && this.buf !== '') {
      this.words.push(this.buf);
      this.buf = '';
      this.inWord = false;
    }
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  /** Quoted or escaped text: kept as-is, whitespace included. */
  addRaw(s: string): void {
    this.buf += s;
    this.inWord = true;
  }

  finish(): string[] {
    if (this.buf !== '') this.words.push(this.buf);
    this.buf = '';
    return this.words;
  }
}

interface Processed {
  readonly result: string;
  readonly words: string[];
}

/** BuildKit's shell.Lex switches; all off for ordinary Dockerfile words. */
export interface LexOptions {
  /** Keep quote characters in the result (RawQuotes). */
  readonly rawQuotes?: boolean;
  /** Keep escape characters in the result (RawEscapes). */
  readonly rawEscapes?: boolean;
  /** Leave references to unset variables as written instead of empty (SkipUnsetEnv). */
  readonly skipUnsetEnv?: boolean;
  /** Quotes are ordinary characters (SkipProcessQuotes): how COPY heredoc bodies are expanded. */
  readonly skipProcessQuotes?: boolean;
}

/** What `<<` may be followed by inside one heredoc word (BuildKit's isWhitespace). */
const HEREDOC_SPACE = new Set(['\t', '\r', ' ']);

/** One pass over one word. Code points, not UTF-16 units, as Go's text/scanner reads runes. */
class Lexer {
  private readonly chars: string[];
  private pos = 0;

  constructor(
    word: string,
    private readonly escapeChar: string,
    private readonly lookup: Lookup,
    private readonly options: LexOptions = {},
  ) {
    this.chars = Array.from(word);
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }

  private next(): string | undefined {
    return this.chars[this.pos++];
  }

  /** Reads until `stop` (consumed) or, without one, the end of the word. */
  processUntil(stop: string | undefined, rawEscapes: boolean): Processed {
    let result = '';
    const words = new WordList();
    for (let ch = this.peek(); ch !== EOF; ch = this.peek()) {
      if (stop !== undefined && ch === stop) {
        this.next();
        return { result, words: words.finish() };
      }
      if (ch === '$') {
        const value = this.processDollar();
        result += value;
        words.addString(value);
      } else if ((ch === "'" || ch === '"') && !this.options.skipProcessQuotes) {
        const value = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote(rawEscapes);
        result += value;
        words.addRaw(value);
      } else if (ch === '<') {
        const value = this.processPossibleHeredoc();
        result += value;
        words.addRaw(value);
      } else {
        this.next();
        if (ch === this.escapeChar) {
          if (rawEscapes) {
            words.addRaw(ch);
            result += ch;
          }
          // An escape at the very end of the word is dropped.
          const escaped = this.next();
          if (escaped === EOF) break;
          words.addRaw(escaped);
          result += escaped;
        } else {
          words.addChar(ch);
          result += ch;
        }
      }
    }
    if (stop !== undefined) throw new Error(`unexpected end of statement while looking for matching ${stop}`);
    return { result, words: words.finish() };
  }

  /**
   * `<<` and the blanks after it stay one piece, so that `<< EOF` is a single word when a line
   * is searched for heredocs. The text itself is unchanged.
   */
  private processPossibleHeredoc(): string {
    this.next();
    if (this.peek() !== '<') return '<';
    this.next();
    let result = '<<';
    while (HEREDOC_SPACE.has(this.peek() ?? '')) result += this.next();
    return result;
  }

  /** Everything up to the next `'` is literal; a single quote cannot be escaped inside. */
  private processSingleQuote(): string {
    const quote = this.options.rawQuotes ? "'" : '';
    this.next();
    let result = quote;
    for (;;) {
      const ch = this.next();
      if (ch === EOF) throw new Error('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return result + quote;
      result += ch;
    }
  }

  /** Expands `$`; the escape character only escapes `"`, `$` and itself, else it stays literal. */
  private processDoubleQuote(rawEscapes: boolean): string {
    const quote = this.options.rawQuotes ? '"' : '';
    this.next();
    let result = quote;
    for (;;) {
      const peeked = this.peek();
      if (peeked === EOF) throw new Error('unexpected end of statement while looking for matching double-quote');
      if (peeked === '"') {
        this.next();
        return result + quote;
      }
      if (peeked === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next() as string;
      if (ch === this.escapeChar) {
        if (rawEscapes) result += ch;
        const after = this.peek();
        if (after === EOF) continue;
        if (after === '"' || after === '$' || after === this.escapeChar) ch = this.next() as string;
      }
      result += ch;
    }
  }

  private processDollar(): string {
    this.next();
    const skipUnset = this.options.skipUnsetEnv === true;
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.lookup(name);
      return value ?? (skipUnset ? `$${name}` : '');
    }
    this.next();
    const first = this.peek();
    if (first === EOF) throw new Error("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new Error('syntax error: bad substitution');

    const name = this.processName();
    let modifier = this.next();
    if (modifier === EOF) throw new Error("syntax error: missing '}'");
    if (modifier === '}') return this.lookup(name) ?? (skipUnset ? `\${${name}}` : '');
    if (modifier === '/') return this.processReplace(name);

    let spelled = modifier;
    const nullIsUnset = modifier === ':';
    if (nullIsUnset) {
      modifier = this.next() ?? '';
      spelled += modifier;
    } else if (!'+-?#%'.includes(modifier)) {
      throw new Error(`unsupported modifier (${spelled}) in substitution`);
    }
    // Patterns for # and % keep their escapes: the pattern compiler interprets them.
    const isPattern = modifier === '#' || modifier === '%';
    if (nullIsUnset && isPattern) throw new Error(`unsupported modifier (${spelled}) in substitution`);
    const word = this.processBraced(isPattern, "syntax error: missing '}'");

    const value = this.lookup(name);
    if (value === undefined && skipUnset) return `\${${name}${spelled}${word}}`;
    const unset = value === undefined || (nullIsUnset && value === '');
    switch (modifier) {
      case '-':
        return unset ? word : (value as string);
      case '+':
        return unset ? '' : word;
      case '?':
        if (value === undefined) throw new Error(`${name}: ${word || 'is not allowed to be unset'}`);
        if (unset) throw new Error(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      case '#':
      case '%': {
        // One # or % removes the shortest match, two the longest.
        const greedy = word.startsWith(modifier);
        const pattern = greedy ? word.slice(1) : word;
        return modifier === '#' ? trimPrefix(pattern, value ?? '', greedy) : trimSuffix(pattern, value ?? '', greedy);
      }
      default:
        throw new Error(`unsupported modifier (${spelled}) in substitution`);
    }
  }

  /**
   * `${V/pattern/replacement}` (first match) and `${V//pattern/replacement}` (all matches).
   * The replacement is literal; Go's ReplaceAllString would also read `$1` in it, which BuildKit
   * never documents and no Dockerfile should rely on.
   */
  private processReplace(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    const pattern = this.processBraced(true, "syntax error: missing '/' in ${}", '/');
    const replacement = this.processBraced(true, "syntax error: missing '}'");
    const set = this.lookup(name);
    // As BuildKit writes it back: `${V//a/b}` comes out as `${V/a/b}`.
    if (set === undefined && this.options.skipUnsetEnv) return `\${${name}/${pattern}/${replacement}}`;
    const value = set ?? '';
    const re = patternToRegExp(pattern, true, false, all);
    return value.replace(re, () => replacement);
  }

  /** The word inside `${...}` up to `stop`; running off the end is the `missing` syntax error. */
  private processBraced(rawEscapes: boolean, missing: string, stop = '}'): string {
    try {
      return this.processUntil(stop, rawEscapes).result;
    } catch (err) {
      if (this.peek() === EOF) throw new Error(missing, { cause: err });
      throw err;
    }
  }

  /** A variable name: letters, digits and `_`; or all leading digits; or one special parameter. */
  private processName(): string {
    let name = '';
    for (let ch = this.peek(); ch !== EOF; ch = this.peek()) {
      if (name === '' && /^\p{Nd}$/u.test(ch)) {
        while (this.peek() !== EOF && /^\p{Nd}$/u.test(this.peek() as string)) name += this.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.has(ch)) return this.next() as string;
      if (!/^[\p{L}\p{Nd}_]$/u.test(ch)) break;
      name += this.next();
    }
    return name;
  }
}

/**
 * A shell wildcard pattern (`*`, `?`, `\` escapes; no bracket expressions) as a regular
 * expression. The `\` is literal here whatever the Dockerfile's escape character, as in BuildKit.
 */
function patternToRegExp(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  for (let i = 0; i < chars.length; i++) {
    let ch = chars[i] as string;
    if (ch === '*') {
      out += greedy ? '.*' : '.*?';
      continue;
    }
    if (ch === '?') {
      out += '.';
      continue;
    }
    if (ch === '\\') {
      // `\}` and `\/` only protect the delimiters of ${...}; they are not pattern escapes.
      const after = chars[i + 1];
      if (after === '}' || after === '/') continue;
      if (after !== '*' && after !== '?' && after !== '\\') {
        throw new Error(`invalid pattern (${pattern}) in substitution: invalid escape '\\${after ?? ''}'`);
      }
      out += '\\';
      ch = after;
      i++;
    } else if ('[]{}.+()|^$'.includes(ch)) {
      out += '\\';
    }
    out += ch;
  }
  return new RegExp(out, global ? 'gu' : 'u');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const match = patternToRegExp(pattern, greedy, true).exec(value);
  return match ? value.slice(match.index + match[0].length) : value;
}

/**
 * Regular expressions find the leftmost match, not the shortest rightmost one, so the suffix
 * case reverses both the value and the pattern (keeping `\x` pairs in order) and trims a prefix.
 */
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  const reversed = trimPrefix(reversePattern(pattern), reverse(value), greedy);
  return reverse(reversed);
}

function reverse(s: string): string {
  return Array.from(s).reverse().join('');
}

function reversePattern(pattern: string): string {
  const chars = Array.from(pattern);
  const pieces: string[] = [];
  for (let i = 0; i < chars.length; i++) {
    if (chars[i] === '\\' && i !== chars.length - 1) {
      pieces.push(`\\${chars[i + 1]}`);
      i++;
    } else {
      pieces.push(chars[i] as string);
    }
  }
  return pieces.reverse().join('');
}

function process(word: string, lookup: Lookup, escapeChar: string, options: LexOptions = {}): Processed {
  try {
    return new Lexer(word, escapeChar, lookup, options).processUntil(undefined, options.rawEscapes === true);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`failed to process ${JSON.stringify(word)}: ${reason}`, { cause: err });
  }
}

/**
 * Substitutes variables in one word and removes its quotes and escapes, without splitting it.
 * Throws a plain Error (the caller adds the Dockerfile line) for malformed syntax and for
 * `${V:?msg}` / `${V?msg}` with V empty or unset.
 */
export function expandWord(word: string, env: Env, escapeChar = '\\'): string {
  return process(word, (name) => env.get(name), escapeChar).result;
}

/**
 * Like `expandWord`, then splits on unquoted whitespace (BuildKit's ProcessWords), which only
 * EXPOSE uses: `EXPOSE $PORTS` with PORTS="80 443" declares two ports.
 */
export function expandWords(word: string, env: Env, escapeChar = '\\'): string[] {
  return process(word, (name) => env.get(name), escapeChar).words;
}

/**
 * Throws the error `expandWord` would throw for reasons that do not depend on the environment:
 * unterminated quotes or braces, unknown modifiers, invalid patterns. The parser calls it on
 * every word the builder will expand, so that those mistakes are reported before any build step.
 */
export function checkWordSyntax(word: string, escapeChar = '\\'): void {
  // With every variable set and non-empty, only syntax can fail (`${V:?}` cannot).
  process(word, () => 'x', escapeChar);
}

/** The variable names a word refers to (after checking its syntax). */
export function referencedVariables(word: string, escapeChar = '\\'): string[] {
  const names = new Set<string>();
  process(
    word,
    (name) => {
      names.add(name);
      return 'x';
    },
    escapeChar,
  );
  return [...names];
}

/**
 * BuildKit's ProcessWords with the given switches and no variable set: how a line is cut into
 * words when it is searched for heredocs (parser.heredocsFromLine) and how a heredoc's delimiter
 * is read. The escape character is always a backslash there, whatever `# escape=` says.
 */
export function lexWords(text: string, options: LexOptions): string[] {
  return process(text, () => undefined, '\\', options).words;
}

/**
 * Expands a COPY/ADD heredoc body whose delimiter was not quoted, as BuildKit does: `$V` and
 * `${V...}` are substituted and the escape character (always a backslash, whatever `# escape=` says)
 * escapes the next character, but quotes are plain text (`'$V'` is expanded too). Unset
 * variables become empty. RUN heredoc bodies are never expanded here: the shell does that.
 */
export function expandHeredocBody(body: string, env: Env): string {
  return process(body, (name) => env.get(name), '\\', { skipProcessQuotes: true }).result;
}

/** Throws the error `expandHeredocBody` would throw whatever the environment (see checkWordSyntax). */
export function checkHeredocBodySyntax(body: string): void {
  process(body, () => 'x', '\\', { skipProcessQuotes: true });
}
