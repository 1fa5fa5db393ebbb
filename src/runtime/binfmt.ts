// Can this machine run another architecture's programs? A RUN step for a foreign platform execs
// that platform's /bin/sh inside the step's root; the kernel runs it only through a binfmt_misc
// handler (QEMU user emulation, Debian's qemu-user-static), and only inside a new root if the
// handler has the F (fix-binary) flag: the kernel then opens the interpreter when the handler is
// registered, so the interpreter's path need not exist in the image (nor be reachable from a
// user namespace's mounts, which is what rootless builds need). Without this check the step
// fails with "exec format error" or "no such file or directory", naming neither the cause nor
// the remedy.
//
// A handler is found as the kernel finds it: by matching its magic and mask against the first
// bytes of an ELF executable of the architecture (an ELF header made here), so a handler counts
// whatever it is named (Debian's qemu-aarch64, binfmt-support's, tonistiigi/binfmt's).
// The file format is the kernel's Documentation/admin-guide/binfmt-misc.rst.
//
// Read synchronously: a handful of files under /proc of a few hundred bytes each, read once per
// platform of a build while its plan is checked (a synchronous step, before any work starts).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidInputError, TsbuildError } from '../errors.js';

export const BINFMT_MISC = '/proc/sys/fs/binfmt_misc';

/** The platform a step runs for, as far as its binaries care. */
export interface Machine {
  readonly architecture: string;
  readonly variant?: string;
}

interface ElfMachine {
  /** ELFCLASS32 (1) or ELFCLASS64 (2). */
  readonly bits: 1 | 2;
  readonly bigEndian: boolean;
  /** e_machine. */
  readonly machine: number;
  /** QEMU's name for it: the `qemu-NAME` binfmt handler Debian's qemu-user-static registers. */
  readonly qemu: string;
}

/** Go's architecture names (what platforms say) and their ELF machines. */
const MACHINES: Readonly<Record<string, ElfMachine>> = {
  amd64: { bits: 2, bigEndian: false, machine: 62, qemu: 'x86_64' },
  '386': { bits: 1, bigEndian: false, machine: 3, qemu: 'i386' },
  arm64: { bits: 2, bigEndian: false, machine: 183, qemu: 'aarch64' },
  arm: { bits: 1, bigEndian: false, machine: 40, qemu: 'arm' },
  ppc64le: { bits: 2, bigEndian: false, machine: 21, qemu: 'ppc64le' },
  ppc64: { bits: 2, bigEndian: true, machine: 21, qemu: 'ppc64' },
  s390x: { bits: 2, bigEndian: true, machine: 22, qemu: 's390x' },
  riscv64: { bits: 2, bigEndian: false, machine: 243, qemu: 'riscv64' },
  mips64le: { bits: 2, bigEndian: false, machine: 8, qemu: 'mips64el' },
  mips64: { bits: 2, bigEndian: true, machine: 8, qemu: 'mips64' },
  mipsle: { bits: 1, bigEndian: false, machine: 8, qemu: 'mipsel' },
  mips: { bits: 1, bigEndian: true, machine: 8, qemu: 'mips' },
  loong64: { bits: 2, bigEndian: false, machine: 258, qemu: 'loongarch64' },
};

/** What a CPU runs without emulation besides its own architecture (the 32-bit mode of x86-64). */
const NATIVE_TOO: Readonly<Record<string, readonly string[]>> = { amd64: ['386'] };

export function knownArchitectures(): string[] {
  return Object.keys(MACHINES);
}

/** Does this machine run `target`'s programs natively? */
export function runsNatively(host: string, target: string): boolean {
  return host === target || (NATIVE_TOO[host] ?? []).includes(target);
}

/** The first 64 bytes of an ELF executable (ET_EXEC) for the architecture. */
export function elfHeader(arch: string): Buffer {
  const m = MACHINES[arch];
  if (!m) throw new InvalidInputError(`unknown architecture "${arch}" (known: ${knownArchitectures().join(', ')})`);
  const h = Buffer.alloc(64);
  h.write('\x7fELF', 0, 'latin1');
  h[4] = m.bits;
  h[5] = m.bigEndian ? 2 : 1;
  h[6] = 1; // EV_CURRENT
  const u16 = (v: number, at: number): number => (m.bigEndian ? h.writeUInt16BE(v, at) : h.writeUInt16LE(v, at));
  u16(2, 16); // e_type: ET_EXEC
  u16(m.machine, 18);
  return h;
}

