// `--format` the way the docker CLI reads it (cli/command/formatter/formatter.go), in the small
// subset of Go's text/template that docker users write: literal text, `{{.Field}}`,
// `{{json .}}` and `{{json .Field}}`; `table` before a template adds a header row and aligns the
// columns as docker's tabwriter does; `json` alone prints each row as one JSON object per line
// (docker 23's `--format json`). `\t` and `\n` written literally become a tab and a newline, as
// docker replaces them. Anything else (if, range, functions) is refused with one line naming it,
// rather than printed wrong.
import { usageError } from './common.js';
import { tabwrite } from './format.js';

/** A row's fields by name, as the template reads them: `{{.Repository}}` is fields.Repository. */
export type Fields = Readonly<Record<string, string>>;

type Piece = { text: string } | { field: string; json: boolean } | { whole: true };

export interface Format {
  /** True for `table ...`: a header row first, and the columns aligned. */
  readonly table: boolean;
  /** The rendered rows, header first for a table, each ending in a newline. */
  render(rows: readonly Fields[]): string;
}

/**
 * Parses a --format value for rows whose fields are `headers`' keys; `headers` maps each field
 * to its column header (`ID` → `IMAGE ID`). An unknown field or action is a usage error.
 */
export function parseFormat(format: string, headers: Fields): Format {
  if (format.trim() === 'json') return { table: false, render: (rows) => rows.map((r) => `${goJson(r)}\n`).join('') };
  const table = format.startsWith('table');
  const source = (table ? format.slice('table'.length) : format).trim().replaceAll('\\t', '\t').replaceAll('\\n', '\n');
  const pieces = parseTemplate(source, headers);
  const fill = (fields: Fields, header: boolean): string =>
    pieces
      .map((p) => {
        if ('text' in p) return p.text;
        if ('whole' in p) return header ? '' : goJson(fields);
        return p.json && !header ? JSON.stringify(fields[p.field] ?? '') : (fields[p.field] ?? '');
      })
      .join('');
  return {
    table,
    render(rows) {
      const lines = rows.map((r) => fill(r, false));
      return table ? tabwrite([fill(headers, true), ...lines].map((l) => l.split('\t'))) : lines.map((l) => `${l}\n`).join('');
    },
  };
}

function parseTemplate(source: string, headers: Fields): Piece[] {
  const pieces: Piece[] = [];
  let rest = source;
  while (rest.length) {
    const open = rest.indexOf('{{');
    if (open < 0) {
      pieces.push({ text: rest });
      break;
    }
    if (open > 0) pieces.push({ text: rest.slice(0, open) });
    const close = rest.indexOf('}}', open);
    if (close < 0) throw usageError(`invalid --format: "{{" without "}}" in ${JSON.stringify(source)}`);
    pieces.push(action(rest.slice(open + 2, close).trim(), headers));
    rest = rest.slice(close + 2);
  }
  return pieces;
}

function action(text: string, headers: Fields): Piece {
  const words = text.split(/\s+/);
  const json = words[0] === 'json';
  const arg = json ? words.slice(1) : words;
  if (arg.length !== 1 || !arg[0]!.startsWith('.')) {
    throw usageError(`unsupported --format action {{${text}}}: tsbuild reads {{.Field}}, {{json .}} and {{json .Field}}`);
  }
  if (arg[0] === '.') {
    if (!json) throw usageError('unsupported --format action {{.}}: use {{json .}}');
    return { whole: true };
  }
  const field = arg[0]!.slice(1);
  if (!Object.hasOwn(headers, field)) {
    throw usageError(
      `unknown field .${field} in --format: the fields are ${Object.keys(headers)
        .map((f) => `.${f}`)
        .join(', ')}`,
    );
  }
  return { field, json };
}

/** JSON as Go's encoding/json writes a map: keys sorted, and <, > and & escaped. */
function goJson(fields: Fields): string {
  const sorted = Object.fromEntries(Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify(sorted).replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}
