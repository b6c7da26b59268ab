// RFC 4180 CSV parser: quoted fields with delimiters, newlines and "" escapes; records carry their line numbers.
import { GraftError } from '../runtime/errors.js';

export interface CsvRecord {
  /** 1-based line on which the record starts. */
  line: number;
  fields: string[];
}

export interface CsvParseOptions {
  delimiter?: string;
  /** Names the source in errors. */
  name?: string;
}

/**
 * Parse CSV text into records. LF, CRLF or CR end records outside quotes; a leading BOM is dropped; blank
 * lines are skipped. A quote may only open a field; inside a quoted field "" is a literal quote. Errors
 * (quote inside an unquoted field, text after a closing quote, unterminated quote) name the line.
 */
export function parseCsv(text: string, opts: CsvParseOptions = {}): CsvRecord[] {
  const d = opts.delimiter ?? ',';
  const name = opts.name ?? 'CSV';
  if (d.length !== 1 || d === '"' || d === '\n' || d === '\r') throw new GraftError(`${name}: delimiter must be one character other than a quote or newline, got ${JSON.stringify(d)}`);
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: CsvRecord[] = [];
  let line = 1;
  let i = 0;
  const n = s.length;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let blank = true;
    // One record.
    for (;;) {
      let field = '';
      if (s[i] === '"') {
        blank = false;
        const openLine = line;
        i++;
        for (;;) {
          if (i >= n) throw new GraftError(`${name}:${openLine}: unterminated quoted field`);
          const c = s[i]!;
          if (c === '"') {
            if (s[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === '\n' || (c === '\r' && s[i + 1] !== '\n')) line++;
          field += c;
          i++;
        }
        if (i < n && s[i] !== d && s[i] !== '\n' && s[i] !== '\r') throw new GraftError(`${name}:${line}: unexpected ${JSON.stringify(s[i])} after a closing quote`);
      } else {
        const from = i;
        while (i < n && s[i] !== d && s[i] !== '\n' && s[i] !== '\r') {
          if (s[i] === '"') throw new GraftError(`${name}:${line}: quote inside an unquoted field (quote the whole field and double inner quotes)`);
          i++;
        }
        field = s.slice(from, i);
        if (field.length) blank = false;
      }
      fields.push(field);
      if (i < n && s[i] === d) {
        blank = false;
        i++;
        continue;
      }
      break;
    }
    // End of record: newline or end of text.
    if (s[i] === '\r') i++;
    if (s[i] === '\n') i++;
    if (!(blank && fields.length === 1)) records.push({ line: start, fields });
    line++;
  }
  return records;
}
