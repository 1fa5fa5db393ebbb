// What reaches the terminal from a Dockerfile, an image reference or an image's history is
// shown with its control characters escaped (a hostile Dockerfile cannot clear the screen or
// retitle the window), and one enormous word does not make an error line of half a megabyte.
// A RUN whose argument or variable the kernel cannot pass says which, at its line.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ok, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

type Env = Awaited<ReturnType<typeof rootWithBusybox>>;

describe('terminal output', () => {
  let env: Env;

  beforeAll(async () => {
    env = await rootWithBusybox();
  });

  afterAll(async () => {
    await env?.cleanup();
  });

  // ESC, BEL, a C1 control (CSI) and a right-to-left override: none may reach the terminal raw.
  // eslint-disable-next-line no-control-regex
  const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;

  async function dockerfile(text: string): Promise<string> {
    const ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), text);
    return ctx;
  }

  test('a Dockerfile with escape sequences: progress and error escape them', async () => {
    const ctx = await dockerfile('FROM busybox\nCOPY missing\u001b]0;pwned\u0007\u009b2J\u202e /x\n');
    const r = await tsbuild(env.root, ['build', '--progress', 'plain', ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout + r.stderr).not.toMatch(RAW);
    expect(r.stdout).toContain('STEP 2/2: COPY missing\\u001b]0;pwned\\u0007\\u009b2J\\u202e /x');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  test('an image reference with escape sequences is escaped in the error', async () => {
    const r = await tsbuild(env.root, ['pull', 'bad\u001b[2Jname']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).not.toMatch(RAW);
    expect(r.stderr).toContain('\\u001b[2J');
  });

  test("an image's history with escape sequences is escaped by history and analyze", async () => {
    const ctx = await dockerfile('FROM busybox\nRUN echo "\u001b[2J\u001b]0;pwned\u0007" > /x\n');
    await ok(env.root, ['build', '-t', 'escapes', ctx]);
    for (const args of [
      ['history', 'escapes'],
      ['history', '--no-trunc', 'escapes'],
      ['analyze', 'escapes'],
      ['inspect', 'escapes'],
    ]) {
      const out = await ok(env.root, args);
      expect(out).not.toMatch(RAW);
    }
    expect(JSON.parse(await ok(env.root, ['inspect', 'escapes']))).toHaveLength(1);
  });

  test('a 500 kB word is cut in the error line', async () => {
    const ctx = await dockerfile(`FROM busybox\nCOPY ${'y'.repeat(500_000)} /x\n`);
    const r = await tsbuild(env.root, ['build', '-q', ctx]);
    expect(r.exitCode).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.length).toBeLessThan(1000);
    expect(lines[0]).toMatch(/^Error: Dockerfile:2: .*…\[\d+ characters\]…/);
  });

  test('an ENV or a RUN argument too large for the kernel is said at its line, by name', async () => {
    const big = await dockerfile(`FROM busybox\nENV BIG=${'x'.repeat(200_000)}\nRUN true\n`);
    const r = await tsbuild(env.root, ['build', '-q', big]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe(
      'Error: Dockerfile:3: the variable BIG (ENV or ARG) is 200005 bytes: Linux passes at most 131072 bytes per variable to a command\n',
    );
    const arg = await dockerfile(`FROM busybox\nRUN echo ${'y'.repeat(200_000)}\n`);
    const a = await tsbuild(env.root, ['build', '-q', arg]);
    expect(a.exitCode).toBe(1);
    expect(a.stderr).toMatch(/^Error: Dockerfile:2: the command has an argument of \d+ bytes: Linux passes at most 131072 bytes/);
    expect(a.stderr.length).toBeLessThan(300);
  });
});
