// COPY --chmod's modes (src/fs/mode.ts). Symbolic modes are checked against chmod(1) itself run
// with umask 0 (BuildKit applies them with no umask), on files and directories of several
// starting modes; octal modes and the errors against BuildKit's dispatchCopy.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModeSyntaxError, parseModeChange } from '../../../src/fs/mode.js';

const SYMBOLIC = [
  'u+x',
  'g-w',
  'o-rwx',
  'u=rwx,g=rx,o=',
  'a+X',
  'go=u',
  'g+u',
  'o=g-w',
  'ug+rw',
  'u-x+w',
  'u+s',
  'g+s',
  '+t',
  'a-w,u+w',
  '+x',
  '-w',
  'u=g,g=o',
];
const STARTS = [0o644, 0o755, 0o600, 0o700, 0o640, 0o111];

function chmod1(dir: string, kind: 'file' | 'dir', start: number, mode: string): number {
  const p = join(dir, `${kind}-${start.toString(8)}-${mode.replace(/[^a-z0-9]/gi, '_')}`);
  if (kind === 'file') writeFileSync(p, '');
  else mkdirSync(p);
  chmodSync(p, start);
  execFileSync('sh', ['-c', 'umask 0 && chmod "$1" "$2"', 'sh', mode, p]);
  return statSync(p).mode & 0o7777;
}

describe('--chmod', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tsbuild-mode-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each(SYMBOLIC)('symbolic %s does what chmod(1) does with umask 0', (mode) => {
    const change = parseModeChange(mode);
    expect(change.octal).toBeUndefined();
    for (const start of STARTS) {
      for (const kind of ['file', 'dir'] as const) {
        const got = change.apply(start, kind === 'dir');
        expect({ kind, start: start.toString(8), mode: got.toString(8) }).toEqual({
          kind,
          start: start.toString(8),
          mode: chmod1(dir, kind, start, mode).toString(8),
        });
      }
    }
  });

  test('X as BSD setmode (dchapes-mode) has it, unlike GNU chmod: only with +, and judged on the mode before the change', () => {
    expect(parseModeChange('a=rX').apply(0o755, true)).toBe(0o444);
    expect(parseModeChange('a=r,a+X').apply(0o755, true)).toBe(0o555);
    expect(parseModeChange('a=r,a+X').apply(0o755, false)).toBe(0o555);
    expect(parseModeChange('a=r,a+X').apply(0o644, false)).toBe(0o444);
  });

  test('octal modes replace the bits, whatever the entry', () => {
    expect(parseModeChange('0755').apply(0o600, false)).toBe(0o755);
    expect(parseModeChange('755').octal).toBe(0o755);
    expect(parseModeChange('4750').apply(0o644, true)).toBe(0o4750);
    expect(parseModeChange('0').octal).toBe(0);
  });

  test.each([
    ['0789', "invalid chmod parameter: '0789'. it should be octal string and between 0 and 07777"],
    ['77777', "invalid chmod parameter: '77777'. it should be octal string and between 0 and 07777"],
    ['9', "invalid chmod parameter: '9'. it should be octal string and between 0 and 07777"],
    ['u+q', "invalid chmod parameter: 'u+q': invalid syntax"],
    ['u', "invalid chmod parameter: 'u': invalid syntax"],
    ['x+u', "invalid chmod parameter: 'x+u': invalid syntax"],
    ['', "invalid chmod parameter: '': invalid syntax"],
    ['u+x,', "invalid chmod parameter: 'u+x,': invalid syntax"],
  ])('%j is refused', (mode, message) => {
    expect(() => parseModeChange(mode)).toThrow(ModeSyntaxError);
    expect(() => parseModeChange(mode)).toThrow(message);
  });
});
