// Summarizes V8 CPU profiles (node --cpu-prof, as `npm run bench -- --cpu-prof DIR` writes
// them): where the samples fell, by function and by module, self time only.
//
//   node dist/bench/bench/profile-summary.js [--top N] FILE.cpuprofile...
//
// Several files are added together (e.g. every run of one workload).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** A short name for where code lives: a package, a tsbuild folder, node's internals. */
function moduleOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/dist\/((?:src|cli)\/[^/]+)/.exec(url);
  if (own) return own[1]!;
  return url.replace(/^file:\/\//, '');
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\/.*?\/dist\//, '').replace(/^file:\/\/.*\/node_modules\//, '');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({ options: { top: { type: 'string' } }, allowPositionals: true });
  const top = Number(values.top ?? 25);
  if (positionals.length === 0) throw new Error('usage: profile-summary [--top N] FILE.cpuprofile...');
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  let total = 0;
  let wall = 0;
  for (const file of positionals) {
    const p = JSON.parse(await readFile(file, 'utf8')) as Profile;
    wall += (p.endTime - p.startTime) / 1000;
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const dt = (p.timeDeltas[i] ?? 0) / 1000; // µs → ms
      const f = nodes.get(id)!.callFrame;
      const key = `${f.functionName || '(anonymous)'}  ${f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : ''}`.trim();
      byFunction.set(key, (byFunction.get(key) ?? 0) + dt);
      const m = moduleOf(f.url, f.functionName);
      byModule.set(m, (byModule.get(m) ?? 0) + dt);
      total += dt;
    });
  }
  const print = (title: string, map: Map<string, number>): void => {
    process.stdout.write(`\n${title}\n`);
    for (const [k, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      process.stdout.write(`${v.toFixed(0).padStart(8)} ms ${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}\n`);
    }
  };
  process.stdout.write(`${positionals.length} profile(s), ${wall.toFixed(0)} ms profiled, ${total.toFixed(0)} ms in samples\n`);
  print('Self time by module', byModule);
  print('Self time by function', byFunction);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exitCode = 1;
});
