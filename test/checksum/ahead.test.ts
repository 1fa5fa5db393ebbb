// The COPY checksums a build starts with itself (src/builder/checksums-ahead.ts): only the
// steps whose checksum nothing in the build can change are started, each gives what the step
// would have computed (digest, listing, error), and a build that ends early waits for them.
import { join } from 'node:path';
import { sourcesChecksum } from '../../src/builder/checksum.js';
import { ChecksumsAhead } from '../../src/builder/checksums-ahead.js';
import { openContext, selectionOf, type BuildContext } from '../../src/context/index.js';
import { parseDockerfile, type CopyStep } from '../../src/parse/index.js';
import { removeTempDirs, tempDir, writeTree } from '../copy/tmp.js';

afterEach(removeTempDirs);

const DOCKERFILE = `FROM busybox AS a
COPY app/ /app/
COPY --exclude=*.log logs/ /logs/
ARG X=app
COPY $X/ /x/
COPY "app/" /quoted/
ADD app/a.txt /add/
COPY --from=a /app /from/
COPY <<EOF /inline
hi
EOF
COPY http://127.0.0.1:9/x /url/
FROM busybox
COPY --parents app/./a.txt /p/
COPY missing.txt /m/
`;

async function setup(listings = false): Promise<{ context: BuildContext; ahead: ChecksumsAhead; copies: CopyStep[]; cacheDir: string }> {
  const dir = await tempDir('tsbuild-ahead-ctx-');
  await writeTree(dir, { 'app/a.txt': 'a\n', 'app/sub/b.txt': 'b\n', 'logs/keep.txt': 'k\n', 'logs/drop.log': 'd\n' });
  const cacheDir = await tempDir('tsbuild-ahead-cache-');
  const context = await openContext(dir);
  const plan = parseDockerfile(DOCKERFILE);
  const ahead = new ChecksumsAhead({ context, cacheDir, memoDir: join(cacheDir, 'trees'), escapeChar: plan.escapeChar, listings });
  ahead.start(plan.stages);
  const copies = plan.stages.flatMap((s) => s.steps).filter((s): s is CopyStep => s.kind === 'COPY' || s.kind === 'ADD');
  return { context, ahead, copies, cacheDir };
}

const select = selectionOf;

test('starts the COPYs from the context written without variables, quotes or URLs, and nothing else', async () => {
  const { ahead, copies } = await setup();
  const started = copies.map((s) => [s.text.split('\n')[0], ahead.take(s.sources, select(s)) !== undefined]);
  expect(started).toEqual([
    ['COPY app/ /app/', true],
    ['COPY --exclude=*.log logs/ /logs/', true],
    ['COPY $X/ /x/', false],
    ['COPY "app/" /quoted/', false],
    ['ADD app/a.txt /add/', false],
    ['COPY --from=a /app /from/', false],
    ['COPY <<EOF /inline', false],
    ['COPY http://127.0.0.1:9/x /url/', false],
    ['COPY --parents app/./a.txt /p/', true],
    ['COPY missing.txt /m/', true],
  ]);
  await ahead.settled();
});

test("each gives the digest and listing the step computes itself, or the step's error", async () => {
  const { context, ahead, copies, cacheDir } = await setup(true);
  for (const s of copies.filter((c) => ahead.take(c.sources, select(c)) !== undefined && !c.sources.includes('missing.txt'))) {
    let listing: string | undefined;
    const own = await sourcesChecksum(context, s.sources, { cacheDir, isAdd: false, select: select(s), onListing: (t) => (listing = t) });
    const early = await ahead.take(s.sources, select(s));
    expect(early).toEqual({ digest: own, listing });
    expect(listing).toMatch(/a\.txt|keep\.txt/);
  }
  // The selection is part of what was started: the same sources without --exclude were not.
  expect(ahead.take(['logs/'], {})).toBeUndefined();
  const missing = copies.find((c) => c.sources.includes('missing.txt'))!;
  const own = await sourcesChecksum(context, missing.sources, { cacheDir, isAdd: false }).catch((e: Error) => e.message);
  await expect(ahead.take(missing.sources, {})).rejects.toThrow(own as string);
  expect(own).toMatch(/missing\.txt.*not found/);
});

test('without listings wanted, none is kept; settled() waits for a checksum no step took', async () => {
  const { ahead } = await setup(false);
  await ahead.settled();
  expect(await ahead.take(['app/'], {})).toEqual({ digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
});
