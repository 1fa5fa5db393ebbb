// kill -9 anywhere: a build (COPY, RUN, several layers), a load and a pull from a local
// registry are killed, process group and all, after a random delay; then the store must hold
// the previous images and tags unchanged and no half layer, the next command must leave no temp
// dir, lease or mount behind, and doing the same work again must succeed.
//
// The delays are drawn from a seeded generator, printed at the start; rerun a failure with
// TSBUILD_KILL_SEED=<seed> (and TSBUILD_KILL_ROUNDS=<n> for more or fewer kills).
import { spawn, type ChildProcess } from 'node:child_process';
import { watch } from 'node:fs';
import { access, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { REPO, mountsBelow, ok, rootWithBusybox, tempDir } from '../helpers/tsbuild.js';
import { generator, runCli } from './kill-runner.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { inconsistencies, leftovers, tags } from './store-check.js';

const SEED = Number(process.env.TSBUILD_KILL_SEED ?? Math.floor(Math.random() * 1_000_000));
const ROUNDS = Number(process.env.TSBUILD_KILL_ROUNDS ?? 14);

type Scenario = 'build' | 'load' | 'pull';

async function unusedPid(): Promise<number> {
  const last = Number(await readFile('/proc/sys/kernel/ns_last_pid', 'utf8'));
  for (let pid = ((last + 8000) % 30000) + 1000; ; pid++) {
    if (
      !(await access(`/proc/${pid}`).then(
        () => true,
        () => false,
      ))
    )
      return pid;
  }
}

/**
 * `sleep 60` as process `pid`: the last PID handed out is set to the one before (retried, as
 * other processes fork too). Undefined once another process or thread holds `pid`: the caller
 * starts over with another.
 */
async function spawnAs(pid: number): Promise<ChildProcess | undefined> {
  for (let i = 0; i < 50; i++) {
    await writeFile('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    const p = spawn('sleep', ['60'], { stdio: 'ignore' });
    if (p.pid === pid) return p;
    p.kill();
    if (
      await access(`/proc/${pid}`).then(
        () => true,
        () => false,
      )
    )
      return undefined;
  }
  return undefined;
}

async function imageId(root: string, ref: string): Promise<string> {
  return (JSON.parse(await ok(root, ['inspect', ref])) as { Id: string }[])[0]!.Id;
}

// Both drivers: overlay2 leaves mounts behind, vfs only directories. vfs gets half the rounds.
describe.each([
  ['overlay2', ROUNDS],
  ['vfs', Math.ceil(ROUNDS / 2)],
] as const)('kill -9 at random points (%s)', (driver, rounds) => {
  let store: { root: string; cleanup(): Promise<void> };
  let registry: TestRegistry;
  let ctx: string;
  let dockerConfig: string;
  let archive: string;
  let env: Record<string, string>;
  const random = generator(SEED);
  const args: Record<Scenario, (round: number) => string[]> = {
    build: (round) => ['build', '--root', '', '--build-arg', `NONCE=${round}`, '-t', `app:round${round}`, ''],
    load: () => ['load', '--root', '', '-i', ''],
    pull: () => ['pull', '--root', '', ''],
  };
  /** The full argument list for a scenario (the blanks above filled in). */
  let argv: (s: Scenario, round: number) => string[];

  beforeAll(async () => {
    process.stdout.write(`kill test (${driver}): seed ${SEED} (rerun with TSBUILD_KILL_SEED=${SEED}), ${rounds} rounds\n`);
    registry = await startRegistry();
    dockerConfig = await tempDir('tsbuild-dockercfg-');
    env = { DOCKER_CONFIG: dockerConfig };
    store = await rootWithBusybox(driver);
    ctx = await tempDir();
    await writeFile(join(ctx, 'small'), 'small\n');
    await writeFile(join(ctx, 'big'), Buffer.alloc(6 << 20, 7));
    await writeFile(
      join(ctx, 'Dockerfile'),
      [
        'FROM busybox',
        'ARG NONCE=0',
        'COPY small /small',
        'RUN echo $NONCE > /nonce && dd if=/dev/urandom of=/random bs=1k count=3072 2>/dev/null',
        'COPY big /data/big',
        'RUN for i in $(seq 1 300); do echo $i > /f$i; done',
        'WORKDIR /work',
        'RUN sleep 0.2 && echo done > /work/done',
        'ENV DONE=1',
        '',
      ].join('\n'),
    );
    const root = store.root;
    argv = (s, round) => {
      const a = args[s](round);
      a[2] = root;
      if (s === 'build') a[a.length - 1] = ctx;
      if (s === 'load') a[4] = archive;
      if (s === 'pull') a[3] = `${registry.host}/pulled:1`;
      return a;
    };
    await ok(root, ['build', '-t', 'app:v1', ctx]);
    // The load and pull sources: another image, saved and pushed, then removed from the store.
    const other = await tempDir();
    await writeFile(join(other, 'blob'), Buffer.alloc(5 << 20, 3));
    await writeFile(
      join(other, 'Dockerfile'),
      'FROM busybox\nCOPY blob /blob\nRUN dd if=/dev/urandom of=/r bs=1k count=2048 2>/dev/null\n',
    );
    await ok(root, ['build', '-t', 'other:1', other]);
    await rm(other, { recursive: true, force: true });
    archive = join(ctx, 'other.tar');
    await ok(root, ['save', '-o', archive, 'other:1']);
    await ok(root, ['tag', 'other:1', `${registry.host}/pulled:1`], { env });
    await ok(root, ['push', `${registry.host}/pulled:1`], { env });
    await ok(root, ['rmi', '-f', await imageId(root, 'other:1')]);
  });

  afterAll(async () => {
    await store?.cleanup();
    await registry?.stop();
    if (ctx) await rm(ctx, { recursive: true, force: true });
    if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
  });

  test('the store survives each kill and the work succeeds afterwards', async () => {
    const root = store.root;
    const scenarios: Scenario[] = ['build', 'build', 'load', 'pull'];
    // How long each takes uninterrupted, so that kill points spread over the whole run.
    const took: Partial<Record<Scenario, number>> = {};
    const report: string[] = [];
    for (let round = 0; round < rounds; round++) {
      const scenario = scenarios[Math.floor(random() * scenarios.length)]!;
      const before = await tags(root);
      const expected = before['app:v1']!;
      if (took[scenario] === undefined) {
        // First time: measure it uninterrupted, then undo it.
        const r = await runCli(argv(scenario, 1000 + round), env);
        if (r.code !== 0) throw new Error(`${scenario} failed before any kill:\n${r.output}`);
        took[scenario] = r.ms;
        await undo(scenario, round + 1000);
      }
      const delay = Math.floor(random() * took[scenario]!);
      const killed = await runCli(argv(scenario, round), env, delay);
      report.push(
        `round ${round}: ${scenario} ${killed.killed ? `killed after ${delay} ms` : `ended before the kill at ${delay} ms (exit ${killed.code})`}`,
      );

      // Whatever the kill left, no half layer is visible and nothing old changed.
      expect({ round, scenario, delay, problems: await inconsistencies(root) }).toEqual({ round, scenario, delay, problems: [] });
      const after = await tags(root);
      for (const [ref, id] of Object.entries(before)) expect({ ref, id: after[ref] }).toEqual({ ref, id });

      // The next command repairs: afterwards nothing temporary and nothing mounted.
      expect(await ok(root, ['images'])).toContain('app ');
      expect({ round, scenario, delay, left: await leftovers(root) }).toEqual({ round, scenario, delay, left: [] });
      expect(await mountsBelow(root)).toEqual([]);
      expect(await imageId(root, 'app:v1')).toBe(expected);

      // And the same work succeeds.
      const again = await runCli(argv(scenario, round), env);
      if (again.code !== 0) throw new Error(`round ${round}: ${scenario} after the kill failed:\n${again.output}`);
      took[scenario] = Math.min(took[scenario]!, again.ms);
      expect({ round, problems: await inconsistencies(root), left: await leftovers(root) }).toEqual({ round, problems: [], left: [] });
      await undo(scenario, round);
    }
    process.stdout.write(`kill test (${driver}, seed ${SEED}):\n${report.join('\n')}\n`);
    // Every layer left reads back as the tar its diffID names (save checks each as it streams).
    const out = join(ctx, 'all.tar');
    await ok(root, ['save', '-o', out, ...Object.keys(await tags(root)).filter((r) => !r.includes('@'))]);
    await rm(out, { force: true });
  });

  test('repair after a kill leaves a live build alone: its mount, snapshot, temp dirs and lease', async () => {
    const root = store.root;
    const waitCtx = await tempDir();
    const doomedCtx = await tempDir();
    const gate = (marker: string) =>
      `RUN touch /${marker}; i=0; while [ ! -e /go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; test -e /go && rm /go /${marker}`;
    await writeFile(join(waitCtx, 'Dockerfile'), `FROM app:v1\n${gate('live')}\nRUN echo after > /after\n`);
    await writeFile(join(doomedCtx, 'Dockerfile'), `FROM app:v1\n${gate('doomed')}\n`);
    /** The rootfs (overlay2: the step's mount in the store's tmp/; vfs: the snapshot dir) whose RUN has created `marker`. */
    const rootfsWith = async (marker: string, proc: { exited: boolean }): Promise<string> => {
      for (;;) {
        if (proc.exited) throw new Error(`the build that was to create /${marker} ended`);
        const candidates =
          driver === 'overlay2'
            ? await mountsBelow(join(root, 'tmp'))
            : (await readdir(join(root, 'vfs', 'dir')).catch(() => [] as string[])).map((d) => join(root, 'vfs', 'dir', d));
        for (const m of candidates) {
          if (
            await access(join(m, marker)).then(
              () => true,
              () => false,
            )
          )
            return m;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const start = (ctxDir: string, tag: string) => {
      const state = { exited: false };
      const done = runCli(['build', '--root', root, '-t', tag, ctxDir], env).finally(() => (state.exited = true));
      return { state, done };
    };
    /** Lease files (not the temporary names they are written under). */
    const leaseFiles = async () => (await readdir(join(root, 'leases'))).filter((n) => /^\d+-\d+$/.test(n));
    const live = start(waitCtx, 'live:1');
    try {
      const liveRootfs = await rootfsWith('live', live.state);
      const liveTemps = await readdir(join(root, 'tmp'));
      const liveLeases = await leaseFiles();
      expect(liveLeases).toHaveLength(1);

      // A second build, killed inside its RUN: it leaves a mount, a snapshot, a lease.
      const doomed = start(doomedCtx, 'doomed:1');
      const doomedRootfs = await rootfsWith('doomed', doomed.state);
      const pid = Number((await leaseFiles()).find((n) => !liveLeases.includes(n))!.split('-')[0]);
      process.kill(-pid, 'SIGKILL');
      await doomed.done;
      if (driver === 'overlay2') expect(await mountsBelow(root)).toContain(doomedRootfs);
      else await access(doomedRootfs);

      await ok(root, ['images']); // repairs
      expect(await mountsBelow(root)).not.toContain(doomedRootfs);
      await expect(access(doomedRootfs)).rejects.toThrow(/ENOENT/);
      if (driver === 'overlay2') expect(await mountsBelow(root)).toContain(liveRootfs);
      await access(join(liveRootfs, 'live'));
      expect(await leaseFiles()).toEqual(liveLeases);
      for (const t of liveTemps) await access(join(root, 'tmp', t));

      await writeFile(join(liveRootfs, 'go'), '');
      const r = await live.done;
      if (r.code !== 0) throw new Error(`the live build failed after the repair:\n${r.output}`);
      expect(await ok(root, ['run', 'live:1', 'cat', '/after'])).toBe('after\n');
      expect({ problems: await inconsistencies(root), left: await leftovers(root) }).toEqual({ problems: [], left: [] });
    } finally {
      if (!live.state.exited) {
        for (const l of await leaseFiles().catch(() => [] as string[])) process.kill(-Number(l.split('-')[0]), 'SIGKILL');
      }
      await live.done;
      await rm(waitCtx, { recursive: true, force: true });
      await rm(doomedCtx, { recursive: true, force: true });
    }
  });

  test('a process that exits leaving a snapshot and a temp dir keeps its lease, and the next command repairs', async () => {
    const root = store.root;
    // What an operation cut short and then exiting (not killed) leaves: the store's own calls.
    const script = [
      `import { Store } from ${JSON.stringify(join(REPO, 'dist/src/store/store.js'))};`,
      `const store = await Store.open({ root: ${JSON.stringify(root)} });`,
      'await store.prepare(undefined);',
      "await store.tempDir('cut-short');",
      'process.exit(0);',
    ].join('\n');
    const r = await runCli([], {}, undefined, ['--input-type=module', '-e', script]);
    expect({ code: r.code, output: r.output }).toEqual({ code: 0, output: '' });
    const left = await leftovers(root);
    expect(left.filter((l) => l.startsWith('lease '))).toHaveLength(1);
    expect(left.filter((l) => l.startsWith('temp dir tmp/cut-short-'))).toHaveLength(1);
    expect(left.filter((l) => l.startsWith('snapshot '))).toHaveLength(1);
    await ok(root, ['images']);
    expect(await leftovers(root)).toEqual([]);
  });

  // An atomic write's temp file lives for about an fsync, so a kill at a random moment seldom
  // finds one: the first kill of each case below waits for one to appear (inotify) and kills
  // then; the others come at random moments of the same work.
  test.each(['push', 'build'] as const)(
    'kill -9 of a %s while it writes its records, and at random moments: the next command leaves no .tmp- file anywhere',
    async (what) => {
      const root = store.root;
      const meta = join(root, 'image', driver);
      const distribution = join(meta, 'distribution', 'v2metadata-by-diffid', 'sha256');
      const watched = what === 'push' ? distribution : join(meta, 'buildcache');
      const argsFor = (n: number): string[] =>
        what === 'push'
          ? ['push', '--root', root, `${registry.host}/pushed${n}:1`]
          : ['build', '--root', root, '--build-arg', `NONCE=records${n}`, '-t', `app:records${n}`, ctx];
      /**
       * A new repository each time. Even rounds keep the blob records, so every layer is mounted
       * from the last repository and recorded again, with no temp dir of the push's own (the
       * case that left a `.tmp-` file: no lease, so no repair); odd rounds forget them, so every
       * layer is compressed, uploaded and recorded.
       */
      const prepare = async (n: number): Promise<void> => {
        if (what !== 'push') return;
        await ok(root, ['tag', 'app:v1', `${registry.host}/pushed${n}:1`]);
        if (n % 2 === 1)
          for (const f of await readdir(distribution).catch(() => [] as string[])) await rm(join(distribution, f), { force: true });
      };
      const cleanUp = async (n: number): Promise<void> => {
        await ok(root, ['rmi', what === 'push' ? `${registry.host}/pushed${n}:1` : `app:records${n}`]).catch(() => undefined);
      };
      await prepare(100);
      const full = await runCli(argsFor(100), env);
      if (full.code !== 0) throw new Error(`${what} failed before any kill:\n${full.output}`);
      await cleanUp(100);
      const report: string[] = [];
      for (let round = 0; round < 4; round++) {
        await prepare(round);
        await mkdir(watched, { recursive: true });
        const delay = Math.floor(random() * full.ms);
        const trigger =
          round === 0
            ? (kill: () => void) => {
                const watcher = watch(watched, (_event, name) => {
                  if (name?.startsWith('.tmp-')) kill();
                });
                return () => watcher.close();
              }
            : delay;
        const killed = await runCli(argsFor(round), env, trigger);
        report.push(`${what} round ${round}: ${killed.killed ? `killed after ${killed.ms} ms` : `ended first (exit ${killed.code})`}`);
        expect(await ok(root, ['images'])).toContain('app ');
        expect({ round, left: await leftovers(root), problems: await inconsistencies(root) }).toEqual({ round, left: [], problems: [] });
        await cleanUp(round);
      }
      process.stdout.write(`kill test (${driver}, seed ${SEED}):\n${report.join('\n')}\n`);
    },
  );

  // Temporary names carry their owner's PID only, and PIDs come round again (pid_max is 32768
  // here, and every Node process uses a dozen for its threads): a dead process's temp file
  // whose PID a live process had since been given was kept by every repair, and once the dead
  // lease that triggered the repair was gone, no later command looked again. The test hands the
  // PID out again as the kernel would, by setting the last PID it handed out (CRIU's way).
  test('a dead process’s .tmp- files and temp dirs go even when its PID now belongs to a live process', async () => {
    const root = store.root;
    const meta = join(root, 'image', driver);
    // The PID is chosen before the files are made (their names carry it) and taken three seconds
    // later; on a busy machine another process or thread may take it first: start over.
    let pid = 0;
    let temps: string[] = [];
    let dirs: string[] = [];
    let other: ChildProcess | undefined;
    for (let attempt = 0; attempt < 10 && other === undefined; attempt++) {
      pid = await unusedPid();
      temps = [
        join(meta, 'distribution', 'v2metadata-by-diffid', 'sha256', `.tmp-${'a'.repeat(64)}-${pid}-0123456789ab`),
        join(meta, 'buildcache', `.tmp-${'b'.repeat(64)}-${pid}-0123456789ab`),
        join(meta, `.tmp-repositories.json-${pid}-0123456789ab`),
      ];
      // And its temp dirs: a build's work dir (with files in it) and a layer write set.
      dirs = [join(root, 'tmp', `build-${pid}-Ab12Cd`), join(meta, 'layerdb', 'tmp', `write-set-${pid}-0123456789abcdef`)];
      for (const t of temps) {
        await mkdir(dirname(t), { recursive: true });
        await writeFile(t, '[]');
      }
      for (const d of dirs) {
        await mkdir(join(d, 'sub'), { recursive: true });
        await writeFile(join(d, 'sub', 'file'), 'x');
      }
      // The live process must have started over a second after the files changed (ownerGone's
      // slack), as /proc tells it: btime is whole seconds, so a start time read there may be up
      // to a second early. 1.5 s passed only when the machine had booted early in its second.
      await new Promise((r) => setTimeout(r, 3000));
      other = await spawnAs(pid);
      if (other === undefined) for (const f of [...temps, ...dirs]) await rm(f, { recursive: true, force: true });
    }
    if (other === undefined) throw new Error('could not start a process as a chosen PID in 10 tries');
    try {
      // The dead process's lease: its PID, with a start time that is not the live process's.
      await writeFile(join(root, 'leases', `${pid}-1`), '');
      expect(await leftovers(root)).toHaveLength(temps.length + dirs.length + 1);
      await ok(root, ['images']);
      expect(await leftovers(root)).toEqual([]);
    } finally {
      other.kill();
    }
  });

  /** Removes what a scenario added, so that the next round has the same work to do. */
  async function undo(scenario: Scenario, round: number): Promise<void> {
    const root = store.root;
    if (scenario === 'build') {
      await ok(root, ['rmi', `app:round${round}`]);
      return;
    }
    const ref = scenario === 'load' ? 'other:1' : `${registry.host}/pulled:1`;
    await ok(root, ['rmi', '-f', await imageId(root, ref)]);
    await ok(root, ['prune', '-f']);
  }
});
