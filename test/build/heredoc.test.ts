// Every heredoc form, built for real: /dest in the image holds exactly what
// testdata/dockerfiles/heredoc/expected holds (names, bytes, modes), as BuildKit makes it.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ok, REPO, rootWithBusybox, tsbuild } from '../helpers/tsbuild.js';

const CASE = join(REPO, 'testdata/dockerfiles/heredoc');

async function expectedFiles(dir: string, prefix = ''): Promise<Map<string, { content: string; mode: number }>> {
  const out = new Map<string, { content: string; mode: number }>();
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    const st = await stat(p);
    if (st.isDirectory()) for (const [k, v] of await expectedFiles(p, `${prefix}${name}/`)) out.set(k, v);
    else out.set(`${prefix}${name}`, { content: await readFile(p, 'utf8'), mode: st.mode & 0o777 });
  }
  return out;
}

test('heredocs in RUN and COPY build what BuildKit builds', async () => {
  const env = await rootWithBusybox('overlay2');
  try {
    await ok(env.root, ['build', '-t', 'heredoc', CASE]);
    const expected = await expectedFiles(join(CASE, 'expected'));
    // Read the files back from inside the image, with their modes.
    const script = [...expected.keys()].map((f) => `stat -c '%a' '${f}'; cat '${f}'; echo '<<END>>'`).join('; ');
    const r = await tsbuild(env.root, ['run', '-w', '/dest', 'heredoc', 'sh', '-c', script]);
    expect(r.stderr).toBe('');
    const parts = r.stdout.split('<<END>>\n');
    [...expected.entries()].forEach(([name, want], i) => {
      const got = parts[i]!;
      const nl = got.indexOf('\n');
      expect({ name, mode: got.slice(0, nl), content: got.slice(nl + 1) }).toEqual({
        name,
        mode: want.mode.toString(8),
        content: want.content,
      });
    });
    const listed = await tsbuild(env.root, ['run', '-w', '/dest', 'heredoc', 'find', '.', '-type', 'f']);
    expect(
      listed.stdout
        .trim()
        .split('\n')
        .map((l) => l.replace(/^\.\//, ''))
        .sort(),
    ).toEqual([...expected.keys()].sort());
  } finally {
    await env.cleanup();
  }
});
