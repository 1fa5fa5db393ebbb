// Go's filepath.Match, which is how BuildKit matches wildcards in COPY/ADD sources
// (fsutil's ResolveWildcards). Only `*`, `?`, `[...]` and `\` are special: `**` is just two
// `*`, and no wildcard crosses a `/` (a negated class aside, as in Go). A malformed pattern
// matches nothing: BuildKit drops filepath.Match's ErrBadPattern.

/** True when a path component holds `*`, `?` or `[` that is not escaped by `\`. */
export function hasWildcards(component: string): boolean {
  for (let i = 0; i < component.length; i++) {
    const c = component[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

/** Compile a pattern to a whole-string matcher, or undefined when Go would say ErrBadPattern. */
export function compileMatch(pattern: string): ((name: string) => boolean) | undefined {
  const source = toRegExpSource(pattern);
  if (source === undefined) return undefined;
  const re = new RegExp(`^${source}$`, 'u');
  return (name) => re.test(name);
}

function toRegExpSource(pattern: string): string | undefined {
  const chars = Array.from(pattern); // by code point, as Go matches by rune
  let out = '';
  let i = 0;
  while (i < chars.length) {
    const c = chars[i++]!;
    if (c === '*') {
      out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '\\') {
      if (i >= chars.length) return undefined;
      out += escapeLiteral(chars[i++]!);
    } else if (c === '[') {
      const cls = readClass(chars, i);
      if (!cls) return undefined;
      out += cls.source;
      i = cls.next;
    } else {
      out += escapeLiteral(c);
    }
  }
  return out;
}

/** A `[...]` class starting after its `[`: `^` negates; `-` and `]` must be escaped inside. */
function readClass(chars: string[], start: number): { source: string; next: number } | undefined {
  let i = start;
  let negated = false;
  if (chars[i] === '^') {
    negated = true;
    i++;
  }
  let body = '';
  let ranges = 0;
  for (;;) {
    if (chars[i] === ']' && ranges > 0) {
      i++;
      break;
    }
    const lo = readClassChar(chars, i);
    if (!lo) return undefined;
    i = lo.next;
    let hi = lo;
    if (chars[i] === '-') {
      const h = readClassChar(chars, i + 1);
      if (!h) return undefined;
      hi = h;
      i = h.next;
    }
    // A reversed range is legal in Go and matches nothing; a RegExp would reject it.
    if (lo.char.codePointAt(0)! <= hi.char.codePointAt(0)!) {
      body += hi === lo ? escapeClassChar(lo.char) : `${escapeClassChar(lo.char)}-${escapeClassChar(hi.char)}`;
    }
    ranges++;
  }
  if (body === '') return { source: negated ? '[^]' : '[]', next: i };
  return { source: `[${negated ? '^' : ''}${body}]`, next: i };
}

/** One class character, Go's getEsc: also fails when the class is not closed afterwards. */
function readClassChar(chars: string[], i: number): { char: string; next: number } | undefined {
  let c = chars[i];
  if (c === undefined || c === '-' || c === ']') return undefined;
  if (c === '\\') {
    c = chars[++i];
    if (c === undefined) return undefined;
  }
  if (i + 1 >= chars.length) return undefined;
  return { char: c, next: i + 1 };
}

// With the 'u' flag only syntax characters (and '/') may be escaped outside a class.
function escapeLiteral(c: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) ? `\\${c}` : c;
}

function escapeClassChar(c: string): string {
  return /[\\\]^[-]/.test(c) ? `\\${c}` : c;
}
