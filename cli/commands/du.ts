import { shortId } from '../../src/digest.js';
import { exactArgs, storeOptions, parseCommand, usageError } from '../common.js';
import { Store } from '../../src/store/store.js';
import { humanSize, table } from '../format.js';

const spec = {
  usage: 'du [OPTIONS]',
  description: "Show the store's disk usage: per image, the bytes it shares and the bytes only it uses",
  options: {
    format: { type: 'string' },
  },
  optionHelp: ['      --format json            Print the numbers as one JSON object (docs/commands/du.md)'],
} as const;

export async function run(argv: string[]): Promise<void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  exactArgs(args.positionals, 0, spec.usage);
  const format = args.values.format;
  if (format !== undefined && format !== 'json' && format !== 'table')
    throw usageError(`unsupported --format ${format}: use json or table`);
  const store = await Store.open(await storeOptions(args.values));
  const du = await store.diskUsage();
  const caches = await store.cacheMounts();

  if (format === 'json') {
    const json = {
      images: du.images.map((i) => ({
        id: i.id,
        tags: i.tags.map((t) => t.ref),
        size: i.size,
        sharedSize: i.sharedSize,
        uniqueSize: i.uniqueSize,
        dangling: i.dangling,
        untagged: i.untagged,
      })),
      layers: { count: du.layerCount, size: du.layerBytes },
      unusedLayers: du.unusedLayers.map((l) => ({ chainId: l.chainId, diffId: l.diffId, size: l.size })),
      reclaimable: du.reclaimable,
      cacheMounts: caches.map((c) => ({ id: c.id, instances: c.instances, size: c.size })),
    };
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return;
  }

  // One row per tag, as `docker system df -v` lists images; untagged images once as <none>.
  const rows = du.images.flatMap((i) => {
    const cells = [shortId(i.id), humanSize(i.size), humanSize(i.sharedSize), humanSize(i.uniqueSize)];
    const named = i.tags.filter((t) => t.tag !== '<none>');
    if (named.length === 0) return [['<none>', '<none>', ...cells]];
    return named.map((t) => [t.repository, t.tag, ...cells]);
  });
  const out: string[] = ['Images space usage:', '', table(['REPOSITORY', 'TAG', 'IMAGE ID', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE'], rows)];
  if (du.unusedLayers.length > 0) {
    out.push(
      'Layers no image uses:',
      '',
      table(
        ['LAYER (CHAIN ID)', 'SIZE'],
        du.unusedLayers.map((l) => [shortId(l.chainId), humanSize(l.size)]),
      ),
    );
  }
  if (caches.length > 0) {
    out.push(
      'Cache mounts (RUN --mount=type=cache):',
      '',
      table(
        ['CACHE ID', 'DIRECTORIES', 'SIZE'],
        caches.map((c) => [c.id, String(c.instances), humanSize(c.size)]),
      ),
    );
  }
  const unusedBytes = du.unusedLayers.reduce((n, l) => n + l.size, 0);
  const cacheBytes = caches.reduce((n, c) => n + c.size, 0);
  out.push(
    table(
      ['TYPE', 'TOTAL', 'SIZE'],
      [
        ['Images', String(du.images.length), humanSize(du.layerBytes - unusedBytes)],
        ['Unused layers', String(du.unusedLayers.length), humanSize(unusedBytes)],
        ['All layers', String(du.layerCount), humanSize(du.layerBytes)],
        ['Cache mounts', String(caches.length), humanSize(cacheBytes)],
      ],
    ),
  );
  out.push(
    `Reclaimable: ${humanSize(du.reclaimable.prune)} by \`tsbuild prune\`, ${humanSize(du.reclaimable.pruneAll + cacheBytes)} by \`tsbuild prune --all\`` +
      (cacheBytes > 0 ? ` (cache mounts: ${humanSize(cacheBytes)}, also by \`tsbuild prune --cache\`)` : ''),
  );
  process.stdout.write(`${out.join('\n')}\n`);
}
