// What reaches the terminal from outside: Dockerfile text, image references, file names,
// registry answers. A control character there could move the cursor, clear the screen, retitle
// the window or hide text (ANSI and OSC sequences, C1 codes, bidirectional overrides); each is
// shown escaped instead (`\u001b`, `\u202e`: escapes JSON reads too, so JSON output stays JSON). And one enormous word (a 500 kB
// path in an error) is cut, so that an error stays a line a person can read. RUN steps' own
// output is passed through untouched, as docker build passes it.

/** C0 controls, DEL, C1 controls, and the Unicode format characters that reorder or hide text. */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const UNSAFE_IN_LINE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escape(c: string): string {
  const code = c.charCodeAt(0);
  if (c === '\n') return '\\n';
  if (c === '\t') return '\\t';
  if (c === '\r') return '\\r';
  return `\\u${code.toString(16).padStart(4, '0')}`;
}

/** Longest word a message shows whole; a longer one keeps its start and end. */
const MAX_WORD = 256;

/** A block of text for the terminal: its lines kept, every other control character escaped. */
export function forTerminal(text: string): string {
  return text.replace(UNSAFE, escape);
}

/** One line of a message: control characters (newlines too) escaped, enormous words cut. */
export function oneLine(text: string): string {
  return cutLongWords(text.replace(UNSAFE_IN_LINE, escape));
}

function cutLongWords(text: string): string {
  return text.replace(new RegExp(`\\S{${MAX_WORD + 1},}`, 'g'), (w) => `${w.slice(0, 160)}…[${w.length - 200} characters]…${w.slice(-40)}`);
}
