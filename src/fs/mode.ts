// COPY/ADD --chmod: an octal mode (`0755`) or, since BuildKit's Dockerfile 1.14, a symbolic one
// as chmod(1) writes it (`u+x,g-w`, `a=rX`, `go=u`). BuildKit parses the symbolic form with
// tonistiigi/dchapes-mode, a Go translation of BSD's setmode(3), and applies it to each copied
// entry's own mode with no umask; this is the same algorithm (parse into a list of bit
// commands, then run them over a mode), so every edge case (`X` on directories and on files
// that already have an execute bit, `s`/`t` only for some `who`, `=` with nothing after it
// clearing bits) comes out as BuildKit's.
//
// Only the permission bits, setuid, setgid and sticky (07777) are ever changed.

const IS_UID = 0o4000;
const IS_GID = 0o2000;
const IS_TXT = 0o1000;
const RWXU = 0o700;
const RWXG = 0o070;
const RWXO = 0o007;
const R_ALL = 0o444;
const W_ALL = 0o222;
const X_ALL = 0o111;
const STANDARD = IS_UID | IS_GID | RWXU | RWXG | RWXO;

/** A parsed --chmod: how it was written, and what it does to one entry's mode. */
export interface ModeChange {
  /** As written (after variable expansion). */
  readonly text: string;
  /** The octal form's value; undefined for a symbolic mode. */
  readonly octal: number | undefined;
  /** The new permission bits (07777) of an entry whose bits are `perm`. */
  apply(perm: number, isDir: boolean): number;
}

export class ModeSyntaxError extends Error {}

/**
 * dockerfile2llb's --chmod check: an octal number up to 07777, else a symbolic mode. A value
 * that starts like a number but is not a valid octal one gets BuildKit's "octal" message.
 */
export function parseModeChange(text: string): ModeChange {
  if (/^[0-9]/.test(text)) {
    if (!/^[0-7]+$/.test(text) || parseInt(text, 8) > 0o7777) {
      throw new ModeSyntaxError(`invalid chmod parameter: '${text}'. it should be octal string and between 0 and 07777`);
    }
    const octal = parseInt(text, 8);
    return { text, octal, apply: () => octal };
  }
  const cmds = parseSymbolic(text);
  if (!cmds) throw new ModeSyntaxError(`invalid chmod parameter: '${text}': invalid syntax`);
  return { text, octal: undefined, apply: (perm, isDir) => applyCommands(cmds, perm & 0o7777, isDir) };
}

interface BitCommand {
  /** '+', '-', 'X' (add execute if a directory or already executable), or 'u'/'g'/'o' (copy that class's bits). */
  readonly cmd: string;
  readonly bits: number;
  /** For u/g/o: clear and/or set, and into which classes. */
  readonly clear?: boolean;
  readonly set?: boolean;
  readonly classes?: { u: boolean; g: boolean; o: boolean };
}

/** setmode's parser; undefined for a syntax error. The umask is 0, as BuildKit passes it. */
function parseSymbolic(input: string): BitCommand[] | undefined {
  const cmds: BitCommand[] = [];
  const mask = 0xffff;
  let s = input;
  if (s === '') return undefined;
  for (;;) {
    let who = 0;
    for (;;) {
      if (s.length === 0) return undefined;
      const c = s[0];
      if (c === 'a') who |= STANDARD;
      else if (c === 'u') who |= IS_UID | RWXU;
      else if (c === 'g') who |= IS_GID | RWXG;
      else if (c === 'o') who |= RWXO;
      else break;
      s = s.slice(1);
    }
    let equalOpDone = false;
    // One or more operators for this `who`: `u+x-w` is `u+x,u-w`.
    for (;;) {
      const op = s[0];
      s = s.slice(1);
      if (op !== '+' && op !== '-' && op !== '=') return undefined;
      if (op === '=') equalOpDone = false;
      who &= ~IS_TXT;
      let perm = 0;
      let permX = 0;
      for (; ; s = s.slice(1)) {
        const b = s[0] ?? '';
        if (b === 'r') perm |= R_ALL;
        else if (b === 's') {
          if (who === 0 || (who & ~RWXO) !== 0) perm |= IS_UID | IS_GID;
        } else if (b === 't') {
          if (who === 0 || (who & ~RWXO) !== 0) {
            who |= IS_TXT;
            perm |= IS_TXT;
          }
        } else if (b === 'w') perm |= W_ALL;
        else if (b === 'X') {
          if (op === '+') permX = X_ALL;
        } else if (b === 'x') perm |= X_ALL;
        else if (b === 'u' || b === 'g' || b === 'o') {
          if (perm !== 0) {
            addCommand(cmds, op, who, perm, mask);
            perm = 0;
          }
          if (op === '=') equalOpDone = true;
          if (permX !== 0) {
            addCommand(cmds, 'X', who, permX, mask);
            permX = 0;
          }
          addCopy(cmds, b, who, op, mask);
        } else {
          if (perm !== 0 || (op === '=' && !equalOpDone)) {
            if (op === '=') equalOpDone = true;
            addCommand(cmds, op, who, perm, mask);
          }
          if (permX !== 0) addCommand(cmds, 'X', who, permX, mask);
          break;
        }
      }
      if (s === '' || s[0] === ',') break;
    }
    if (s === '') return cmds;
    s = s.slice(1);
  }
}

function addCommand(cmds: BitCommand[], op: string, who: number, oparg: number, mask: number): void {
  if (op === '=') {
    // `=` is a clear of everything `who` names, then a `+`.
    cmds.push({ cmd: '-', bits: who !== 0 ? who : STANDARD });
    op = '+';
  }
  cmds.push({ cmd: op, bits: who !== 0 ? who & oparg : mask & oparg });
}

function addCopy(cmds: BitCommand[], from: string, who: number, op: string, mask: number): void {
  const classes = who !== 0 ? { u: (who & 0o400) !== 0, g: (who & 0o040) !== 0, o: (who & 0o004) !== 0 } : { u: true, g: true, o: true };
  cmds.push({
    cmd: from,
    bits: who !== 0 ? 0xffff : mask,
    classes,
    clear: op === '-' || op === '=',
    set: op === '+' || op === '=',
  });
}

function applyCommands(cmds: readonly BitCommand[], old: number, isDir: boolean): number {
  let mode = old;
  for (const c of cmds) {
    switch (c.cmd) {
      case '+':
        mode |= c.bits;
        break;
      case '-':
        mode &= ~c.bits;
        break;
      case 'X':
        if ((old & X_ALL) !== 0 || isDir) mode |= c.bits;
        break;
      default: {
        // u, g, o: that class's current bits, shifted into the classes named.
        const value = c.cmd === 'u' ? (mode & RWXU) >> 6 : c.cmd === 'g' ? (mode & RWXG) >> 3 : mode & RWXO;
        const cls = c.classes ?? { u: false, g: false, o: false };
        if (c.clear) {
          const clr = c.set ? RWXO : value;
          if (cls.u) mode &= ~((clr << 6) & c.bits);
          if (cls.g) mode &= ~((clr << 3) & c.bits);
          if (cls.o) mode &= ~(clr & c.bits);
        }
        if (c.set) {
          if (cls.u) mode |= (value << 6) & c.bits;
          if (cls.g) mode |= (value << 3) & c.bits;
          if (cls.o) mode |= value & c.bits;
        }
      }
    }
  }
  return mode & 0o7777;
}
