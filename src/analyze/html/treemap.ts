// The report's treemap, drawn in the page by its own script from the tree embedded as JSON
// (../tree.ts). The functions here are that script: the report writes their source text into the
// page (Function.prototype.toString), so each is self-contained plain JavaScript once compiled,
// with no imports and no names from this module; what one needs from another comes in as a
// parameter, which also keeps a bundler's renaming out of the page. Every name from the image
// reaches the page through textContent or setAttribute, never as markup.
import type { TreeDir, TreeNode } from '../tree.js';

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * Squarified treemap (Bruls, Huizing and van Wijk, 2000): lays `values` (largest first, each > 0)
 * out in the rectangle, one row at a time along its shorter side, adding an item to the row
 * while that does not make the row's worst aspect ratio worse. Returns one rect per value.
 */
export function squarify(values: readonly number[], x: number, y: number, w: number, h: number): Rect[] {
  const total = values.reduce((a, b) => a + b, 0);
  const rects: Rect[] = [];
  if (total <= 0 || w <= 0 || h <= 0) return values.map(() => ({ x, y, w: 0, h: 0 }));
  const scale = (w * h) / total;
  const areas = values.map((v) => v * scale);
  const worst = (sum: number, max: number, min: number, side: number): number =>
    Math.max((side * side * max) / (sum * sum), (sum * sum) / (side * side * min));
  let i = 0;
  while (i < areas.length) {
    const side = Math.min(w, h);
    let sum = areas[i]!;
    let max = sum;
    let min = sum;
    let j = i + 1;
    while (j < areas.length) {
      const a = areas[j]!;
      if (worst(sum + a, Math.max(max, a), Math.min(min, a), side) > worst(sum, max, min, side)) break;
      sum += a;
      max = Math.max(max, a);
      min = Math.min(min, a);
      j++;
    }
    if (w >= h) {
      // The row is a column at the left.
      const cw = sum / h;
      let yy = y;
      for (let k = i; k < j; k++) {
        const rh = areas[k]! / cw;
        rects.push({ x, y: yy, w: cw, h: rh });
        yy += rh;
      }
      x += cw;
      w -= cw;
    } else {
      const rh = sum / w;
      let xx = x;
      for (let k = i; k < j; k++) {
        const rw = areas[k]! / rh;
        rects.push({ x: xx, y, w: rw, h: rh });
        xx += rw;
      }
      y += rh;
      h -= rh;
    }
    i = j;
  }
  return rects;
}

/** A directory being shown and the path to it: the treemap's zoom is a stack of these. */
interface Shown {
  readonly dir: TreeDir;
  readonly path: string;
}

/**
 * Draws the tree into the page's `<svg id="treemap">` (its viewBox gives the size): directories
 * as frames with their name, each file or group as a rect of its layer's colour (CSS class
 * `lN`), hatched when its bytes are wasted, with a tooltip saying what it is. A click on a
 * directory (or on something in it) zooms into it; the path above the map (`#crumbs`) zooms out.
 */
