// Medians, ratios, the targets (docs/performance.md explains each), and the tables. A peer that could not run a workload is
// shown with the reason, never left out; a target that cannot be judged (no peer time, no
// floor) is "not judged", which is not "met".
import type { Sample } from './measure.js';
import { PEER_IDS, ROOTLESS_IDS, type ToolId } from './tools.js';
import type { Kind } from './workloads.js';

export type Column = ToolId | 'floor';

export interface ToolResult {
  status: 'ok' | 'failed' | 'unsupported' | 'not started';
  reason?: string;
  warmup: Sample[];
  samples: Sample[];
  /** Medians of the successful runs; peakMB is the largest peak of any run. */
  median?: { wall: number; cpu?: number };
  peakMB?: number;
}

export interface WorkloadResult {
  id: string;
  title: string;
  kind: Kind;
  runs: number;
  floorWhat?: string;
  loadavg: { before: number[]; after: number[] };
  /** When the workload started, and how long it took with setup, warm-up and cleanup (s). */
  startedAt: string;
  seconds?: number;
  columns: Partial<Record<Column, ToolResult>>;
}

export interface Target {
  workload: string;
  what: string;
  value?: number;
  limit?: number;
  met: boolean | null;
  detail: string;
}

export function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1]! + s[m]!) / 2;
}

/** Fills in medians and the status from the samples. */
export function summarize(r: ToolResult): void {
  if (r.status !== 'ok') return;
  const good = r.samples.filter((s) => s.ok);
  const failed = r.samples.filter((s) => !s.ok);
  if (good.length === 0) {
    r.status = 'failed';
    r.reason ??= failed[0]?.error ?? 'no successful run';
    return;
  }
  if (failed.length) r.reason = `${failed.length} of ${r.samples.length} runs failed: ${failed[0]!.error ?? ''}`;
  const cpus = good.map((s) => s.cpu).filter((c): c is number => c !== undefined);
  const cpu = median(cpus);
  r.median = { wall: median(good.map((s) => s.wall))!, ...(cpu !== undefined ? { cpu } : {}) };
  const peaks = r.samples.map((s) => s.peakKiB).filter((p): p is number => p !== undefined);
  if (peaks.length) r.peakMB = (Math.max(...peaks) * 1024) / 1e6;
}

export const LABELS: Record<Column, string> = {
  tsbuild: 'tsbuild',
  classic: 'Docker classic',
  buildkit: 'Docker BuildKit',
  buildah: 'buildah',
  'tsbuild-rootless': 'tsbuild rootless',
  'buildah-rootless': 'buildah rootless',
  floor: 'floor',
};

function fastestPeer(w: WorkloadResult): { id: ToolId; wall: number } | undefined {
  let best: { id: ToolId; wall: number } | undefined;
  for (const id of PEER_IDS) {
    const m = w.columns[id]?.median;
    if (m && (!best || m.wall < best.wall)) best = { id, wall: m.wall };
  }
  return best;
}

