// One CSV record as Go's encoding/csv reads it, which is how BuildKit and buildx read their
// comma-separated option lists (RUN --mount's value, --secret's): commas separate fields, a
// field that starts with `"` is quoted (and may then hold commas), `""` inside it is a quote.

/** What is wrong with a record, in the terms of Go's csv errors. */
export type CsvProblem = 'unterminated quote' | 'text after a closing quote' | 'a quote inside an unquoted field';

/** The fields of `text`; `bad` makes the error for a malformed record. */
export function csvRecord(text: string, bad: (problem: CsvProblem) => Error): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw bad('unterminated quote');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
      if (i < text.length && text[i] !== ',') throw bad('text after a closing quote');
    } else {
      const end = text.indexOf(',', i);
      field = text.slice(i, end < 0 ? text.length : end);
      if (field.includes('"')) throw bad('a quote inside an unquoted field');
      i = end < 0 ? text.length : end;
    }
    fields.push(field);
    if (i >= text.length) return fields;
    i++; // the comma
  }
}
