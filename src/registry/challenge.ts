// WWW-Authenticate challenges (RFC 7235): `Bearer realm="https://auth.example/token",
// service="registry.example",scope="repository:app:pull"`, possibly several in one header or
// over several headers. Parameter values are tokens or quoted strings with backslash escapes.

export interface Challenge {
  /** Lower case: `basic`, `bearer`. */
  readonly scheme: string;
  /** Parameter names in lower case. */
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

export function parseChallenges(headers: readonly string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const header of headers) out.push(...parseHeader(header));
  return out;
}

function parseHeader(header: string): Challenge[] {
  const out: { scheme: string; params: Record<string, string> }[] = [];
  let s = header;
  const skip = (re: RegExp) => {
    s = s.replace(re, '');
  };
  while (true) {
    skip(/^[\s,]+/);
    if (s === '') break;
    const token = TOKEN_RE.exec(s)?.[0];
    if (!token) break; // not a challenge we can read: stop rather than guess
    s = s.slice(token.length);
    const afterSpace = s.replace(/^\s+/, '');
    if (afterSpace.startsWith('=') && out.length > 0) {
      // `name=value`: a parameter of the current challenge.
      s = afterSpace.slice(1).replace(/^\s+/, '');
      out[out.length - 1]!.params[token.toLowerCase()] = readValue();
    } else {
      out.push({ scheme: token.toLowerCase(), params: {} });
    }
  }
  return out;

  function readValue(): string {
    if (!s.startsWith('"')) {
      // Strictly a token; some servers leave URLs unquoted, so read up to the next separator.
      const v = /^[^,\s]*/.exec(s)![0];
      s = s.slice(v.length);
      return v;
    }
    let v = '';
    let i = 1;
    for (; i < s.length && s[i] !== '"'; i++) {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      v += s[i];
    }
    s = s.slice(i + 1);
    return v;
  }
}
