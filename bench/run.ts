// `npm run bench`: the workloads (lib/workloads.ts) with tsbuild and, in the same run, with the peers it
// starts itself (Docker Engine's classic builder and BuildKit on a private dockerd, buildah with
// its own root), all from the same busybox archive. A warm-up, then N runs per tool, the tools
// taking turns so that a change in the machine's load hits them alike; medians, ratios,
// floors, the targets (lib/report.ts); raw results as JSON in bench/results/. Not a test: the numbers
// depend on the machine. See docs/performance.md.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { TreeStats } from './lib/inputs.js';
import { describeMachine, describeRevision } from './lib/machine.js';
import { Aborted, capture, checkAborted, measure, run, type Command, type Sample } from './lib/measure.js';
import {
  evaluateTargets,
  fmtTime,
  LABELS,
  renderMarkdown,
  summarize,
  type Column,
  type ToolResult,
  type WorkloadResult,
} from './lib/report.js';
import { startRegistry } from './lib/registry.js';
import { Session } from './lib/session.js';
import {
  cliEntry,
  isUnsupported,
  makeTools,
  PEER_IDS,
  ROOTLESS_IDS,
  snapshotTsbuild,
  TsbuildTool,
  type Tool,
  type ToolId,
} from './lib/tools.js';
import { selectWorkloads, type Workload, type WorkloadEnv } from './lib/workloads.js';
import { currentNode, resolveNode, type NodeRuntime } from './lib/node-lines.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url)).replace(/\/$/, '');
const COMMAND_TIMEOUT_MS = 30 * 60_000;

const USAGE = `Usage: npm run bench -- [OPTIONS]

Runs the workloads with tsbuild and the peers, prints the table and writes
bench/results/latest.{json,md} (and a run-<time>.json that git ignores).

  --runs N          measured runs per light workload (default 5)
  --heavy-runs N    measured runs of W2, W3, W5-100k, W6, W7 (default 3)
  --cli-runs N      measured runs of CLI start (default 20)
  --warmup N        unmeasured runs before them (default 1; CLI start: 3)
  --only LIST       workloads, comma-separated: CLI,W1,W2,W2c,W3,W5,W5-1k,W5-100k,W6,W6-100,W7,
                    W7-save,W7-push-gzip,W7-push-zstd,W8,W9,W9-hit,
                    W9-change,W10 (default: all)
  --peers LIST      classic,buildkit,buildah (default: all three; "none" for tsbuild alone);
                    "rootless" adds tsbuild and buildah bud as an ordinary user the run
                    creates (W1, W2, W3 only; tsbuild-rootless or buildah-rootless for one)
  --rev REV         measure tsbuild as committed at REV (built in a scratch checkout)
                    instead of the working tree's build
  --node LIST       run tsbuild on each of these Node.js lines in turn, a table each:
                    majors (22,24,26: the npm registry's node package, installed once
                    into ~/.cache/tsbuild-bench/node) or paths to node (default: the node
                    running the bench; the rootless columns always use that one)
  --seed S          seed of the generated inputs (default tsbuild-bench-1)
  --work-dir DIR    where the scratch directory goes (default: a journaled ext4 made for
                    the run, a loop-mounted image in $TMPDIR or /tmp, removed at the end)
  --out DIR         results directory (default bench/results)
  --cpu-prof DIR    run tsbuild with node --cpu-prof, profiles into DIR (slower: for finding
                    hot spots, not for the table)
  --keep            keep the scratch directory (inputs, stores, logs)
  --doc FILE        also write the run (machine, versions, tables, targets) into FILE
                    between its <!-- bench:begin --> and <!-- bench:end --> lines
                    (docs/performance.md), or at its end when it has none
`;

