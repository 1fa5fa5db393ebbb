// The terminal progress view says why a step missed the cache too: a build in a real
// pseudo-terminal (tmux, a private server on its own socket), read back from the screen.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { CLI, ok, rootWithBusybox, tempDir } from '../helpers/tsbuild.js';

describe('the TTY view and the cache', () => {
  test('a missed step shows its reason on the screen', async () => {
    const src = await rootWithBusybox();
    const dir = await tempDir();
    const socket = join(dir, 'tmux.sock');
    const roots = [src];
    try {
      const ctx = await tempDir();
      await writeFile(join(ctx, 'a.txt'), 'a\n');
      await writeFile(join(ctx, 'b.txt'), 'b\n');
      await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY . /app/\nRUN ls /app > /list\n');
      const cache = join(dir, 'cache');
      await ok(src.root, ['build', '--cache-to', `type=local,dest=${cache}`, ctx]);
      await writeFile(join(ctx, 'b.txt'), 'changed\n');
      // Another runner: a store with the base and none of the build's steps.
      const runner = await rootWithBusybox();
      roots.push(runner);
      const command = `node ${CLI} build --root ${runner.root} --cache-from type=local,src=${cache} ${ctx}; echo EXIT=$?`;
      await execa('tmux', ['-S', socket, 'new-session', '-d', '-x', '160', '-y', '40', command + '; sleep 60']);
      let screen = '';
      for (let i = 0; i < 300 && !/EXIT=\d+/.test(screen); i++) {
        await new Promise((r) => setTimeout(r, 100));
        screen = (await execa('tmux', ['-S', socket, 'capture-pane', '-p'])).stdout;
      }
      expect(screen).toMatch(/EXIT=0/);
      // Under the step's row, and kept there when it ends.
      expect(screen).toMatch(/^ => \[2\/3\] COPY \. \/app\/ .*\n => => cache miss: file changed: b\.txt\n/m);
      expect(screen).toMatch(/^ => \[3\/3\] RUN .*\n => => cache miss: the layer it builds on changed \(a step before it ran\)\n/m);
    } finally {
      await execa('tmux', ['-S', socket, 'kill-server'], { reject: false });
      for (const r of roots) await r.cleanup();
    }
  });
});
