// What `tsbuild build` prints besides its steps: Docker's warning for --build-arg values no ARG
// consumed, and the size analysis of --analyze.
import { randomBytes } from 'node:crypto';
import { cp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ok, REPO, busyboxStore, tempDir, tsbuild } from '../helpers/tsbuild.js';

describe('build output', () => {
  const env = busyboxStore();

  async function context(dockerfile: string): Promise<string> {
    const ctx = await tempDir();
    env.removeLater(ctx);
    await writeFile(join(ctx, 'Dockerfile'), dockerfile);
    return ctx;
  }

  test("--build-arg values no ARG consumes get one warning line in Docker classic's words, names sorted", async () => {
    const ctx = await context('FROM busybox\nARG USED\nRUN echo "$USED" > /used\n');
    const args = [
      '--build-arg',
      'ZED=2',
      '--build-arg',
      'USED=1',
      '--build-arg',
      'ALPHA=3',
      '--build-arg',
      'HTTP_PROXY=http://127.0.0.1:9',
    ];
    const r = await tsbuild(env.root, ['build', '-q', '-t', 'args', ...args, ctx]);
    expect(r.exitCode).toBe(0);
    // HTTP_PROXY is one of Docker's predefined args: never reported.
    expect(r.stderr).toBe('[Warning] One or more build-args [ALPHA ZED] were not consumed\n');
    expect(await ok(env.root, ['run', 'args', 'cat', '/used'])).toBe('1\n');

    const consumed = await tsbuild(env.root, ['build', '-q', '-t', 'args', '--build-arg', 'USED=2', ctx]);
    expect(consumed.exitCode).toBe(0);
    expect(consumed.stderr).toBe('');
  });

  test('--analyze prints the analysis of the new image after its steps: the repeated COPY is the hint', async () => {
    const ctx = await tempDir();
    env.removeLater(ctx);
    // testdata/waste/duplicate: one file copied to /srv/a, /srv/b, then twice more to /srv/a.
    await cp(join(REPO, 'testdata/waste/duplicate'), ctx, { recursive: true });
    await writeFile(join(ctx, 'data.bin'), randomBytes(4_000_000));
    const out = await ok(env.root, ['build', '--progress', 'plain', '--analyze', '-t', 'dup', ctx]);
    const lines = out.split('\n');
    const at = (re: RegExp): number => lines.findIndex((l) => re.test(l));
    expect(at(/^STEP 5\/5: COPY data\.bin \/srv\/a\/data\.bin$/)).toBeLessThan(at(/^Image dup:latest \([0-9a-f]{12}\)$/));
    expect(at(/^Image dup:latest/)).toBeLessThan(at(/^Successfully built [0-9a-f]{12}$/));
    // The four layers store 16 MB; the two repeated copies to /srv/a are 8 MB of waste.
    expect(out).toMatch(/^ {2}Wasted bytes: {2}8MB of 18MB stored \(8MB by this Dockerfile's layers: 50\.0% of their size\)$/m);
    expect(out).toMatch(
      /^ {2}1\. 4MB: Dockerfile:4 `COPY data\.bin \/srv\/a\/data\.bin` stores 1 file again, unchanged, at the same paths Dockerfile:2 `COPY data\.bin \/srv\/a\/data\.bin` already stored\.$/m,
    );
    expect(out).toMatch(/^ {5}Paths: \/srv\/a\/data\.bin$/m);

    // With -q, stdout stays the image ID alone and the analysis goes to stderr.
    const quiet = await tsbuild(env.root, ['build', '-q', '--analyze', '-t', 'dup', ctx]);
    expect(quiet.exitCode).toBe(0);
    expect(quiet.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect(quiet.stderr).toMatch(/^\nImage dup:latest/);
    expect(quiet.stderr).toMatch(/Dockerfile:4 `COPY data\.bin \/srv\/a\/data\.bin` stores 1 file again/);
  });
});
