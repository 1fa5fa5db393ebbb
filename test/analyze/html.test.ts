// `tsbuild analyze --html FILE` read the way a person reads it: the page opened in Debian's
// Chromium (driven by playwright-core, which never downloads a browser of its own), and what
// it shows compared with `analyze --json` for the same image. The images are built here: one
// whose RUN writes big files (some with hostile names) that a later RUN deletes, and one with
// many small files, which the page must draw in a bounded size.
import { constants } from 'node:fs';
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { humanSize } from '../../src/units.js';
import { busyboxStore, contextOf, ok, tempDir, tsbuild } from '../helpers/tsbuild.js';

const CHROMIUM = '/usr/bin/chromium';
const HOSTILE = '<img src=x onerror=alert(1)>';
/** A path whose text closes a script element: dir `a<`, file `script><b id=injected>x`. */
const SCRIPT_CLOSER = '/a</script><b id=injected>x';
const QUOTES = `/q"uote&'amp`;

interface Json {
  [k: string]: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** What a page did while it loaded: every request, console error, uncaught error and dialog. */
interface Opened {
  readonly page: Page;
  readonly requests: string[];
  readonly errors: string[];
}

describe('tsbuild analyze --html', () => {
  const env = busyboxStore();
  let browser: Browser;
  let out: string;

  beforeAll(async () => {
    try {
      await access(CHROMIUM, constants.X_OK);
    } catch {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium; scripts/setup.sh does)`);
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    out = await tempDir('tsbuild-html-');
  });
  afterAll(async () => {
    await browser?.close();
  });

  async function open(file: string): Promise<Opened> {
    const page = await browser.newPage();
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => void requests.push(r.url()));
    page.on('console', (m) => void (m.type() === 'error' && errors.push(`console: ${m.text()}`)));
    page.on('pageerror', (e) => void errors.push(`page: ${e.message}`));
    page.on('dialog', (d) => {
      errors.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(`file://${file}`, { waitUntil: 'load' });
    return { page, requests, errors };
  }

  const embedded = async (page: Page, id: string): Promise<Json> =>
    JSON.parse((await page.locator(`script#${id}`).textContent()) ?? 'null') as Json;

  describe('an image whose RUN writes big files a later RUN deletes', () => {
    let file: string;
    let json: Json;
    let opened: Opened;
    let config: string;

    beforeAll(async () => {
      const ctx = await contextOf({
        Dockerfile: [
          'FROM busybox',
          'RUN dd if=/dev/urandom of=/big.bin bs=1M count=30 2>/dev/null \\',
          ` && head -c 2000000 /dev/urandom > '/${HOSTILE}' \\`,
          ` && mkdir '/a<' && echo hi > '${SCRIPT_CLOSER}' \\`,
          ` && head -c 10000 /dev/urandom > "/q\\"uote&'amp" \\`,
          ` && head -c 10000 /dev/urandom > "$(printf '/bad\\377name')"`,
          `RUN rm -r /big.bin '/${HOSTILE}' '/a<'`,
          '',
        ].join('\n'),
      });
      // The page judges as --ci does: this file's threshold applies, the other rules' defaults.
      await writeFile(join(ctx, '.tsbuild-ci.yaml'), 'rules:\n  lowestEfficiency: 0.01\n');
      config = join(ctx, '.tsbuild-ci.yaml');
      await ok(env.root, ['build', '-q', '-t', 'waste', ctx]);
      file = join(out, 'waste.html');
      // --ci and --html together: the verdict fails, the page is written all the same.
      const r = await tsbuild(env.root, ['analyze', '--ci', '--json', '--html', file, 'waste']);
      expect(r.exitCode).toBe(1);
      json = JSON.parse(r.stdout) as Json;
      opened = await open(file);
    });

    test('renders without errors, dialogs or a single request beyond the file itself', async () => {
      expect(opened.errors).toEqual([]);
      expect(opened.requests).toEqual([`file://${file}`]);
      const html = await readFile(file, 'utf8');
      // Nothing to load even if a browser ignored the Content-Security-Policy.
      expect(html).not.toMatch(/\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i);
      expect(html).toContain(`content="default-src 'none';`);
      expect((await stat(file)).size).toBeLessThan(100_000);
    });

    test('embeds the same analysis as --json, with the CI verdict', async () => {
      expect(await embedded(opened.page, 'analysis')).toEqual(json);
      expect((await embedded(opened.page, 'tree')).bytes).toBe(json.storedBytes);
    });

    test('the Dockerfile table shows each layer with its line, bytes and waste as --json has them', async () => {
      const rows = opened.page.locator('#layers tbody tr');
      expect(await rows.count()).toBe(json.layers.length);
      for (const l of json.layers as Json[]) {
        const row = opened.page.locator(`#layers tbody tr[data-layer="${l.index}"]`);
        expect(await row.getAttribute('data-bytes')).toBe(String(l.size));
        expect(await row.getAttribute('data-wasted')).toBe(String(l.wastedBytes));
        expect(await row.locator('td.bytes').innerText()).toBe(humanSize(l.size));
        expect(await row.locator('td.waste').innerText()).toBe(humanSize(l.wastedBytes));
        if (l.origin.line !== undefined) expect(await row.innerText()).toContain(`Dockerfile:${l.origin.line}`);
      }
      const big = json.layers[1];
      expect(big.origin.line).toBe(2);
      expect(big.wastedBytes).toBeGreaterThan(32_000_000);
    });

    test('the treemap has a hatched rect of the big layer for each deleted file, and the base image', async () => {
      const svg = opened.page.locator('#treemap');
      const big = svg.locator('rect.leaf[data-path="/big.bin"]');
      expect(await big.getAttribute('data-layer')).toBe('1');
      expect(await big.getAttribute('data-wasted')).toBe('true');
      expect(await big.getAttribute('data-bytes')).toBe(String(30 * 1024 * 1024));
      expect(await svg.locator('rect.leaf[data-path="/bin/busybox"]').getAttribute('data-layer')).toBe('0');
      // Most of the picture is the big file: its area share follows its bytes.
      const box = await big.boundingBox();
      const whole = await svg.boundingBox();
      expect((box!.width * box!.height) / (whole!.width * whole!.height)).toBeGreaterThan(0.8);
      // Every stored byte is drawn but for a few rects too small to see.
      const drawn = await svg.locator('rect.leaf').evaluateAll((els) => els.reduce((n, e) => n + Number(e.getAttribute('data-bytes')), 0));
      expect(drawn).toBeLessThanOrEqual(json.storedBytes);
      expect(drawn).toBeGreaterThan(json.storedBytes * 0.99);
    });

    test('a click zooms into a directory, the path above the map zooms out', async () => {
      const { page, errors } = await open(file);
      const svg = page.locator('#treemap');
      const area = async (path: string): Promise<number> => {
        const b = await svg.locator(`rect.leaf[data-path="${path}"]`).boundingBox();
        return b!.width * b!.height;
      };
      const whole = (await svg.boundingBox())!;
      // On its name, above the files that cover the rest of it.
      await svg.locator('rect.dir[data-path="/bin/"]').click({ position: { x: 6, y: 6 } });
      expect(await page.locator('#crumbs button').allInnerTexts()).toEqual(['/', 'bin/']);
      expect(await svg.locator('rect.leaf[data-path="/big.bin"]').count()).toBe(0);
      expect((await area('/bin/busybox')) / (whole.width * whole.height)).toBeGreaterThan(0.9);
      await page.locator('#crumbs button', { hasText: /^\/$/ }).click();
      expect(await page.locator('#crumbs button').allInnerTexts()).toEqual(['/']);
      expect(await svg.locator('rect.leaf[data-path="/big.bin"]').count()).toBe(1);
      expect(errors).toEqual([]);
      await page.close();
    });

    test('hints and the CI verdict are shown as --json has them', async () => {
      const items = opened.page.locator('#hints li');
      expect(await items.count()).toBe(json.hints.length);
      for (const [i, h] of (json.hints as Json[]).entries()) {
        const item = items.nth(i);
        expect(await item.getAttribute('data-kind')).toBe(h.kind);
        expect(await item.getAttribute('data-bytes')).toBe(String(h.bytes));
        expect(await item.innerText()).toContain(h.message);
        expect(await item.innerText()).toContain(h.fix);
      }
      expect(json.hints[0]).toMatchObject({ kind: 'deleted-later', layer: 1, otherLayer: 2 });
      expect(json.ci.config).toBe(config);
      expect(await opened.page.locator('#ci-config').innerText()).toBe(config);
      expect(await opened.page.locator('#ci tr[data-rule="lowest-efficiency"]').getAttribute('data-status')).toBe('pass');
      expect(await opened.page.locator('#verdict').innerText()).toBe('FAIL');
      for (const r of json.ci.rules as Json[]) {
        expect(await opened.page.locator(`#ci tr[data-rule="${r.rule}"]`).getAttribute('data-status')).toBe(r.status);
      }
    });

    test('hostile names are text: no element injected, the names shown as written', async () => {
      const { page } = opened;
      expect(await page.locator('img').count()).toBe(0);
      expect(await page.locator('#injected').count()).toBe(0);
      const text = await page.locator('body').innerText();
      expect(text).toContain(`/${HOSTILE}`);
      expect(text).toContain(SCRIPT_CLOSER);
      expect(json.inefficientPaths.map((p: Json) => p.path)).toEqual(expect.arrayContaining([`/${HOSTILE}`, SCRIPT_CLOSER]));
      const tip = await page.locator(`#treemap rect.leaf[data-path="/${HOSTILE}"] title`).textContent();
      expect(tip).toContain(`/${HOSTILE}`);
      // The tree's names reach the page whole, quotes and bytes that are not UTF-8 included.
      const names = JSON.stringify(await embedded(page, 'tree'));
      expect(names).toContain(JSON.stringify(QUOTES.slice(1)));
      expect(names).toContain(JSON.stringify('bad\u00ffname'));
    });

    test('without --ci the page still judges the rules, by the thresholds given', async () => {
      const pass = join(out, 'pass.html');
      const r = await tsbuild(env.root, [
        'analyze',
        '--html',
        pass,
        '--lowest-efficiency',
        '0',
        '--highest-wasted-bytes',
        'off',
        '--highest-user-wasted-percent',
        '100%',
        'waste',
      ]);
      expect(r.exitCode).toBe(0);
      const { page, errors } = await open(pass);
      expect(errors).toEqual([]);
      expect(await page.locator('#verdict').innerText()).toBe('PASS');
      expect(await page.locator('#ci tr[data-rule="highest-wasted-bytes"]').getAttribute('data-status')).toBe('skip');
      expect((await embedded(page, 'analysis')).ci.pass).toBe(true);
    });
  });

  test('an image of 18,000 small files: a bounded tree, a small page, every byte accounted for', async () => {
    const ctx = await contextOf({
      Dockerfile:
        'FROM busybox\nRUN for d in $(seq 150); do mkdir -p /many/d$d; for f in $(seq 120); do echo "$d $f" > /many/d$d/f$f; done; done\n',
    });
    await ok(env.root, ['build', '-q', '-t', 'many', ctx]);
    const file = join(out, 'many.html');
    await ok(env.root, ['analyze', '--html', file, 'many']);
    expect((await stat(file)).size).toBeLessThan(300_000);
    const { page, errors } = await open(file);
    expect(errors).toEqual([]);
    const tree = await embedded(page, 'tree');
    const json = await embedded(page, 'analysis');
    let nodes = 0;
    const check = (n: Json): void => {
      nodes++;
      if (n.kind !== 'dir') return;
      expect(n.children.reduce((s: number, c: Json) => s + c.bytes, 0)).toBe(n.bytes);
      n.children.forEach(check);
    };
    check(tree);
    expect(nodes).toBeLessThanOrEqual(2000);
    expect(tree.bytes).toBe(json.storedBytes);
    expect(tree.files).toBeGreaterThan(18_000);
    expect(await page.locator('#treemap rect.leaf[data-layer="1"]').count()).toBeGreaterThan(0);
  });
});
