// Labelled text from JSONL ({"text": ..., "label": ...} per line) and CSV (header row) files; label names → ids.
import { readFile } from 'node:fs/promises';
import { GraftError } from '../runtime/errors.js';
import { ArrayDataset, LabelledArrayDataset, type TextExample } from './dataset.js';
import { parseCsv } from './csv.js';

export interface TextFileOptions {
  /** Field/column holding the text (default 'text'). */
  textField?: string;
  /** Field/column holding a second text (sentence pairs); absent by default. */
  pairField?: string;
  /** Field/column holding the label (default 'label'); null loads unlabelled text (label -1, no classes). */
  labelField?: string | null;
  /**
   * Class names in id order. Without it: labels that are all non-negative integers (JSON numbers, or digit
   * strings in CSV) are used as ids (classes '0'..'max'); otherwise the distinct names sorted give the ids.
   */
  classes?: readonly string[];
}

export interface CsvFileOptions extends TextFileOptions {
  delimiter?: string;
}

interface Raw {
  line: number;
  text: string;
  pair?: string;
  label: string | number | null;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new GraftError(`${path}: cannot read (${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message})`);
  }
}

type LabelledOpts = TextFileOptions & { labelField?: string };
type UnlabelledOpts = TextFileOptions & { labelField: null };

/** One JSON object per non-blank line. */
export function loadJsonl(path: string, opts?: LabelledOpts): Promise<LabelledArrayDataset<TextExample>>;
export function loadJsonl(path: string, opts: UnlabelledOpts): Promise<ArrayDataset<TextExample>>;
export async function loadJsonl(path: string, opts: TextFileOptions = {}): Promise<ArrayDataset<TextExample>> {
  const tf = opts.textField ?? 'text';
  const lf = opts.labelField === undefined ? 'label' : opts.labelField;
  const lines = (await readText(path)).replace(/^\uFEFF/, '').split('\n');
  const raws: Raw[] = [];
  lines.forEach((l, k) => {
    const line = k + 1;
    if (!l.trim()) return;
    let o: unknown;
    try {
      o = JSON.parse(l);
    } catch (e) {
      throw new GraftError(`${path}:${line}: invalid JSON (${(e as Error).message.split('\n')[0]})`);
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new GraftError(`${path}:${line}: expected a JSON object`);
    const r = o as Record<string, unknown>;
    const text = r[tf];
    if (typeof text !== 'string') throw new GraftError(`${path}:${line}: "${tf}" is ${text === undefined ? 'missing' : `not a string (${typeof text})`}`);
    const raw: Raw = { line, text, label: null };
    if (opts.pairField !== undefined) {
      const p = r[opts.pairField];
      if (typeof p !== 'string') throw new GraftError(`${path}:${line}: "${opts.pairField}" is ${p === undefined ? 'missing' : 'not a string'}`);
      raw.pair = p;
    }
    if (lf !== null) {
      const v = r[lf];
      if (v === undefined || v === null) throw new GraftError(`${path}:${line}: "${lf}" is missing`);
      if (typeof v !== 'string' && !(typeof v === 'number' && Number.isInteger(v) && v >= 0)) {
        throw new GraftError(`${path}:${line}: "${lf}" must be a string or a non-negative integer, got ${JSON.stringify(v)}`);
      }
      raw.label = v;
    }
    raws.push(raw);
  });
  return toDataset(raws, path, lf, opts.classes, false);
}

/** A CSV file whose first record names the columns. */
export function loadCsv(path: string, opts?: CsvFileOptions & { labelField?: string }): Promise<LabelledArrayDataset<TextExample>>;
export function loadCsv(path: string, opts: CsvFileOptions & { labelField: null }): Promise<ArrayDataset<TextExample>>;
export async function loadCsv(path: string, opts: CsvFileOptions = {}): Promise<ArrayDataset<TextExample>> {
  const tf = opts.textField ?? 'text';
  const lf = opts.labelField === undefined ? 'label' : opts.labelField;
  const records = parseCsv(await readText(path), { delimiter: opts.delimiter, name: path });
  const head = records[0];
  if (!head) throw new GraftError(`${path}: empty CSV (expected a header row)`);
  const col = (name: string): number => {
    const c = head.fields.indexOf(name);
    if (c < 0) throw new GraftError(`${path}:${head.line}: no column "${name}" in the header (${head.fields.join(', ')})`);
    return c;
  };
  const tc = col(tf);
  const pc = opts.pairField !== undefined ? col(opts.pairField) : -1;
  const lc = lf !== null ? col(lf) : -1;
  const raws: Raw[] = records.slice(1).map((r) => {
    if (r.fields.length !== head.fields.length) {
      throw new GraftError(`${path}:${r.line}: ${r.fields.length} fields, the header has ${head.fields.length}`);
    }
    const raw: Raw = { line: r.line, text: r.fields[tc]!, label: lc >= 0 ? r.fields[lc]! : null };
    if (pc >= 0) raw.pair = r.fields[pc]!;
    return raw;
  });
  return toDataset(raws, path, lf, opts.classes, true);
}

/** Map raw labels to ids (see TextFileOptions.classes) and build the dataset. */
function toDataset(raws: Raw[], path: string, lf: string | null, given: readonly string[] | undefined, csv: boolean): ArrayDataset<TextExample> {
  const mk = (r: Raw, label: number): TextExample => (r.pair !== undefined ? { text: r.text, pair: r.pair, label } : { text: r.text, label });
  if (lf === null) return new ArrayDataset(raws.map((r) => mk(r, -1)));
  const isInt = (v: string | number): boolean => (typeof v === 'number' ? true : csv && /^(0|[1-9]\d*)$/.test(v));
  if (given) {
    const ids = new Map(given.map((c, i) => [c, i]));
    return new LabelledArrayDataset(
      raws.map((r) => {
        const v = r.label!;
        const id = typeof v === 'number' ? (v < given.length ? v : undefined) : ids.get(v);
        if (id === undefined) throw new GraftError(`${path}:${r.line}: label ${JSON.stringify(v)} is not one of the classes (${given.join(', ')})`);
        return mk(r, id);
      }),
      given,
    );
  }
  const numeric = raws.filter((r) => isInt(r.label!));
  if (numeric.length === raws.length) {
    const ids = raws.map((r) => Number(r.label));
    const max = ids.reduce((a, b) => Math.max(a, b), -1);
    return new LabelledArrayDataset(
      raws.map((r, k) => mk(r, ids[k]!)),
      Array.from({ length: max + 1 }, (_, i) => String(i)),
    );
  }
  const firstNum = raws.find((r) => typeof r.label === 'number');
  if (firstNum) throw new GraftError(`${path}:${firstNum.line}: label ${firstNum.label} is a number but other labels are names; use one kind or pass classes`);
  const names = [...new Set(raws.map((r) => String(r.label)))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const ids = new Map(names.map((c, i) => [c, i]));
  return new LabelledArrayDataset(
    raws.map((r) => mk(r, ids.get(String(r.label))!)),
    names,
  );
}
