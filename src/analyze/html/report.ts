// `tsbuild analyze --html FILE`: the analysis as one self-contained page to attach to a CI run.
// Everything is inline (styles, the treemap's script, the data) and a Content-Security-Policy
// forbids any load, so the page shows the same offline, anywhere. The tables are rendered here,
// escaped; the treemap is drawn by ./treemap.ts in the page from the tree embedded as JSON, and
// the analysis itself is embedded too (`<script type="application/json" id="analysis">`: the
// same object `analyze --json` prints, with the CI verdict), so tools can read the page back.
import { createHash } from 'node:crypto';
import { shortId } from '../../digest.js';
import { humanSize } from '../../units.js';
import type { CiResult, RuleResult } from '../ci.js';
import type { TreeDir } from '../tree.js';
import type { ImageAnalysis, LayerAnalysis } from '../types.js';
import { STYLE } from './style.js';
import { drawTreemap, squarify } from './treemap.js';

export interface HtmlReport {
  readonly analysis: ImageAnalysis;
  /** The CI rules' verdict: the page shows it whether or not the run gates on it. */
  readonly ci: CiResult;
  readonly tree: TreeDir;
}

/** The treemap's size in SVG units; the page scales it to its width. */
const MAP_WIDTH = 1200;
const MAP_HEIGHT = 560;
/** Rows of the inefficient paths table; the embedded JSON has them all. */
const SHOWN_PATHS = 25;

export function renderHtmlReport({ analysis: a, ci, tree }: HtmlReport): string {
  const name = a.tags[0] ?? shortId(a.id);
  const script = `(${drawTreemap.toString()})(document, JSON.parse(document.getElementById('tree').textContent), ${squarify.toString()}, ${humanSize.toString()});`;
  const csp = `default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-${createHash('sha256').update(script).digest('base64')}'`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(`tsbuild analyze: ${name}`)}</title>
<style>${STYLE}${layerColours(a.layers)}</style>
</head>
<body>
<h1>${esc(name)}</h1>
<div class="muted"><code>${esc(a.id)}</code>${a.tags.length > 1 ? ` · also ${esc(a.tags.slice(1).join(', '))}` : ''}</div>
${summary(a, ci)}
<h2>Files by layer</h2>
<p class="muted">Every copy each layer stores, by directory; colour is the layer (see the table below), hatched copies are hidden by a later layer: wasted bytes. Small files and large trees are grouped by layer. Hover for details; click to zoom into a directory.</p>
<div id="crumbs" aria-label="directory shown"></div>
<svg id="treemap" viewBox="0 0 ${MAP_WIDTH} ${MAP_HEIGHT}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="treemap of the image's files">
<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="2.2" height="6" fill="#b00020" fill-opacity=".75"/></pattern></defs>
</svg>
<h2>Dockerfile: bytes and waste per layer</h2>
${layerTable(a.layers)}
<h2>Hints</h2>
${hints(a)}
<h2>Inefficient paths</h2>
${paths(a)}
${a.notes.length > 0 ? `<h2>Notes</h2>\n<ul>${a.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}
<script type="application/json" id="analysis">${json({ ...a, ci })}</script>
<script type="application/json" id="tree">${json(tree)}</script>
<script>${script}</script>
</body>
</html>
`;
}

function summary(a: ImageAnalysis, ci: CiResult): string {
  const box = (label: string, value: string, bytes?: number): string =>
    `<div><span class="muted">${label}</span><b${bytes !== undefined ? ` title="${bytes} bytes"` : ''}>${value}</b></div>`;
  const failed = ci.rules.filter((r) => r.status === 'fail').length;
  const checked = ci.rules.filter((r) => r.status !== 'skip').length;
  const rows = ci.rules.map(
    (r) =>
      `<tr data-rule="${r.rule}" data-status="${r.status}"><td><span class="status ${r.status}">${r.status.toUpperCase()}</span></td><td>${r.rule}</td><td class="num">${ruleValue(r, r.value)}</td><td class="num">${r.threshold === null ? 'disabled' : ruleValue(r, r.threshold)}</td></tr>`,
  );
  return `<div class="summary">
${box('Total size', humanSize(a.size), a.size)}
${box("This Dockerfile's layers", humanSize(a.userSize), a.userSize)}
${box('Wasted', humanSize(a.wastedBytes), a.wastedBytes)}
${box('Efficiency', percent(a.efficiency))}
${box("Dockerfile's layers wasted", percent(a.userWastedPercent))}
</div>
<h2>CI verdict: <span id="verdict" class="verdict ${ci.pass ? 'pass' : 'fail'}">${ci.pass ? 'PASS' : 'FAIL'}</span> <span class="muted">${failed} of ${checked} checks failed</span></h2>
<table id="ci"><thead><tr><th>status</th><th>rule</th><th class="num">value</th><th class="num">threshold</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>${ci.config !== undefined ? `\n<p class="muted">Thresholds from <code id="ci-config">${esc(ci.config)}</code>.</p>` : ''}`;
}

