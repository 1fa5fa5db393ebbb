// Values with a syntax of their own in instructions, checked the way Docker checks them once
// variables are expanded (COPY --chmod and --link --chown, EXPOSE ports, STOPSIGNAL), and the
// expansion of words at a step's line. instructions.ts gives them their meaning.
import { DockerfileError, type SourceLocation } from '../errors.js';
import { ModeSyntaxError, parseModeChange, type ModeChange } from '../fs/mode.js';
import { expandWord, type Env } from '../parse/index.js';
import type { Word } from '../parse/plan.js';

/** Substitution errors are errors at the step's line. */
export function atLine<T>(loc: SourceLocation, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof DockerfileError) throw err;
    throw new DockerfileError(loc, (err as Error).message, { cause: err });
  }
}

/** Expands a word with `env`; its errors are errors at the step's line. */
export function expander(env: Env, escapeChar: string, loc: SourceLocation): (w: Word) => string {
  return (w) => atLine(loc, () => expandWord(w, env, escapeChar));
}

/**
 * --chown with --link: the files are copied into an empty directory, where no /etc/passwd
 * names a user, so only numeric IDs (and `root`, which llb.WithUser reads as 0) can work.
 * BuildKit fails such a build in its solver ("invalid user index: -1"); tsbuild says why, at
 * the line (as BuildKit's frontend does since moby/buildkit#7134).
 */
export function linkChown(chown: string, kind: string, loc: SourceLocation): string {
  const parts = chown.split(':');
  for (const p of parts) {
    if (p !== '' && p !== 'root' && !/^\d+$/.test(p)) {
      throw new DockerfileError(
        loc,
        `${kind} --link --chown=${chown}: a user or group name cannot be looked up with --link (the layer is made without the stage's /etc/passwd and /etc/group); use numeric IDs`,
      );
    }
  }
  return parts.map((p) => (p === 'root' ? '0' : p)).join(':');
}

/** `--chmod=0755` or `--chmod=u+x,g-w` (BuildKit's Dockerfile 1.14 symbolic modes). */
export function parseChmod(s: string, loc: SourceLocation): ModeChange {
  try {
    return parseModeChange(s);
  } catch (err) {
    if (err instanceof ModeSyntaxError) throw new DockerfileError(loc, err.message);
    throw err;
  }
}

/** `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, ... as Docker records them. */
export function expandPorts(spec: string, loc: SourceLocation): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  if (!m) throw new DockerfileError(loc, `invalid containerPort: ${spec}`);
  const lo = Number(m[1]);
  const hi = m[2] !== undefined ? Number(m[2]) : lo;
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (lo < 1 || hi > 65535 || hi < lo) throw new DockerfileError(loc, `invalid port range: ${spec}`);
  const out: string[] = [];
  for (let p = lo; p <= hi; p++) out.push(`${p}/${proto}`);
  return out;
}

const SIGNALS = new Set(
  'HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM STKFLT CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO PWR SYS'.split(
    ' ',
  ),
);

/** A signal as STOPSIGNAL takes it: a number 1-64, or a name with or without SIG (RTMIN+n too). */
export function isSignal(s: string): boolean {
  if (/^\d+$/.test(s)) return Number(s) > 0 && Number(s) < 65;
  const name = s.toUpperCase().replace(/^SIG/, '');
  return SIGNALS.has(name) || /^RTMIN(\+\d+)?$|^RTMAX(-\d+)?$/.test(name);
}
