// The report page's stylesheet, inline in the page (the report loads nothing). Layer colours are
// generated per image (layerColours in ./report.ts); this is the rest.
export const STYLE = `
:root { color-scheme: light; --fg: #1d2330; --muted: #5d6678; --line: #d8dce4; --bg: #fff; --pass: #17803d; --fail: #c62828; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); margin: 0 auto; padding: 16px 24px 40px; max-width: 1280px; }
h1 { font-size: 20px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 16px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
code, pre { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.muted { color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.summary { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 8px; margin: 12px 0; }
.summary div { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.summary b { display: block; font-size: 18px; }
.verdict { display: inline-block; font-weight: 700; padding: 2px 10px; border-radius: 4px; color: #fff; }
.pass { background: var(--pass); } .fail { background: var(--fail); } .skip { background: var(--muted); }
.status { font-weight: 700; font-size: 12px; padding: 1px 6px; border-radius: 3px; color: #fff; }
td:first-child { white-space: nowrap; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -1px; margin-right: 4px; }
.wasted { color: var(--fail); }
#treemap { width: 100%; height: auto; display: block; border: 1px solid var(--line); background: #f4f5f8; }
#treemap .dir { fill: none; stroke: #6b7385; stroke-width: .6; pointer-events: all; cursor: zoom-in; }
#treemap .leaf { cursor: zoom-in; }
#crumbs { margin: 0 0 4px; min-height: 24px; }
#crumbs button { font: 12.5px ui-monospace, monospace; border: 1px solid var(--line); background: #fff; border-radius: 3px; margin-right: 2px; padding: 2px 6px; cursor: pointer; }
#crumbs button:disabled { cursor: default; color: var(--fg); background: #eef0f4; }
#treemap .leaf { stroke: #fff; stroke-width: .4; }
#treemap .leaf:hover { stroke: #000; stroke-width: 1.2; }
#treemap .hatch { fill: url(#hatch); pointer-events: none; }
#treemap text { font: 9.5px sans-serif; pointer-events: none; fill: #111; }
#treemap .dirname { font-weight: 600; fill: #333; }
ol.hints li { margin-bottom: 10px; }
.fix { margin: 2px 0; }
`;