function ruleValue(r: RuleResult, v: number): string {
  return r.rule === 'highest-wasted-bytes' || r.rule === 'max-cache-bytes' ? `<span title="${v} bytes">${humanSize(v)}</span>` : percent(v);
}

function layerTable(layers: readonly LayerAnalysis[]): string {
  const rows = layers.map((l) => {
    const where = l.origin.file !== undefined ? `${l.origin.file}:${l.origin.line}` : `layer ${l.index}`;
    return `<tr data-layer="${l.index}" data-bytes="${l.size}" data-wasted="${l.wastedBytes}">
<td><span class="swatch l${l.index}"></span>${l.index}</td><td>${esc(where)}${l.origin.base ? ' <span class="muted">(base)</span>' : ''}</td><td><pre>${esc(l.origin.text)}</pre></td>
<td class="num bytes" title="${l.size} bytes">${humanSize(l.size)}</td><td class="num waste${l.wastedBytes > 0 ? ' wasted' : ''}" title="${l.wastedBytes} bytes">${humanSize(l.wastedBytes)}</td>
<td class="num">${l.files.added} / ${l.files.modified} / ${l.files.removed}</td></tr>`;
  });
  return `<table id="layers"><thead><tr><th>#</th><th>line</th><th>instruction</th><th class="num">size</th><th class="num">wasted</th><th class="num">added / modified / removed</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`;
}

function hints(a: ImageAnalysis): string {
  if (a.hints.length === 0) return '<p id="hints">No hints: no layer wastes or leaves behind enough to mention.</p>';
  const items = a.hints.map(
    (h) => `<li data-kind="${h.kind}" data-bytes="${h.bytes}"><b title="${h.bytes} bytes">${humanSize(h.bytes)}</b>: ${esc(h.message)}
<div class="fix"><b>Fix:</b> ${esc(h.fix)}</div>${h.paths.length > 0 ? `<div class="muted">${h.files > h.paths.length ? 'Largest paths' : 'Paths'}: ${h.paths.map((p) => `<code>${esc(p)}</code>`).join(', ')}</div>` : ''}</li>`,
  );
  return `<ol id="hints" class="hints">${items.join('\n')}</ol>`;
}

function paths(a: ImageAnalysis): string {
  if (a.inefficientPaths.length === 0) return '<p id="paths">No path is stored more than once or deleted later.</p>';
  const rows = a.inefficientPaths
    .slice(0, SHOWN_PATHS)
    .map(
      (p) =>
        `<tr><td class="num">${p.count}</td><td class="num" title="${p.wastedBytes} bytes">${humanSize(p.wastedBytes)}</td><td><code>${esc(p.path)}</code>${p.removedBy !== undefined ? ` <span class="muted">(deleted by layer ${p.removedBy})</span>` : ''}</td><td>${p.layers.join(', ')}</td></tr>`,
    );
  const more = a.inefficientPaths.length - SHOWN_PATHS;
  return `<table id="paths"><thead><tr><th class="num">copies</th><th class="num">wasted</th><th>path</th><th>layers</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>${more > 0 ? `<p class="muted">… and ${more} more (the embedded JSON lists them all)</p>` : ''}`;
}

/**
 * One colour per layer, as CSS classes `lN` for the treemap's rects and the table's swatches:
 * hues spread by the golden angle so neighbours differ; the base image's layers are greyer.
 */
function layerColours(layers: readonly LayerAnalysis[]): string {
  return layers
    .map((l) => {
      const colour = `hsl(${Math.round((210 + l.index * 137.508) % 360)} ${l.origin.base ? 18 : 62}% ${l.origin.base ? 70 : 60}%)`;
      return `.l${l.index}{fill:${colour};background:${colour}}`;
    })
    .join('');
}

function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/**
 * Text for HTML (element content and quoted attributes). Names from an image may be anything:
 * markup characters are escaped, and a lone surrogate (a name's bytes that were not UTF-8)
 * becomes U+FFFD, which is what a UTF-8 page can hold.
 */
export function esc(s: string): string {
  return s
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
    .replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON inside a `<script type="application/json">`: nothing in it may close the element or open
 * a comment, so every `<` is written as its JSON escape. Lone surrogates are JSON-escaped by
 * JSON.stringify itself.
 */
function json(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}
