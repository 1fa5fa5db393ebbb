// W10: a multi-platform build whose RUN steps run natively for amd64 and under QEMU user
// emulation for arm64 (the aarch64 binfmt_misc handler scripts/setup.sh registers;
// docs/multi-platform.md). tsbuild's `build --platform linux/amd64,linux/arm64` against
// `buildah bud --platform linux/amd64,linux/arm64 --manifest`, which runs its arm64 steps
// through the same handler. Both start from the same two bases, made once (the host's busybox,
// and the arm64 one `tsbuild bootstrap busybox --platform linux/arm64` makes) and loaded into
// each tool from Docker archives. Each tool takes them its own way: tsbuild's Dockerfile picks
// `base-$TARGETARCH` among two stages (buildah 1.28 does not expand a variable in FROM), and
// buildah's starts FROM a local manifest list of the two. The RUN steps are the same. Docker's
// columns are not measured: W10 compares with buildah, whose emulation is the same.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Workload, WorkloadEnv } from './workloads.js';

const AMD64 = 'bench-w10-amd64:latest';
const ARM64 = 'bench-w10-arm64:latest';
const BUILDAH_BASE = 'localhost/bench-w10-base';
const PLATFORMS = 'linux/amd64,linux/arm64';

/** Small RUN steps that do a little of what real ones do: a shell loop, a checksum, file writes. */
const STEPS = `RUN uname -m > /arch
RUN i=0; while [ $i -lt 3000 ]; do echo "line $i"; i=$((i + 1)); done > /lines && md5sum /lines > /lines.md5
COPY app/ /app/
RUN cd /app && for f in *.txt; do sort "$f" | uniq -c > "$f.count"; done && ls -l /app > /app/listing
`;

const FROM: Record<string, string> = {
  tsbuild: `FROM ${AMD64} AS base-amd64\nFROM ${ARM64} AS base-arm64\nFROM base-$TARGETARCH\n`,
  buildah: `FROM ${BUILDAH_BASE}\n`,
};

interface Inputs {
  readonly contexts: Record<string, string>;
  readonly archives: readonly string[];
}

let made: Promise<Inputs> | undefined;

/** Each tool's context and the two bases' archives, made once per run (untimed). */
function inputs(env: WorkloadEnv): Promise<Inputs> {
  made ??= (async () => {
    const contexts: Record<string, string> = {};
    for (const [tool, from] of Object.entries(FROM)) {
      const dir = env.session.path('inputs', `w10-${tool}`);
      await mkdir(join(dir, 'app'), { recursive: true });
      await writeFile(join(dir, 'Dockerfile'), from + STEPS);
      for (let i = 0; i < 20; i++) {
        const words = Array.from({ length: 200 }, (_, j) => `word${(i * 31 + j * 7) % 50}`).join('\n');
        await writeFile(join(dir, 'app', `f${i}.txt`), `${words}\n`);
      }
      contexts[tool] = dir;
    }
    const seed = env.session.path('w10-seed-root');
    const archives = [env.session.path('w10-base-amd64.tar'), env.session.path('w10-base-arm64.tar')];
    await env.untimed('tsbuild', env.tsbuild(seed, 'bootstrap', ['busybox', '-t', AMD64]));
    await env.untimed('tsbuild', env.tsbuild(seed, 'bootstrap', ['busybox', '--platform', 'linux/arm64', '-t', ARM64]));
    await env.untimed('tsbuild', env.tsbuild(seed, 'save', ['-o', archives[0]!, AMD64]));
    await env.untimed('tsbuild', env.tsbuild(seed, 'save', ['-o', archives[1]!, ARM64]));
    return { contexts, archives };
  })();
  return made;
}

const MEASURED = Object.keys(FROM);

export const W10: Workload = {
  id: 'W10',
  title: `multi-platform: build --platform ${PLATFORMS} of a small Dockerfile with 3 RUN steps, arm64's under QEMU; --no-cache`,
  kind: 'light',
  prepare: async (env) => void (await inputs(env)),
  async setup(tool, env) {
    if (!MEASURED.includes(tool.id) || !tool.load) return;
    const { archives } = await inputs(env);
    for (const a of archives) await env.untimed(tool.id, tool.load(a));
    // buildah names an archive's image localhost/NAME.
    for (const c of tool.manifestList?.(BUILDAH_BASE, [`localhost/${AMD64}`, `localhost/${ARM64}`]) ?? []) await env.untimed(tool.id, c);
  },
  async spec(tool, env) {
    if (!MEASURED.includes(tool.id) || !tool.load)
      return { command: { unsupported: 'W10 is measured against buildah, whose emulation is the same' } };
    const dir = (await inputs(env)).contexts[tool.id]!;
    return { command: tool.build(dir, `bench-w10-${tool.id}`, { noCache: true, platform: PLATFORMS, manifest: tool.id === 'buildah' }) };
  },
  removes: (tool) => (MEASURED.includes(tool.id) ? [`bench-w10-${tool.id}`, AMD64, ARM64] : []),
};
