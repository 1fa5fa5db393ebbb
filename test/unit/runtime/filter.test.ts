// A stream through a filter process (src/runtime/filter.ts): the output is the process's stdout
// once it has exited 0; otherwise the error is its own words, not a broken pipe or an abort.
import { Readable } from 'node:stream';
import { borrowChunk, LENT_CHUNK_SIZE } from '../../../src/chunks.js';
import { filterThrough, type FilterErrors } from '../../../src/runtime/filter.js';

const errors: FilterErrors = {
  notRunning: (result) => new Error(`not running: ${result.code ?? result.signal}`),
  failed: (exitCode, stderr) => new Error(`status ${exitCode}: ${stderr.trim()}`),
};

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `n` lent chunks of byte i, as a regenerated layer gives them. */
function lent(n: number): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < n; i++) yield borrowChunk(LENT_CHUNK_SIZE).fill(i);
    })(),
  );
}

describe('filterThrough', () => {
  test('the output is what the process wrote, every lent chunk in order', async () => {
    const out = await collect(filterThrough(lent(24), 'cat', [], errors));
    expect(out.length).toBe(24 * LENT_CHUNK_SIZE);
    for (let i = 0; i < 24; i++) expect([out[i * LENT_CHUNK_SIZE], out[(i + 1) * LENT_CHUNK_SIZE - 1]]).toEqual([i, i]);
  });

  test('a process that fails, reading nothing of a big input, fails the output with its own words', async () => {
    for (let i = 0; i < 5; i++) {
      const out = filterThrough(lent(16), 'sh', ['-c', 'echo "bad level" >&2; exit 3'], errors);
      await expect(collect(out)).rejects.toThrow('status 3: bad level');
    }
  });

  test('a program that is not there, and one killed by a signal', async () => {
    await expect(collect(filterThrough(lent(1), '/nonexistent/zstd', [], errors))).rejects.toThrow('not running: ENOENT');
    await expect(collect(filterThrough(lent(1), 'sh', ['-c', 'kill -KILL $$'], errors))).rejects.toThrow('not running: SIGKILL');
  });

  test('a failing input fails the output with the input’s error', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('diffID mismatch'));
      },
    });
    await expect(collect(filterThrough(failing, 'cat', [], errors))).rejects.toThrow('diffID mismatch');
  });
});