interface Options {
  runs: number;
  heavyRuns: number;
  cliRuns: number;
  warmup: number;
  only: string | undefined;
  peers: ToolId[];
  rev: string | undefined;
  node: string[];
  seed: string;
  /** Undefined: a journaled ext4 made for the run in the temp directory (lib/workfs.ts). */
  workDir: string | undefined;
  out: string;
  cpuProf: string | undefined;
  keep: boolean;
  doc: string | undefined;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      'heavy-runs': { type: 'string' },
      'cli-runs': { type: 'string' },
      warmup: { type: 'string' },
      only: { type: 'string' },
      peers: { type: 'string' },
      rev: { type: 'string' },
      node: { type: 'string' },
      seed: { type: 'string' },
      'work-dir': { type: 'string' },
      out: { type: 'string' },
      'cpu-prof': { type: 'string' },
      keep: { type: 'boolean' },
      doc: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const count = (v: string | undefined, def: number, min: number): number => {
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`expected an integer ≥ ${min}, got ${v}`);
    return n;
  };
  const named = values.peers === undefined ? [...PEER_IDS] : values.peers === 'none' ? [] : values.peers.split(',').map((p) => p.trim());
  const peers = [...new Set(named.flatMap((p) => (p === 'rootless' ? [...ROOTLESS_IDS] : [p])))];
  const known = [...PEER_IDS, ...ROOTLESS_IDS];
  for (const p of peers) if (!known.includes(p as ToolId)) throw new Error(`unknown peer ${p} (known: ${known.join(', ')}, rootless)`);
  return {
    runs: count(values.runs, 5, 1),
    heavyRuns: count(values['heavy-runs'], 3, 1),
    cliRuns: count(values['cli-runs'], 20, 1),
    warmup: count(values.warmup, 1, 0),
    only: values.only,
    peers: peers as ToolId[],
    rev: values.rev,
    node: values.node === undefined ? [] : values.node.split(',').map((n) => n.trim()),
    seed: values.seed ?? 'tsbuild-bench-1',
    workDir: values['work-dir'] === undefined ? undefined : resolve(values['work-dir']),
    out: resolve(values.out ?? join(REPO, 'bench', 'results')),
    cpuProf: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    keep: values.keep === true,
    doc: values.doc === undefined ? undefined : resolve(values.doc),
  };
}

