// The same Dockerfile gives the same layers under overlay2 and vfs, and a 150-step Dockerfile
// builds (its lower chain no longer fits one page of mount options).
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mountsBelow, ok, rootWithBusybox, tempDir, tsbuild } from '../helpers/tsbuild.js';

const DOCKERFILE = [
  'FROM busybox',
  'COPY app.txt /app/app.txt',
  'RUN mkdir -p /app/sub && echo hi > /app/sub/f && ln -s f /app/sub/l && ln /app/sub/f /app/sub/hard',
  'RUN rm /bin/ls && chmod 700 /etc/passwd && chown 1:1 /etc/group && rm -rf /home/* && touch /home/.keep',
  'RUN mkfifo /app/fifo && cp /bin/busybox /app/suid && chmod 4711 /app/suid',
  'CMD ["sh"]',
  '',
].join('\n');

describe('storage drivers', () => {
  test('overlay2 and vfs give the same diff_ids', async () => {
    const ctx = await tempDir();
    await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE);
    await writeFile(join(ctx, 'app.txt'), 'app\n');
    const layers: Record<string, string[]> = {};
    for (const driver of ['overlay2', 'vfs'] as const) {
      const env = await rootWithBusybox(driver);
      try {
        // Clamp mtimes so that two builds at different moments can be compared at all.
        await ok(env.root, ['build', '-t', 'same', ctx], { env: { SOURCE_DATE_EPOCH: '1700000000' } });
        const [img] = JSON.parse(await ok(env.root, ['inspect', 'same']));
        expect(img.GraphDriver.Name).toBe(driver);
        layers[driver] = img.RootFS.Layers;
        const info = await ok(env.root, ['info']);
        expect(info).toContain(`Storage driver: ${driver}`);
      } finally {
        await env.cleanup();
      }
    }
    expect(layers.overlay2).toHaveLength(5);
    expect(layers.vfs).toEqual(layers.overlay2);
  });

  test('a 150-step Dockerfile builds, and leaves nothing mounted', async () => {
    const env = await rootWithBusybox('overlay2');
    try {
      const ctx = await tempDir();
      const steps = Array.from({ length: 150 }, (_, i) => `RUN echo ${i} > /step-${i}`);
      await writeFile(join(ctx, 'Dockerfile'), ['FROM busybox', ...steps, ''].join('\n'));
      await ok(env.root, ['build', '-q', '-t', 'deep', ctx]);
      const [img] = JSON.parse(await ok(env.root, ['inspect', 'deep']));
      expect(img.RootFS.Layers).toHaveLength(151);
      const r = await tsbuild(env.root, ['run', 'deep', 'cat', '/step-0', '/step-149']);
      expect(r.stdout).toBe('0\n149\n');
      expect(await mountsBelow(env.root)).toEqual([]);
    } finally {
      await env.cleanup();
    }
  }, 600_000);
});
