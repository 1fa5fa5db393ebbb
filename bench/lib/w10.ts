// W10: a build for another architecture, its RUN steps under QEMU user emulation (the aarch64
// binfmt_misc handler scripts/setup.sh registers; docs/multi-platform.md). tsbuild's
// `build --platform linux/arm64` against `buildah bud --platform linux/arm64`, which runs its
// steps through the same handler, on the same arm64 busybox (made once by
// `tsbuild bootstrap busybox --platform linux/arm64`, loaded into each tool from a Docker
// archive). One platform: the two-platform build (amd64 + arm64 into one index, against
// `buildah bud --manifest`) needs tsbuild's multi-platform builds. Docker's columns are not
// measured: W10 compares with buildah, whose emulation is the same.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Workload, WorkloadEnv } from './workloads.js';

const BASE = 'bench-w10-base:latest';

/** A small Dockerfile whose RUN steps do a little of what real ones do: a shell loop, a checksum, file writes. */
const DOCKERFILE = `FROM ${BASE}
RUN uname -m > /arch
RUN i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i + 1)); done > /lines && md5sum /lines > /lines.md5
COPY app/ /app/
RUN cd /app && for f in *.txt; do sort "$f" | uniq -c > "$f.count"; done && ls -l /app > /app/listing
`;

let made: Promise<{ context: string; archive: string }> | undefined;

/** The context and the arm64 base's archive, made once per run (untimed). */
function inputs(env: WorkloadEnv): Promise<{ context: string; archive: string }> {
  made ??= (async () => {
    const context = env.session.path('inputs', 'w10');
    await mkdir(join(context, 'app'), { recursive: true });
    await writeFile(join(context, 'Dockerfile'), DOCKERFILE);
    for (let i = 0; i < 20; i++) {
      const words = Array.from({ length: 200 }, (_, j) => `word${(i * 31 + j * 7) % 50}`).join('\n');
      await writeFile(join(context, 'app', `f${i}.txt`), `${words}\n`);
    }
    const seed = env.session.path('w10-seed-root');
    const archive = env.session.path('w10-base-arm64.tar');
    await env.untimed('tsbuild', env.tsbuild(seed, 'bootstrap', ['busybox', '--platform', 'linux/arm64', '-t', BASE]));
    await env.untimed('tsbuild', env.tsbuild(seed, 'save', ['-o', archive, BASE]));
    return { context, archive };
  })();
  return made;
}

const MEASURED = ['tsbuild', 'buildah'];

export const W10: Workload = {
  id: 'W10',
  title: 'another architecture: build --platform linux/arm64 of a small Dockerfile with 3 RUN steps under QEMU; --no-cache',
  kind: 'light',
  prepare: async (env) => void (await inputs(env)),
  async setup(tool, env) {
    if (!MEASURED.includes(tool.id) || !tool.load) return;
    await env.untimed(tool.id, tool.load((await inputs(env)).archive));
  },
  async spec(tool, env) {
    if (!MEASURED.includes(tool.id) || !tool.load)
      return { command: { unsupported: 'W10 is measured against buildah, whose emulation is the same' } };
    return { command: tool.build((await inputs(env)).context, `bench-w10-${tool.id}`, { noCache: true, platform: 'linux/arm64' }) };
  },
  removes: (tool) => (MEASURED.includes(tool.id) ? [`bench-w10-${tool.id}`, BASE] : []),
};