function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** Builds tsbuild as committed at `rev` in `dir` (git archive, tsc, the bundle, the helper), for --rev. */
async function buildRevision(rev: string, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const archive = spawnSync('sh', ['-c', `git -C '${REPO}' archive --format=tar '${rev}' | tar -x -C '${dir}'`], { stdio: 'inherit' });
  if (archive.status !== 0) throw new Error(`git archive ${rev} failed`);
  await symlink(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  for (const argv of [
    [process.execPath, join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'],
    // The CLI's bundle, in revisions that have it: without it the revision ran tsc's ~180
    // modules, ~100 ms slower to start than the working tree's bundle it was compared with.
    ...(existsSync(join(dir, 'scripts', 'bundle.mjs')) ? [[process.execPath, join(dir, 'scripts', 'bundle.mjs')]] : []),
    [process.execPath, join(dir, 'native', 'build.mjs')],
  ]) {
    const r = spawnSync(argv[0]!, argv.slice(1), { cwd: dir, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`building ${rev}: ${argv.slice(1).join(' ')} failed`);
  }
}

class Runner {
  readonly inputs: Record<string, TreeStats> = {};
  readonly env: WorkloadEnv;

  constructor(
    private readonly session: Session,
    private readonly opts: Options,
    private readonly tools: Tool[],
    floorCgroup: string | undefined,
    baseArchive: string,
  ) {
    const tsbuild = tools.find((t): t is TsbuildTool => t instanceof TsbuildTool);
    if (!tsbuild) throw new Error('no tsbuild among the tools');
    const log = (tool: string): string => session.path('logs', `${tool}.log`);
    this.env = {
      session,
      seed: opts.seed,
      floorCgroup,
      untimed: (tool, cmd) => run(cmd, { logFile: log(tool), timeoutMs: COMMAND_TIMEOUT_MS }),
      startRegistry: () => startRegistry(session),
      tsbuild: (root, command, args) => tsbuild.at(root, command, args),
      node: () => tsbuild.node.path,
      baseArchive,
      note: (id, stats) => {
        this.inputs[id] = stats;
      },
    };
  }

  private runsOf(w: Workload): { runs: number; warmup: number } {
    if (w.kind === 'cli') return { runs: this.opts.cliRuns, warmup: Math.max(this.opts.warmup, 3) };
    return { runs: w.kind === 'heavy' ? this.opts.heavyRuns : this.opts.runs, warmup: this.opts.warmup };
  }

  /** One run of one column; undefined when the tool cannot do this workload (recorded by the caller). */
  private async once(w: Workload, column: Column, i: number): Promise<Sample | { unsupported: string }> {
    const tool = this.tools.find((t) => t.id === column);
    let spec;
    try {
      spec = tool ? await w.spec(tool, this.env, i) : await w.floor!.spec(this.env, i);
    } catch (err) {
      if (err instanceof Aborted) throw err;
      return { ok: false, wall: 0, error: `preparing the run: ${(err as Error).message}` };
    }
    if (isUnsupported(spec.command)) return spec.command;
    // Each run starts with nothing left to write back: what a setup, a cleanup or the previous
    // tool wrote (a 100,000-file base, a removed image) is written out now, untimed, rather than
    // by the kernel's flusher during the next tool's run, or by that tool's own sync (an
    // overlay's unmount syncs its whole upper filesystem).
    await capture(['sync']);
    try {
      return await measure(spec.command as Command, {
        logFile: this.session.path('logs', `${column}.log`),
        // Not for CLI start: no memory target, and GNU time's exec would be in its time.
        memory: tool?.pollMemory === true && w.kind !== 'cli',
        timeoutMs: COMMAND_TIMEOUT_MS,
      });
    } finally {
      await spec.after?.().catch((err: Error) => say(`  (cleanup after ${column}: ${err.message})`));
    }
  }

  async workload(w: Workload): Promise<WorkloadResult> {
    const { runs, warmup } = this.runsOf(w);
    const result: WorkloadResult = {
      id: w.id,
      title: w.title,
      kind: w.kind,
      runs,
      ...(w.floor ? { floorWhat: w.floor.what } : {}),
      loadavg: { before: os.loadavg(), after: [] },
      startedAt: new Date().toISOString(),
      columns: {},
    };
    say(
      `\n== ${w.id}: ${w.title} (${warmup} warm-up, ${runs} runs; load ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')})`,
    );
    const fresh = (): ToolResult => ({ status: 'ok', warmup: [], samples: [] });
    checkAborted();
    try {
      await w.prepare?.(this.env);
    } catch (err) {
      // Stopped while generating inputs: the scratch directory went away under the writer.
      checkAborted();
      if (err instanceof Aborted) throw err;
      for (const t of this.tools)
        result.columns[t.id] = { ...fresh(), status: 'failed', reason: `generating inputs: ${(err as Error).message}` };
      return result;
    }
    const active: Column[] = [];
    for (const t of this.tools) {
      const r = (result.columns[t.id] = fresh());
      if (t.failure !== undefined) {
        r.status = 'not started';
        r.reason = t.failure;
        continue;
      }
      if (t.workloads !== undefined && !t.workloads.includes(w.id)) {
        r.status = 'unsupported';
        r.reason = `measured for ${t.workloads.join(', ')} only`;
        continue;
      }
      try {
        await t.adoptInputs?.();
        await w.setup?.(t, this.env);
        active.push(t.id);
      } catch (err) {
        if (err instanceof Aborted) throw err;
        r.status = 'failed';
        r.reason = `setup: ${(err as Error).message}`;
        say(`  ${LABELS[t.id]}: setup failed: ${headAndTail((err as Error).message)}`);
      }
    }
    if (w.floor) {
      result.columns.floor = fresh();
      active.push('floor');
    }
    const record = (column: Column, s: Sample | { unsupported: string }, into: 'warmup' | 'samples', label: string): boolean => {
      const r = result.columns[column]!;
      if ('unsupported' in s) {
        r.status = 'unsupported';
        r.reason = s.unsupported;
        return false;
      }
      r[into].push(s);
      const extra = `${s.cpu !== undefined ? `  cpu ${fmtTime(s.cpu)}` : ''}${s.peakKiB !== undefined ? `  peak ${((s.peakKiB * 1024) / 1e6).toFixed(0)} MB` : ''}`;
      say(
        `  ${label.padEnd(10)} ${LABELS[column].padEnd(16)} ${s.ok ? fmtTime(s.wall).padStart(9) : 'FAILED'.padStart(9)}${extra}${s.ok ? '' : `\n${indent(s.error ?? '')}`}`,
      );
      if (!s.ok && into === 'warmup') {
        // A tool that fails its warm-up would fail its runs too: say why once, move on.
        r.status = 'failed';
        r.reason = `warm-up failed: ${s.error ?? ''}`;
        return false;
      }
      return true;
    };
    let columns = active;
    for (let k = 0; k < warmup; k++) {
      const still: Column[] = [];
      for (const c of columns) if (record(c, await this.once(w, c, -1 - k), 'warmup', `warm-up`)) still.push(c);
      columns = still;
    }
    for (let i = 0; i < runs; i++) {
      // Rotate the order each run, so that no tool always follows the same one.
      const order = columns.map((_, j) => columns[(i + j) % columns.length]!);
      const still = new Set(columns);
      for (const c of order) if (!record(c, await this.once(w, c, i), 'samples', `run ${i + 1}/${runs}`)) still.delete(c);
      columns = columns.filter((c) => still.has(c));
    }
    for (const r of Object.values(result.columns)) summarize(r);
    for (const t of this.tools) {
      if (t.failure !== undefined || !w.removes || (t.workloads !== undefined && !t.workloads.includes(w.id))) continue;
      // A failed build leaves no image to remove: then rmi fails, and prune still runs.
      const refs = w.removes(t);
      for (const c of [...(refs.length ? [t.rmi(refs)] : []), ...t.pruneAll()]) {
        await this.env.untimed(t.id, c).catch((err: Error) => {
          if (err instanceof Aborted) throw err;
          say(`  (${LABELS[t.id]}: removing this workload's images: ${err.message.split('\n')[0]})`);
        });
      }
    }
    result.loadavg.after = os.loadavg();
    result.seconds = Math.round((Date.now() - Date.parse(result.startedAt)) / 100) / 10;
    say(`  (${w.id}: ${result.seconds} s with setup and cleanup)`);
    return result;
  }
}

/**
 * A failed command's message on one line: its first line (the command and its exit) and, when
 * there is more, its last (what the tool said last, usually why).
 */
function headAndTail(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.length > 1 ? `${lines[0]} … ${lines.at(-1)}` : (lines[0] ?? '');
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `      | ${l}`)
    .join('\n');
}

const BEGIN = '<!-- bench:begin -->';
const END = '<!-- bench:end -->';

/** What was measured, on what, when, with which command: the head of the table in the docs. */
function renderRun(
  report: {
    startedAt: string;
    finishedAt: string;
    machine: Awaited<ReturnType<typeof describeMachine>>;
    loadavgAtEnd: number[];
    tsbuild: { commit: string; modified: string[]; source: string };
    tools: Record<string, { started: boolean; version?: string; error?: string }>;
  },
  argv: readonly string[],
): string {
  const m = report.machine;
  const minutes = (Date.parse(report.finishedAt) - Date.parse(report.startedAt)) / 60_000;
  const versions = Object.entries(report.tools).map(
    ([id, t]) => `${LABELS[id as Column]}: ${t.started ? t.version : `not run (${oneLine(t.error ?? '')})`}`,
  );
  return [
    `Run of ${report.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}, ${minutes.toFixed(0)} minutes: \`npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}\``,
    '',
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; ${m.os}, Linux ${m.kernel}, cgroup ${m.cgroups}; work directory on ${m.workFs}`,
    `- Load average (1, 5, 15 min) at the start ${m.loadavg.join(', ')}, at the end ${report.loadavgAtEnd.map((l) => l.toFixed(2)).join(', ')}`,
    `- tsbuild ${report.tsbuild.commit.slice(0, 12)} (${report.tsbuild.source}${report.tsbuild.modified.length ? `, modified: ${report.tsbuild.modified.join(', ')}` : ''}) on Node ${m.node}`,
    ...versions.map((v) => `- ${v}`),
    '',
    '',
  ].join('\n');
}

function oneLine(text: string): string {
  return text.split('\n')[0]!.slice(0, 200);
}

/** Replaces FILE's bench block (or appends one) with `body`. */
async function writeDoc(file: string, body: string): Promise<void> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const block = `${BEGIN}\n${body.trimEnd()}\n${END}`;
  const b = text.indexOf(BEGIN);
  const e = text.indexOf(END);
  const next =
    b !== -1 && e > b
      ? text.slice(0, b) + block + text.slice(e + END.length)
      : `${text}${text && !text.endsWith('\n') ? '\n' : ''}${block}\n`;
  await writeFile(file, next);
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const workloads = selectWorkloads(opts.only);
  if (process.getuid?.() !== 0) throw new Error('the bench needs root (mounts, namespaces, dockerd, cgroups)');
  const session = await Session.create(opts.workDir ?? os.tmpdir(), opts.keep, opts.workDir === undefined);
  session.trapSignals();
  // Temporary directories made by the tools and their helpers go into the scratch dir.
  process.env.TMPDIR = session.dir;
  const startedAt = new Date();
  say(`bench: scratch directory ${session.dir}`);
  try {
    let source = REPO;
    if (opts.rev !== undefined) {
      source = session.path('checkout');
      say(`bench: building tsbuild at ${opts.rev}`);
      await buildRevision(opts.rev, source);
    }
    await access(cliEntry(source)).catch(() => {
      throw new Error(`${cliEntry(source)} is missing: run npm run build (npm run bench does)`);
    });
    const app = session.path('tsbuild-app');
    // The revision is read when the snapshot is taken: commits made during a long run are not in it.
    const revision = describeRevision(REPO, opts.rev);
    await snapshotTsbuild(source, app);
    const lines: NodeRuntime[] = [];
    for (const spec of opts.node) lines.push(await resolveNode(spec, say));
    if (lines.length === 0) lines.push(currentNode());
    if (opts.cpuProf) await mkdir(opts.cpuProf, { recursive: true });
    const baseArchive = session.path('busybox.tar');
    const tools = makeTools(
      { session, baseArchive, log: (t) => session.path('logs', `${t}.log`) },
      app,
      opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', opts.cpuProf] : [],
      opts.peers,
    );
    const tsbuild = tools.find((t): t is TsbuildTool => t instanceof TsbuildTool)!;
    tsbuild.node = lines[0]!;
    for (const t of tools) {
      try {
        await t.start();
        say(`bench: ${LABELS[t.id]}: ${t.version}`);
      } catch (err) {
        if (t.id === 'tsbuild' || err instanceof Aborted) throw err;
        t.failure = (err as Error).message;
        say(`bench: ${LABELS[t.id]} could not be started: ${t.failure.split('\n')[0]}`);
      }
    }
    for (const id of PEER_IDS) if (!opts.peers.includes(id)) say(`bench: ${LABELS[id]} not requested (--peers)`);
    const machine = { ...(await describeMachine(session.dir)), node: lines.map((n) => n.version).join(', ') };
    const floorCgroup = await session.cgroup('floor');
    // Each Node.js line gets the whole set of workloads, the peers measured again beside it:
    // its ratios are those of tools measured in turn under the same load.
    const byNode: { node: string; workloads: WorkloadResult[]; targets: ReturnType<typeof evaluateTargets> }[] = [];
    let inputs: Record<string, TreeStats> = {};
    for (const node of lines) {
      tsbuild.node = node;
      if (lines.length > 1) say(`\n=== tsbuild on Node.js ${node.version} (${node.path})`);
      const runner = new Runner(session, opts, tools, floorCgroup, baseArchive);
      const results: WorkloadResult[] = [];
      for (const w of workloads) results.push(await runner.workload(w));
      byNode.push({ node: node.version, workloads: results, targets: evaluateTargets(results) });
      inputs = { ...inputs, ...runner.inputs };
    }
    await session.close();
    for (const p of session.problems) say(`bench: ${p}`);

    // One line: the table as before. Several: a section per line, the first one's also as the
    // report's own workloads and targets.
    const first = byNode[0]!;
    const targets = first.targets;
    const markdown =
      byNode.length === 1
        ? renderMarkdown(first.workloads, first.targets)
        : byNode.map((b) => `## tsbuild on Node.js ${b.node}\n\n${renderMarkdown(b.workloads, b.targets)}`).join('\n');
    const report = {
      schema: 1,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      machine,
      loadavgAtEnd: os.loadavg(),
      tsbuild: revision,
      options: { ...opts, out: undefined, workDir: undefined },
      tools: Object.fromEntries([
        ...tools.map(
          (t) => [t.id, t.failure !== undefined ? { started: false, error: t.failure } : { started: true, version: t.version }] as const,
        ),
        ...PEER_IDS.filter((id) => !opts.peers.includes(id)).map(
          (id) => [id, { started: false, error: 'not requested (--peers)' }] as const,
        ),
      ]),
      inputs,
      workloads: first.workloads,
      targets,
      ...(byNode.length > 1 ? { byNode } : {}),
      problems: session.problems,
    };
    await mkdir(opts.out, { recursive: true });
    const json = `${JSON.stringify(report, null, 2)}\n`;
    const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
    await writeFile(join(opts.out, `run-${stamp}.json`), json);
    await writeFile(join(opts.out, 'latest.json'), json);
    await writeFile(join(opts.out, 'latest.md'), markdown);
    await copyFile(join(opts.out, 'latest.md'), join(opts.out, `run-${stamp}.md`));
    if (opts.doc !== undefined) {
      await writeDoc(opts.doc, renderRun(report, process.argv.slice(2)) + markdown);
      say(`bench: wrote the run into ${opts.doc}`);
    }
    process.stdout.write(`\n${markdown}`);
    say(`\nbench: results in ${join(opts.out, 'latest.json')} and latest.md`);
    for (const b of byNode) {
      const missed = b.targets.filter((t) => t.met !== true).length;
      say(`bench: ${b.targets.length - missed} of ${b.targets.length} targets met${byNode.length > 1 ? ` on Node.js ${b.node}` : ''}`);
    }
    return 0;
  } finally {
    await session.close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof Aborted) return; // the signal handler reports and exits
    say(`bench: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 1;
  },
);
