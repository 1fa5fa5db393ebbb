// The pieces of `analyze --html` that need no browser: the capped file tree, the squarified
// layout, and the page's escaping of names that are markup, script closers or not UTF-8 at all
// (test/analyze/html.test.ts opens real pages in Chromium).
import type { Digest } from '../../../src/digest.js';
import { evaluateCi, DEFAULT_THRESHOLDS } from '../../../src/analyze/ci.js';
import { esc, renderHtmlReport } from '../../../src/analyze/html/report.js';
import { squarify } from '../../../src/analyze/html/treemap.js';
import type { LayerEntry, StoredEntry } from '../../../src/analyze/entries.js';
import { Replay } from '../../../src/analyze/replay.js';
import { fileTree, type TreeNode } from '../../../src/analyze/tree.js';
import type { ImageAnalysis } from '../../../src/analyze/types.js';

function file(path: string, bytes: number): StoredEntry {
  return { kind: 'file', path, bytes, fingerprint: `${bytes}:${path}`, mode: 0o644, uid: 0, gid: 0, linkTarget: undefined };
}

function replay(...layers: LayerEntry[][]): Replay {
  const r = new Replay();
  for (const l of layers) r.apply(l);
  return r;
}

function nodes(n: TreeNode): number {
  return 1 + (n.kind === 'dir' ? n.children.reduce((s, c) => s + nodes(c), 0) : 0);
}

function sumsHold(n: TreeNode): boolean {
  return n.kind !== 'dir' || (n.children.reduce((s, c) => s + c.bytes, 0) === n.bytes && n.children.every(sumsHold));
}

describe('fileTree', () => {
  test('every copy, visible or hidden, with its layer; a deleted file is marked with what hid it', () => {
    const r = replay([file('big', 1000), file('etc/a', 500)], [{ kind: 'whiteout', path: 'big' }, file('etc/a', 600)]);
    const tree = fileTree(r.layers);
    expect(tree.bytes).toBe(2100);
    expect(tree.wastedBytes).toBe(1500);
    expect(tree.children).toContainEqual({ kind: 'file', name: 'big', bytes: 1000, layer: 0, hidden: { layer: 1, how: 'deleted' } });
    const etc = tree.children.find((c) => c.kind === 'dir' && c.name === 'etc');
    expect(etc).toMatchObject({ bytes: 1100, wastedBytes: 500, files: 2 });
  });

  test('20,000 files stay within the node budget, bytes adding up at every level', () => {
    const layer: StoredEntry[] = [];
    for (let d = 0; d < 200; d++) for (let f = 0; f < 100; f++) layer.push(file(`usr/d${d}/f${f}`, 100 + ((d * 7 + f) % 50)));
    layer.push(file('usr/huge', 5_000_000));
    const tree = fileTree(replay(layer).layers, { maxNodes: 300 });
    expect(nodes(tree)).toBeLessThanOrEqual(300);
    expect(sumsHold(tree)).toBe(true);
    expect(tree.files).toBe(20_001);
    const usr = tree.children.find((c) => c.kind === 'dir' && c.name === 'usr');
    expect(usr?.kind === 'dir' && usr.children[0]).toMatchObject({ kind: 'file', name: 'huge', bytes: 5_000_000 });
  });

  test('files too small to see are grouped per layer and per wasted or not', () => {
    const tiny = Array.from({ length: 50 }, (_, i) => file(`d/t${i}`, 1));
    const r = replay([...tiny, file('d/big', 1_000_000)], [{ kind: 'whiteout', path: 'd/t0' }]);
    const d = fileTree(r.layers).children[0]!;
    expect(d.kind === 'dir' && d.children).toEqual([
      { kind: 'file', name: 'big', bytes: 1_000_000, layer: 0 },
      { kind: 'group', files: 49, bytes: 49, layer: 0, hidden: false },
      { kind: 'group', files: 1, bytes: 1, layer: 0, hidden: true },
    ]);
  });
});

describe('squarify', () => {
  test('fills the rectangle: areas follow the values, inside it, without overlaps', () => {
    const values = [500, 300, 120, 80, 80, 40, 20, 10, 5, 1];
    const rects = squarify(values, 10, 20, 600, 300);
    const total = values.reduce((a, b) => a + b, 0);
    rects.forEach((r, i) => {
      expect(r.w * r.h).toBeCloseTo((values[i]! / total) * 600 * 300, 6);
      expect(r.x).toBeGreaterThanOrEqual(10 - 1e-9);
      expect(r.y).toBeGreaterThanOrEqual(20 - 1e-9);
      expect(r.x + r.w).toBeLessThanOrEqual(610 + 1e-9);
      expect(r.y + r.h).toBeLessThanOrEqual(320 + 1e-9);
    });
    for (const [i, a] of rects.entries()) {
      for (const b of rects.slice(i + 1)) {
        const overlap =
          Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x) > 1e-6 && Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y) > 1e-6;
        expect(overlap).toBe(false);
      }
    }
    // Squarified: no sliver worse than 1:4 for these values.
    for (const r of rects.slice(0, 6)) expect(Math.max(r.w / r.h, r.h / r.w)).toBeLessThan(4);
  });
});

describe('the page', () => {
  const LONE = '/bad\udc80name';
  const CLOSER = '/a</script><script>alert(1)</script>';
  const analysis: ImageAnalysis = {
    id: `sha256:${'a'.repeat(64)}` as Digest,
    tags: ['x<y>:latest'],
    size: 10,
    userSize: 10,
    storedBytes: 10,
    wastedBytes: 4,
    userWastedBytes: 4,
    userWastedPercent: 0.4,
    userCacheBytes: 0,
    efficiency: 0.6,
    layers: [],
    inefficientPaths: [{ path: CLOSER, count: 1, storedBytes: 4, wastedBytes: 4, layers: [0], removedBy: 1 }],
    hints: [],
    notes: [`a note about ${LONE} & "quotes"`],
  };

  test('names are escaped in the markup and round-trip exactly through the embedded JSON', () => {
    const ci = evaluateCi(analysis, DEFAULT_THRESHOLDS);
    const tree = fileTree(replay([file(CLOSER.slice(1), 6), file(LONE.slice(1), 4)]).layers);
    const html = renderHtmlReport({ analysis, ci, tree });
    const scripts = [...html.matchAll(/<script type="application\/json" id="(\w+)">(.*?)<\/script>/gs)];
    expect(scripts.map((m) => m[1])).toEqual(['analysis', 'tree']);
    expect(JSON.parse(scripts[0]![2]!)).toEqual({ ...analysis, ci });
    expect(JSON.parse(scripts[1]![2]!)).toEqual(tree);
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('/a&#60;/script&#62;&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(html).toContain('<h1>x&#60;y&#62;:latest</h1>');
    expect(html).toContain('/bad\ufffdname &#38; &#34;quotes&#34;');
    // Nothing of the page is left a lone surrogate, which UTF-8 cannot hold.
    expect(html).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
  });

  test('esc', () => {
    expect(esc(`<a href='x'>&"`)).toBe('&#60;a href=&#39;x&#39;&#62;&#38;&#34;');
    expect(esc('\ud83d\ude00 ok \ud800')).toBe('\ud83d\ude00 ok \ufffd');
  });
});
