import { listedSizes } from '../../src/analyze/index.js';
import { shortId } from '../../src/digest.js';
import { exactArgs, parseCommand, usageError } from '../common.js';
import { Interrupted, withSources } from '../source.js';
import { ago, ellipsis, humanSize, table } from '../format.js';
import { forTerminal } from '../terminal.js';

const spec = {
  usage: 'history [OPTIONS] IMAGE',
  description:
    'Show the history of an image, newest first. IMAGE is a name in the store, or\n' +
    'docker-archive:FILE, oci-archive:FILE, oci:DIR[:TAG] or docker://REF (sizes: the compressed blobs)',
  options: {
    'no-trunc': { type: 'boolean' },
    human: { type: 'boolean', short: 'H' },
    quiet: { type: 'boolean', short: 'q' },
    format: { type: 'string' },
    platform: { type: 'string' },
  },
  optionHelp: [
    "      --no-trunc               Don't truncate output",
    '  -H, --human                  Print sizes and dates in human readable format (default true)',
    '  -q, --quiet                  Only show image IDs',
    '      --format json            Print one JSON object per line',
    "      --platform OS/ARCH       Which image of a multi-platform image (default: this machine's)",
  ],
} as const;

export async function run(argv: string[]): Promise<number | void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  exactArgs(args.positionals, 1, spec.usage);
  const format = args.values.format;
  if (format !== undefined && format !== 'json' && format !== 'table')
    throw usageError(`unsupported --format ${format}: use json or table`);
  // A registry's layers are not downloaded for this: their sizes are the manifest's (compressed).
  const read = await withSources(args.positionals, args.values, async ([img]) => ({ img: img!, sizes: await listedSizes(img!) }));
  if (read instanceof Interrupted) return read.exitCode;
  const { img, sizes } = read;
  // Each non-empty history entry owns the next layer, bottom up; docker history shows the
  // image ID on the newest row only and <missing> for rows without an image of their own.
  const rows: { id: string; created: string; createdBy: string; size: number; comment: string }[] = [];
  let layer = 0;
  for (const h of img.config.history) {
    const size = h.empty_layer ? 0 : (sizes[layer++] ?? 0);
    rows.push({ id: '<missing>', created: h.created ?? '', createdBy: h.created_by ?? '', size, comment: h.comment ?? '' });
  }
  rows.reverse();
  if (rows[0]) rows[0].id = img.id;
  if (args.values.quiet) {
    process.stdout.write(rows.map((r) => `${args.values['no-trunc'] || r.id === '<missing>' ? r.id : shortId(r.id as never)}\n`).join(''));
    return;
  }
  if (format === 'json') {
    for (const r of rows) {
      process.stdout.write(
        forTerminal(`${JSON.stringify({ ID: r.id, CreatedAt: r.created, CreatedBy: r.createdBy, Size: r.size, Comment: r.comment })}\n`),
      );
    }
    return;
  }
  const trunc = !args.values['no-trunc'];
  process.stdout.write(
    forTerminal(
      table(
        ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
        rows.map((r) => [
          r.id === '<missing>' || !trunc ? r.id : shortId(r.id as never),
          ago(r.created),
          trunc ? ellipsis(r.createdBy, 45) : r.createdBy,
          humanSize(r.size),
          r.comment,
        ]),
      ),
    ),
  );
}
