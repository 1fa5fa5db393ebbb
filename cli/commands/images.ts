// `tsbuild images` (and `tsbuild image ls`): the stored images as `docker images` lists them,
// with its filters and its --format fields (rows chosen in ../image-rows.ts).
import { hex } from '../../src/digest.js';
import { humanSize } from '../../src/units.js';
import { Store } from '../../src/store/store.js';
import { formatPlatform } from '../../src/image/platform.js';
import { parseCommand, platformOption, storeOptions, usageError } from '../common.js';
import { ago } from '../format.js';
import { imageRows, parseFilters, type ImageRow } from '../image-rows.js';
import { parseFormat, type Fields } from '../template.js';

const spec = {
  usage: 'images [OPTIONS] [REPOSITORY[:TAG]]',
  description: 'List images',
  options: {
    all: { type: 'boolean', short: 'a' },
    digests: { type: 'boolean' },
    filter: { type: 'string', short: 'f', multiple: true },
    format: { type: 'string' },
    'no-trunc': { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
    platform: { type: 'string' },
  },
  optionHelp: [
    '  -a, --all                    Show all images (default hides intermediate images)',
    '      --digests                Show digests',
    '  -f, --filter filter          Filter output based on conditions provided (dangling=, reference=, before=, since=, label=)',
    '      --format string          Pretty-print images using a Go template ({{.Repository}}, table ..., json)',
    "      --no-trunc               Don't truncate output",
    '  -q, --quiet                  Only show image IDs',
    '      --platform OS/ARCH       Only images for this platform (a multi-platform image shows its image for it)',
  ],
} as const;

/** Each field's column header, as docker's image formatter names them. */
const HEADERS: Fields = {
  Containers: 'CONTAINERS',
  CreatedAt: 'CREATED AT',
  CreatedSince: 'CREATED',
  Digest: 'DIGEST',
  ID: 'IMAGE ID',
  Platforms: 'PLATFORMS',
  Repository: 'REPOSITORY',
  SharedSize: 'SHARED SIZE',
  Size: 'SIZE',
  Tag: 'TAG',
  UniqueSize: 'UNIQUE SIZE',
  VirtualSize: 'VIRTUAL SIZE',
};

export async function run(argv: string[]): Promise<void> {
  const args = parseCommand(spec, argv);
  if (!args) return;
  const v = args.values;
  if (args.positionals.length > 1) throw usageError(`"tsbuild images" requires at most 1 argument. Usage: tsbuild ${spec.usage}`);
  const filters = parseFilters(v.filter ?? []);
  if (args.positionals[0] !== undefined) filters.references.push(args.positionals[0]);
  const platform = platformOption(v.platform);
  const store = await Store.open(await storeOptions(v));
  const rows = await imageRows(store, filters, { all: v.all === true, digests: v.digests === true, ...(platform ? { platform } : {}) });
  // The PLATFORMS column appears once the list holds a multi-platform image, where it tells them apart.
  const multi = rows.some((r) => r.index !== undefined);
  const format = parseFormat(chooseFormat(v.format, v.quiet === true, v.digests === true, multi), HEADERS);
  process.stdout.write(format.render(rows.map((r) => fields(r, v['no-trunc'] === true))));
}

/** docker's NewImageFormat: no --format (or `table`) is the default table, or IDs alone for -q. */
function chooseFormat(format: string | undefined, quiet: boolean, digests: boolean, platforms: boolean): string {
  if (format !== undefined && format !== 'table') return format;
  if (quiet) return '{{.ID}}';
  const tail = platforms ? '\t{{.Platforms}}' : '';
  return digests
    ? `table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}${tail}`
    : `table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}${tail}`;
}

function fields(row: ImageRow, noTrunc: boolean): Fields {
  const { image } = row;
  const id = row.index?.id ?? image.id;
  const size = row.index?.size ?? image.size;
  return {
    Containers: 'N/A',
    CreatedAt: goTime(image.config.created),
    CreatedSince: ago(image.config.created),
    Digest: row.digest,
    ID: noTrunc ? id : hex(id).slice(0, 12),
    Platforms: row.index ? row.index.platforms.join(',') : formatPlatform(image.config),
    Repository: row.repository,
    SharedSize: 'N/A',
    Size: humanSize(size),
    Tag: row.tag,
    UniqueSize: 'N/A',
    VirtualSize: humanSize(size, 4),
  };
}

/** Go's time.Time.String() in local time, to the second: `2024-01-02 15:04:05 +0000 UTC`. */
function goTime(iso: string | undefined): string {
  const t = iso ? new Date(iso) : undefined;
  if (!t || Number.isNaN(t.getTime())) return 'N/A';
  const p = (n: number) => String(n).padStart(2, '0');
  const offset = -t.getTimezoneOffset();
  const sign = offset < 0 ? '-' : '+';
  const zone =
    offset === 0
      ? 'UTC'
      : (new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(t).find((x) => x.type === 'timeZoneName')?.value ?? '');
  const date = `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}`;
  return `${date} ${sign}${p(Math.floor(Math.abs(offset) / 60))}${p(Math.abs(offset) % 60)} ${zone}`;
}