/** One registered handler, as its file under binfmt_misc describes it. */
export interface BinfmtHandler {
  readonly name: string;
  readonly enabled: boolean;
  readonly interpreter: string;
  readonly flags: string;
  readonly offset: number;
  /** Undefined for a handler matched by file name extension. */
  readonly magic?: Buffer;
  readonly mask?: Buffer;
}

export function parseHandler(name: string, text: string): BinfmtHandler {
  const fields = new Map<string, string>();
  let enabled = false;
  for (const line of text.split('\n')) {
    if (line === 'enabled') enabled = true;
    const m = /^(interpreter|flags:|offset|magic|mask|extension) ?(.*)$/.exec(line);
    if (m) fields.set(m[1]!.replace(':', ''), m[2]!.trim());
  }
  const hex = (k: string): Buffer | undefined => (fields.has(k) ? Buffer.from(fields.get(k)!, 'hex') : undefined);
  const magic = hex('magic');
  const mask = hex('mask');
  return {
    name,
    enabled,
    interpreter: fields.get('interpreter') ?? '',
    flags: fields.get('flags') ?? '',
    offset: Number(fields.get('offset') ?? 0),
    ...(magic ? { magic } : {}),
    ...(mask ? { mask } : {}),
  };
}

/** Does the handler claim a file that starts with `header`? (fs/binfmt_misc.c check_file) */
export function handlerMatches(h: BinfmtHandler, header: Buffer): boolean {
  if (!h.magic || h.offset + h.magic.length > header.length) return false;
  for (let i = 0; i < h.magic.length; i++) {
    const mask = h.mask?.[i] ?? 0xff;
    if ((header[h.offset + i]! & mask) !== (h.magic[i]! & mask)) return false;
  }
  return true;
}

/** The handlers registered, and whether binfmt_misc is enabled as a whole; undefined if it is not mounted. */
export function readHandlers(dir = BINFMT_MISC): { enabled: boolean; handlers: BinfmtHandler[] } | undefined {
  let status: string;
  try {
    status = readFileSync(join(dir, 'status'), 'utf8');
  } catch {
    return undefined;
  }
  const handlers: BinfmtHandler[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name === 'status' || name === 'register') continue;
    handlers.push(parseHandler(name, readText(join(dir, name))));
  }
  return { enabled: status.trim() === 'enabled', handlers };
}

/** A handler's file; one removed between the listing and the read counts as empty (matches nothing). */
function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** How to register the emulator for an architecture, on Debian, in one line (docs/multi-platform.md). */
export function registerHint(arch: string): string {
  const qemu = MACHINES[arch]?.qemu ?? arch;
  return `as root: apt-get install qemu-user-static binfmt-support && update-binfmts --enable qemu-${qemu} (docs/multi-platform.md)`;
}

export class EmulationError extends TsbuildError {}

/**
 * Checks that programs for `target` run here: natively, or through an enabled binfmt_misc
 * handler with the F flag. Throws one line naming what is missing and how to register it.
 */
export function checkEmulation(
  target: Machine,
  /** `doing`: what needs the emulator, as the error starts; default `RUN for linux/ARCH`. */
  opts: { host: string; dir?: string; doing?: (platform: string) => string },
): void {
  const arch = target.architecture;
  const header = elfHeader(arch);
  if (runsNatively(opts.host, arch)) return;
  const platform = `linux/${[arch, ...(target.variant ? [target.variant] : [])].join('/')}`;
  const what = `${opts.doing ? opts.doing(platform) : `RUN for ${platform}`} needs QEMU user emulation`;
  const hint = registerHint(arch);
  const dir = opts.dir ?? BINFMT_MISC;
  const registered = readHandlers(dir);
  if (!registered) throw new EmulationError(`${what}, and binfmt_misc is not mounted on ${dir}: ${hint}`);
  const matching = registered.handlers.filter((h) => handlerMatches(h, header));
  if (matching.length === 0) throw new EmulationError(`${what}, and no binfmt_misc handler is registered for ${arch} programs: ${hint}`);
  if (!registered.enabled)
    throw new EmulationError(`${what}, and binfmt_misc is disabled (${join(dir, 'status')}): echo 1 > ${join(dir, 'status')}`);
  const usable = matching.find((h) => h.enabled && h.flags.includes('F'));
  if (usable) return;
  const h = matching[0]!;
  if (!matching.some((m) => m.enabled)) throw new EmulationError(`${what}, and its binfmt_misc handler ${h.name} is disabled: ${hint}`);
  throw new EmulationError(
    `${what}, and its binfmt_misc handler ${h.name} lacks the F (fix-binary) flag, without which ${h.interpreter} cannot run inside a build's root: register it again with F (Debian's qemu-user-static does: ${hint})`,
  );
}