export function evaluateTargets(results: readonly WorkloadResult[]): Target[] {
  const out: Target[] = [];
  const by = new Map(results.map((w) => [w.id, w]));
  const ts = (w: WorkloadResult | undefined): number | undefined => w?.columns.tsbuild?.median?.wall;
  for (const w of results) {
    const t = ts(w);
    const fast = fastestPeer(w);
    if (t === undefined) {
      out.push({
        workload: w.id,
        what: 'tsbuild ≤ 0.9 × fastest peer',
        met: null,
        detail: `tsbuild has no time: ${oneLine(w.columns.tsbuild?.reason ?? 'not run')}`,
      });
    } else if (!fast) {
      out.push({ workload: w.id, what: 'tsbuild ≤ 0.9 × fastest peer', met: null, detail: 'no peer completed this workload' });
    } else {
      const ratio = t / fast.wall;
      out.push({
        workload: w.id,
        what: 'tsbuild ≤ 0.9 × fastest peer',
        value: ratio,
        limit: 0.9,
        met: ratio <= 0.9,
        detail: `${fmtTime(t)} vs ${LABELS[fast.id]} ${fmtTime(fast.wall)}: ${ratio.toFixed(2)}×`,
      });
    }
    const floor = w.columns.floor?.median?.wall;
    // Issue 22's floors: W2 (on the bench's journaled ext4) ≤ 3 ×, W3 ≤ 1.2 ×, and CLI start
    // against Node.js starting alone ≤ 1.15 ×.
    const floorLimit = w.id === 'W2' ? 3 : w.id === 'W3' ? 1.2 : w.id === 'CLI' ? 1.15 : undefined;
    if (floorLimit !== undefined) {
      if (t === undefined || floor === undefined)
        out.push({ workload: w.id, what: `tsbuild ≤ ${floorLimit} × floor`, met: null, detail: 'no time for tsbuild or the floor' });
      else
        out.push({
          workload: w.id,
          what: `tsbuild ≤ ${floorLimit} × floor`,
          value: t / floor,
          limit: floorLimit,
          met: t / floor <= floorLimit,
          detail: `${fmtTime(t)} vs floor ${fmtTime(floor)}: ${(t / floor).toFixed(2)}×`,
        });
    }
    const absolute = w.id === 'W2c' ? 0.3 : w.id === 'CLI' ? 0.08 : undefined;
    if (absolute !== undefined) {
      out.push(
        t === undefined
          ? { workload: w.id, what: `tsbuild ≤ ${fmtTime(absolute)}`, met: null, detail: 'no time for tsbuild' }
          : { workload: w.id, what: `tsbuild ≤ ${fmtTime(absolute)}`, value: t, limit: absolute, met: t <= absolute, detail: fmtTime(t) },
      );
    }
    const peak = w.columns.tsbuild?.peakMB;
    if (w.kind !== 'cli') {
      out.push(
        peak === undefined
          ? { workload: w.id, what: 'tsbuild peak memory ≤ 150 MB', met: null, detail: 'not measured' }
          : {
              workload: w.id,
              what: 'tsbuild peak memory ≤ 150 MB',
              value: peak,
              limit: 150,
              met: peak <= 150,
              detail: `${peak.toFixed(0)} MB`,
            },
      );
    }
  }
  const small = ts(by.get('W5-1k'));
  const large = ts(by.get('W5-100k'));
  if (by.has('W5-1k') && by.has('W5-100k')) {
    out.push(
      small === undefined || large === undefined
        ? { workload: 'W5', what: 'W5 100,000-file base ≤ 1.1 × 1,000-file base', met: null, detail: 'a W5 time is missing' }
        : {
            workload: 'W5',
            what: 'W5 100,000-file base ≤ 1.1 × 1,000-file base',
            value: large / small,
            limit: 1.1,
            met: large / small <= 1.1,
            detail: `${fmtTime(large)} vs ${fmtTime(small)}: ${(large / small).toFixed(2)}×`,
          },
    );
  }
  return out;
}

export function fmtTime(s: number): string {
  if (s < 1) return `${(s * 1000).toFixed(0)} ms`;
  if (s < 100) return `${s.toFixed(2)} s`;
  return `${s.toFixed(0)} s`;
}

function cell(r: ToolResult | undefined, tsbuild: number | undefined, field: 'wall' | 'cpu', isPeer: boolean): string {
  if (!r) return isPeer ? 'not requested' : '';
  if (r.status === 'unsupported') return `n/a: ${r.reason}`;
  if (r.status === 'not started') return `did not start¹`;
  if (r.status === 'failed') return 'failed²';
  const v = field === 'wall' ? r.median?.wall : r.median?.cpu;
  if (v === undefined) return '—';
  const flag = r.reason ? '²' : '';
  if (isPeer && tsbuild !== undefined) return `${fmtTime(v)}${flag} (${(tsbuild / v).toFixed(2)})`;
  return `${fmtTime(v)}${flag}`;
}