export function drawTreemap(doc: Document, tree: TreeDir, layout: typeof squarify, size: (bytes: number) => string): void {
  const svg = doc.getElementById('treemap')!;
  const crumbs = doc.getElementById('crumbs')!;
  const NS = 'http://www.w3.org/2000/svg';
  const box = svg.getAttribute('viewBox')!.split(' ').map(Number);
  const HEADER = 13;
  const PAD = 1.5;
  const el = (name: string, attrs: Record<string, string | number>, title?: string): Element => {
    const e = doc.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (title !== undefined) {
      const t = doc.createElementNS(NS, 'title');
      t.textContent = title;
      e.appendChild(t);
    }
    svg.appendChild(e);
    return e;
  };
  const label = (text: string, x: number, y: number, w: number, cls: string): void => {
    const fit = Math.floor((w - 4) / 6.2);
    if (fit < 3) return;
    const t = el('text', { x: x + 2, y, class: cls });
    t.textContent = text.length > fit ? `${text.slice(0, fit - 1)}…` : text;
  };
  const describe = (n: TreeNode, path: string): string => {
    if (n.kind === 'group') {
      return `${path}/ ${n.files} file${n.files === 1 ? '' : 's'} of layer ${n.layer}, ${size(n.bytes)}${n.hidden ? ' (wasted: hidden by later layers)' : ''}`;
    }
    if (n.kind === 'dir') return `${path || '/'} ${size(n.bytes)} in ${n.files} files, ${size(n.wastedBytes)} wasted`;
    const hidden = n.hidden ? ` (wasted: ${n.hidden.how} by layer ${n.hidden.layer})` : '';
    return `${path} ${size(n.bytes)}, layer ${n.layer}${hidden}`;
  };
  const draw = (n: TreeNode, path: string, r: { x: number; y: number; w: number; h: number }, stack: readonly Shown[]): void => {
    if (r.w < 0.5 || r.h < 0.5) return;
    // A click zooms into the directory it is in (a leaf's, or the frame's own).
    const zoom = (to: readonly Shown[]) => () => {
      if (to !== current) show(to);
    };
    if (n.kind !== 'dir') {
      const attrs: Record<string, string | number> = { x: r.x, y: r.y, width: r.w, height: r.h, class: `leaf l${n.layer}` };
      attrs['data-layer'] = n.layer;
      attrs['data-bytes'] = n.bytes;
      attrs['data-path'] = path;
      if (n.kind === 'group') attrs['data-files'] = n.files;
      const wasted = n.kind === 'group' ? n.hidden : n.hidden !== undefined;
      if (wasted) attrs['data-wasted'] = 'true';
      el('rect', attrs, describe(n, path)).addEventListener('click', zoom(stack));
      if (wasted) el('rect', { x: r.x, y: r.y, width: r.w, height: r.h, class: 'hatch' });
      if (n.kind === 'file' && r.h > 11) label(n.name, r.x, r.y + 10, r.w, 'name');
      return;
    }
    let inner = r;
    let inside = stack;
    if (n !== stack[stack.length - 1]!.dir) {
      inside = [...stack, { dir: n, path }];
      el('rect', { x: r.x, y: r.y, width: r.w, height: r.h, class: 'dir', 'data-path': `${path}/` }, describe(n, path)).addEventListener(
        'click',
        zoom(inside),
      );
      const header = r.h > HEADER * 2 && r.w > 30 ? HEADER : 0;
      if (header) label(`${n.name}/`, r.x, r.y + 10, r.w, 'dirname');
      inner = { x: r.x + PAD, y: r.y + header + PAD, w: r.w - 2 * PAD, h: r.h - header - 2 * PAD };
    }
    const kids = n.children.filter((c) => c.bytes > 0);
    const rects = layout(
      kids.map((c) => c.bytes),
      inner.x,
      inner.y,
      inner.w,
      inner.h,
    );
    kids.forEach((c, i) => draw(c, c.kind === 'group' ? path : `${path}/${c.name}`, rects[i]!, inside));
  };
  let current: readonly Shown[] = [];
  const show = (stack: readonly Shown[]): void => {
    current = stack;
    for (const e of [...svg.children]) if (e.tagName !== 'defs') e.remove();
    crumbs.replaceChildren();
    stack.forEach((s, i) => {
      const b = doc.createElement('button');
      b.textContent = i === 0 ? '/' : `${s.dir.name}/`;
      b.disabled = i === stack.length - 1;
      b.addEventListener('click', () => show(stack.slice(0, i + 1)));
      crumbs.appendChild(b);
    });
    const top = stack[stack.length - 1]!;
    draw(top.dir, top.path, { x: box[0]!, y: box[1]!, w: box[2]!, h: box[3]! }, stack);
  };
  show([{ dir: tree, path: '' }]);
}
