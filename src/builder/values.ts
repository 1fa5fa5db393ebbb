// Instruction arguments that are values with a syntax of their own, checked the way Docker
// checks them once variables are expanded: COPY --chmod, EXPOSE ports, STOPSIGNAL.
import { DockerfileError, type SourceLocation } from '../errors.js';

/** `--chmod=0755`: octal permission bits (BuildKit's non-octal forms are not accepted). */
export function parseChmod(s: string, loc: SourceLocation): number {
  if (!/^[0-7]{3,4}$/.test(s)) throw new DockerfileError(loc, `invalid chmod parameter: ${s}: use an octal mode such as 0755`);
  return parseInt(s, 8);
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