/** The results as Markdown: times, CPU, targets, and the reasons behind every gap. */
export function renderMarkdown(results: readonly WorkloadResult[], targets: readonly Target[]): string {
  const lines: string[] = [];
  const cols: Column[] = ['tsbuild', ...PEER_IDS, 'floor'];
  const table = (field: 'wall' | 'cpu'): void => {
    lines.push(
      `| workload | ${cols.map((c) => LABELS[c]).join(' | ')} | tsbuild / fastest peer |${field === 'wall' ? ' tsbuild / floor | tsbuild peak RSS |' : ''}`,
    );
    lines.push(`|---|${cols.map(() => '---:').join('|')}|---:|${field === 'wall' ? '---:|---:|' : ''}`);
    for (const w of results) {
      const t = field === 'wall' ? w.columns.tsbuild?.median?.wall : w.columns.tsbuild?.median?.cpu;
      const peers = PEER_IDS.map((id) => ({ id, v: field === 'wall' ? w.columns[id]?.median?.wall : w.columns[id]?.median?.cpu })).filter(
        (p): p is { id: ToolId; v: number } => p.v !== undefined,
      );
      const fast = peers.sort((a, b) => a.v - b.v)[0];
      const vsPeer = t !== undefined && fast ? `**${(t / fast.v).toFixed(2)}** (${LABELS[fast.id]})` : '—';
      const floor = field === 'wall' ? w.columns.floor?.median?.wall : undefined;
      const vsFloor = t !== undefined && floor !== undefined ? (t / floor).toFixed(2) : '';
      const peak = w.columns.tsbuild?.peakMB;
      const extra = field === 'wall' ? ` ${vsFloor} | ${peak !== undefined ? `${peak.toFixed(0)} MB` : '—'} |` : '';
      lines.push(
        `| ${w.id} | ${cols.map((c) => cell(w.columns[c], t, field, c !== 'tsbuild' && c !== 'floor')).join(' | ')} | ${vsPeer} |${extra}`,
      );
    }
  };
  lines.push('Wall time, median of the measured runs; in parentheses tsbuild ÷ that peer (below 1: tsbuild is faster).', '');
  table('wall');
  lines.push(
    '',
    'CPU time (user + system) of everything the command caused, median; for Docker this includes the daemon and its containers.',
    '',
  );
  table('cpu');
  if (results.some((w) => ROOTLESS_IDS.some((id) => w.columns[id] !== undefined))) rootlessTable(results, lines);
  lines.push('', '### Targets', '');
  for (const t of targets)
    lines.push(`- ${t.met === true ? '✅ met' : t.met === false ? '❌ missed' : '⚪ not judged'} — ${t.workload}: ${t.what} — ${t.detail}`);
  const notes: string[] = [];
  for (const w of results) {
    for (const c of [...cols, ...ROOTLESS_IDS]) {
      const r = w.columns[c];
      if (r && r.reason && r.status !== 'unsupported') notes.push(`- ${w.id} ${LABELS[c]} (${r.status}): ${oneLine(r.reason)}`);
    }
  }
  if (notes.length) lines.push('', '### Failures', '', '¹ the tool could not be started; ² some or all runs failed:', '', ...notes);
  const floors = results.filter((w) => w.floorWhat).map((w) => `- ${w.id}: ${w.floorWhat}`);
  if (floors.length) lines.push('', '### Floors', '', ...floors);
  return `${lines.join('\n')}\n`;
}

/**
 * The rootless columns against rootful tsbuild and against each other: wall (CPU) medians and
 * the ratios, for the workloads they measure.
 */
function rootlessTable(results: readonly WorkloadResult[], lines: string[]): void {
  const both = (r: ToolResult | undefined): string => {
    if (!r) return 'not requested';
    if (r.status === 'unsupported') return `n/a: ${r.reason}`;
    if (r.status === 'not started') return 'did not start¹';
    if (r.status === 'failed' || !r.median) return 'failed²';
    return `${fmtTime(r.median.wall)}${r.reason ? '²' : ''} (CPU ${r.median.cpu !== undefined ? fmtTime(r.median.cpu) : '—'})`;
  };
  const ratio = (a: ToolResult | undefined, b: ToolResult | undefined): string => {
    const x = a?.median?.wall;
    const y = b?.median?.wall;
    return x !== undefined && y !== undefined ? `**${(x / y).toFixed(2)}**` : '—';
  };
  lines.push(
    '',
    '### Rootless',
    '',
    'As an ordinary user the run creates, with a subordinate ID range; wall time (CPU time), medians.',
    '',
    '| workload | tsbuild (root) | tsbuild rootless | buildah rootless | tsbuild rootless / tsbuild root | buildah rootless / tsbuild rootless |',
    '|---|---:|---:|---:|---:|---:|',
  );
  for (const w of results) {
    const c = w.columns;
    if (ROOTLESS_IDS.every((id) => c[id]?.status === 'unsupported')) continue;
    lines.push(
      `| ${w.id} | ${both(c.tsbuild)} | ${both(c['tsbuild-rootless'])} | ${both(c['buildah-rootless'])} | ${ratio(c['tsbuild-rootless'], c.tsbuild)} | ${ratio(c['buildah-rootless'], c['tsbuild-rootless'])} |`,
    );
  }
}

/** A failure's output on one line; its end, where the error is, when it is long. */
function oneLine(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > 400 ? `…${t.slice(-400)}` : t;
}
