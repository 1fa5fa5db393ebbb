// The emulation check (src/runtime/binfmt.ts) against binfmt_misc directories made here, with the
// handler files the kernel shows for Debian's qemu-user-static registrations: which handler
// serves which architecture (by its magic, not its name), and the one line each missing piece
// gives. The real /proc/sys/fs/binfmt_misc is exercised by test/build/emulation.test.ts.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkEmulation, elfHeader, handlerMatches, parseHandler, readHandlers } from '../../../src/runtime/binfmt.js';

/** A handler file as the kernel prints it (fs/binfmt_misc.c bm_entry_read). */
function handlerFile(opts: { enabled?: boolean; flags?: string; magic: string; mask: string; interpreter: string }): string {
  return [
    opts.enabled === false ? 'disabled' : 'enabled',
    `interpreter ${opts.interpreter}`,
    `flags: ${opts.flags ?? 'PF'}`,
    'offset 0',
    `magic ${opts.magic}`,
    `mask ${opts.mask}`,
    '',
  ].join('\n');
}

const AARCH64 = {
  interpreter: '/usr/libexec/qemu-binfmt/aarch64-binfmt-P',
  magic: '7f454c460201010000000000000000000200b700',
  mask: 'ffffffffffffff00fffffffffffffffffeffffff',
};
const ARM = {
  interpreter: '/usr/libexec/qemu-binfmt/arm-binfmt-P',
  magic: '7f454c4601010100000000000000000002002800',
  mask: 'ffffffffffffff00fffffffffffffffffeffffff',
};
const S390X = {
  interpreter: '/usr/libexec/qemu-binfmt/s390x-binfmt-P',
  magic: '7f454c4602020100000000000000000000020016',
  mask: 'fffffffffffffffcfffffffffffffffffffeffff',
};

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tsbuild-binfmt-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function binfmt(files: Record<string, string>, status = 'enabled'): Promise<string> {
  await writeFile(join(dir, 'status'), `${status}\n`);
  await writeFile(join(dir, 'register'), '');
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

const HOST = { host: 'amd64' };
const arm64 = { architecture: 'arm64' };

test("a handler serves the architectures whose ELF header its magic and mask match, whatever it's named", () => {
  const handler = parseHandler('any-name', handlerFile(AARCH64));
  expect(handler).toMatchObject({ name: 'any-name', enabled: true, flags: 'PF', offset: 0, interpreter: AARCH64.interpreter });
  expect(handlerMatches(handler, elfHeader('arm64'))).toBe(true);
  for (const other of ['amd64', 'arm', 's390x', 'riscv64']) expect(handlerMatches(handler, elfHeader(other))).toBe(false);
  const s390x = parseHandler('qemu-s390x', handlerFile(S390X));
  expect(handlerMatches(s390x, elfHeader('s390x'))).toBe(true);
  expect(handlerMatches(s390x, elfHeader('arm64'))).toBe(false);
  expect(handlerMatches(parseHandler('qemu-arm', handlerFile(ARM)), elfHeader('arm'))).toBe(true);
});

test('an enabled handler with the F flag passes; the host and what it runs natively need none', async () => {
  const d = await binfmt({ 'qemu-aarch64': handlerFile(AARCH64) });
  expect(() => checkEmulation(arm64, { ...HOST, dir: d })).not.toThrow();
  const empty = await mkdtemp(join(tmpdir(), 'tsbuild-binfmt-'));
  try {
    expect(() => checkEmulation({ architecture: 'amd64' }, { ...HOST, dir: empty })).not.toThrow();
    expect(() => checkEmulation({ architecture: '386' }, { ...HOST, dir: empty })).not.toThrow();
  } finally {
    await rm(empty, { recursive: true });
  }
  expect(readHandlers(d)?.handlers.map((h) => h.name)).toEqual(['qemu-aarch64']);
});

test('binfmt_misc not mounted', async () => {
  expect(() => checkEmulation(arm64, { ...HOST, dir })).toThrow(
    `RUN for linux/arm64 needs QEMU user emulation, and binfmt_misc is not mounted on ${dir}: as root: apt-get install qemu-user-static binfmt-support && update-binfmts --enable qemu-aarch64 (docs/multi-platform.md)`,
  );
});

test("no handler for the architecture (only another architecture's)", async () => {
  const d = await binfmt({ 'qemu-arm': handlerFile(ARM) });
  expect(() => checkEmulation({ architecture: 's390x' }, { ...HOST, dir: d })).toThrow(
    'RUN for linux/s390x needs QEMU user emulation, and no binfmt_misc handler is registered for s390x programs: as root: apt-get install qemu-user-static binfmt-support && update-binfmts --enable qemu-s390x (docs/multi-platform.md)',
  );
  expect(() => checkEmulation({ architecture: 'arm', variant: 'v7' }, { ...HOST, dir: d })).not.toThrow();
});

test('a disabled handler, or binfmt_misc disabled as a whole', async () => {
  const d = await binfmt({ 'qemu-aarch64': handlerFile({ ...AARCH64, enabled: false }) });
  expect(() => checkEmulation(arm64, { ...HOST, dir: d })).toThrow(
    /^RUN for linux\/arm64 needs QEMU user emulation, and its binfmt_misc handler qemu-aarch64 is disabled: as root: apt-get install/,
  );
  await writeFile(join(d, 'qemu-aarch64'), handlerFile(AARCH64));
  await writeFile(join(d, 'status'), 'disabled\n');
  expect(() => checkEmulation(arm64, { ...HOST, dir: d })).toThrow(
    `RUN for linux/arm64 needs QEMU user emulation, and binfmt_misc is disabled (${d}/status): echo 1 > ${d}/status`,
  );
});

test('a handler without the F flag cannot run inside a new root', async () => {
  const d = await binfmt({ 'qemu-aarch64': handlerFile({ ...AARCH64, flags: 'P' }) });
  expect(() => checkEmulation(arm64, { ...HOST, dir: d })).toThrow(
    /^RUN for linux\/arm64 needs QEMU user emulation, and its binfmt_misc handler qemu-aarch64 lacks the F \(fix-binary\) flag, without which \/usr\/libexec\/qemu-binfmt\/aarch64-binfmt-P cannot run inside a build's root: /,
  );
  // Another handler for the same programs, with F, serves.
  await writeFile(join(d, 'qemu-aarch64-static'), handlerFile(AARCH64));
  expect(() => checkEmulation(arm64, { ...HOST, dir: d })).not.toThrow();
});

test('an unknown architecture is refused before binfmt_misc is read', async () => {
  expect(() => checkEmulation({ architecture: 'vax' }, { ...HOST, dir })).toThrow(
    /^unknown architecture "vax" \(known: 386, amd64, arm64, /,
  );
});
