// `tsbuild analyze -i IMAGE`: the image's layers and its file tree as of the selected layer, in
// the terminal, until q (exit 0) or Ctrl-C (130). The data is src/analyze's (the layer origins,
// and ImageTree's replay of the tar-splits); view.ts draws it and screen.ts owns the terminal.
// SIGINT, SIGTERM and SIGHUP end the view too, with the terminal given back first.
import { layerOrigins, type LayerOrigin } from '../../src/analyze/origin.js';
import type { LayerEntry } from '../../src/analyze/entries.js';
import { ImageTree } from '../../src/analyze/imagetree.js';
import type { SourceImage } from '../../src/analyze/index.js';
import { shortId } from '../../src/digest.js';
import { Screen } from './screen.js';
import { View, type ViewModel } from './view.js';

/** Signals that end the view (Ctrl-C is a key in raw mode, but `kill -INT` is still a signal). */
const SIGNAL_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;

export async function runInteractive(source: SourceImage): Promise<number> {
  // Reading a large image's tar-splits takes seconds: say so, on a line that is cleared after.
  const status = process.stderr.isTTY;
  if (status) process.stderr.write('Reading the layers…');
  let model: ViewModel;
  try {
    model = await loadModel(source);
  } finally {
    if (status) process.stderr.write('\r\x1b[K');
  }
  const view = new View(model);
  const screen = new Screen(process.stdin, process.stdout);
  return new Promise<number>((resolve, reject) => {
    const signals = Object.entries(SIGNAL_CODES).map(([sig, code]) => {
      const h = (): void => finish(code);
      process.on(sig, h);
      return [sig, h] as const;
    });
    let done = false;
    const finish = (code: number, err?: unknown): void => {
      if (done) return;
      done = true;
      screen.stop();
      for (const [sig, h] of signals) process.off(sig, h);
      if (err !== undefined) reject(err);
      else resolve(code);
    };
    // Keys that arrive together (a held arrow key, a paste) are all applied before one frame is
    // drawn, so that passing over a layer does not cost building its tree.
    let pending = false;
    const redraw = (): void => {
      if (pending) return;
      pending = true;
      setImmediate(() => {
        pending = false;
        if (done) return;
        try {
          screen.draw(view.render(screen.cols, screen.rows));
        } catch (err) {
          finish(1, err);
        }
      });
    };
    screen.start((key) => {
      if (done) return;
      let result;
      try {
        result = view.key(key);
      } catch (err) {
        finish(1, err);
        return;
      }
      if (result === 'quit') finish(0);
      else if (result === 'interrupt') finish(130);
      else redraw();
    }, redraw);
    redraw();
  });
}

/** The view's data, from any image source (the store, an archive, a layout, a registry). */
async function loadModel(img: SourceImage): Promise<ViewModel> {
  const origins = layerOrigins(img.config, img.layers.length, img.provenance);
  // An archive's layers are read in order, once each: one at a time.
  const entries: LayerEntry[][] = [];
  for (const layer of img.layers) {
    const list: LayerEntry[] = [];
    for await (const e of layer.entries()) list.push(e);
    entries.push(list);
  }
  const tree = new ImageTree(entries);
  const hidden = tree.layers.map((l) => l.copies.reduce((n, c) => n + (c.hiddenBy ? c.bytes : 0), 0));
  const sizes = await Promise.all(img.layers.map((l) => l.size()));
  return {
    title: `${img.tags[0] ?? '<none>'} (${shortId(img.id)})`,
    size: sizes.reduce((a, b) => a + b, 0),
    wastedBytes: hidden.reduce((a, b) => a + b, 0),
    layers: img.layers.map((_, i) => ({ size: sizes[i]!, wastedBytes: hidden[i]!, origin: originText(origins[i]!) })),
    tree: (layer) => tree.at(layer),
  };
}

/** `(base) Dockerfile:3  COPY a /b`, on one line. */
function originText(o: LayerOrigin): string {
  const where = o.file !== undefined ? `${o.file}:${o.line}  ` : '';
  return `${o.base ? '(base) ' : ''}${where}${o.text.replace(/\s*\n\s*/g, ' ')}`;
}
