// Text data: CSV/JSONL loading (quoting edge cases, label mapping, errors with line numbers), batching, MLM masking.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ArrayDataset,
  DataLoader,
  IGNORE_INDEX,
  encodeBatch,
  loadCsv,
  loadJsonl,
  loadSpamAssassin,
  maskTokens,
  mlmCollate,
  parseCsv,
  specialTokenIds,
  textCollate,
  type TextExample,
} from '../src/data/index.js';
import { WordPieceTokenizer } from '../src/text/wordpiece.js';
import { GraftError } from '../src/runtime/errors.js';

const fixtures = 'tests/fixtures/data';
const tmp = mkdtempSync(join(tmpdir(), 'graft-text-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
};

async function rejects(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GraftError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  for (const q of parts) expect(msg).toMatch(q);
}

function throwsLine(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GraftError);
  for (const q of parts) expect((err as Error).message).toMatch(q);
}

describe('CSV parser', () => {
  it('quoted fields with delimiters, newlines, escaped quotes; CRLF/LF/CR; BOM; empty fields; start lines', () => {
    const text = '\uFEFFa,b,c\r\n"x, y","say ""hi""",\n\n"multi\nline\r\nfield",2,3\r4,"",\n';
    const r = parseCsv(text);
    expect(r.map((x) => x.fields)).toEqual([
      ['a', 'b', 'c'],
      ['x, y', 'say "hi"', ''],
      ['multi\nline\r\nfield', '2', '3'],
      ['4', '', ''],
    ]);
    expect(r.map((x) => x.line)).toEqual([1, 2, 4, 7]);
    expect(parseCsv('a;b\n1;"2;3"', { delimiter: ';' }).map((x) => x.fields)).toEqual([
      ['a', 'b'],
      ['1', '2;3'],
    ]);
    expect(parseCsv('')).toEqual([]);
    expect(parseCsv('only').map((x) => x.fields)).toEqual([['only']]);
  });

  it('malformed quoting is an error naming the line', () => {
    throwsLine(() => parseCsv('a,b\n1,"open\n\n2,3', { name: 'f.csv' }), /^f\.csv:2: unterminated quoted field$/);
    throwsLine(() => parseCsv('a,b\n1,x"y"\n', { name: 'f.csv' }), /^f\.csv:2: quote inside an unquoted field/);
    throwsLine(() => parseCsv('a,b\n"ok\nstill"junk,2\n', { name: 'f.csv' }), /^f\.csv:3: unexpected "j" after a closing quote/);
    throwsLine(() => parseCsv('a', { delimiter: '"' }), /delimiter/);
  });
});

describe('text files', () => {
  it('CSV fixture: header columns, quoted commas/newlines/quotes, label names sorted into ids', async () => {
    const ds = await loadCsv(`${fixtures}/reviews.csv`);
    expect(ds.classes).toEqual(['neg', 'neutral', 'pos']);
    expect(ds.items).toEqual([
      { text: 'Great product, would buy again', label: 2 },
      { text: 'He said "wow" twice', label: 2 },
      { text: 'Line one\r\nline two', label: 0 },
      { text: '', label: 0 },
      { text: 'plain text', label: 1 },
    ]);
    const fixed = await loadCsv(`${fixtures}/reviews.csv`, { classes: ['pos', 'neg', 'neutral'] });
    expect(fixed.items.map((e) => e.label)).toEqual([0, 0, 1, 1, 2]);
    const unl = await loadCsv(`${fixtures}/reviews.csv`, { labelField: null, textField: 'id' });
    expect(unl.items.map((e) => [e.text, e.label])).toEqual([
      ['1', -1],
      ['2', -1],
      ['3', -1],
      ['4', -1],
      ['5', -1],
    ]);
  });

  it('JSONL fixture: blank lines skipped, names → ids; integer labels used as ids', async () => {
    const ds = await loadJsonl(`${fixtures}/reviews.jsonl`);
    expect(ds.classes).toEqual(['neg', 'neutral', 'pos']);
    expect(ds.items).toEqual([
      { text: 'I loved it', label: 2 },
      { text: 'Terrible, "broken" on arrival', label: 0 },
      { text: 'Okay I guess\nsecond line', label: 1 },
    ]);
    const num = await loadJsonl(`${fixtures}/numeric.jsonl`);
    expect(num.classes).toEqual(['0', '1', '2']);
    expect(num.items.map((e) => e.label)).toEqual([0, 2]);
    const digits = write('digits.csv', 'text,label\na,1\nb,0\n');
    expect((await loadCsv(digits)).items.map((e) => e.label)).toEqual([1, 0]);
    const pairs = write('pairs.jsonl', '{"premise":"a","hypothesis":"b","label":"entail"}\n');
    expect((await loadJsonl(pairs, { textField: 'premise', pairField: 'hypothesis' })).items).toEqual([{ text: 'a', pair: 'b', label: 0 }]);
  });

  it('errors are one line naming the file and line', async () => {
    await rejects(loadJsonl(join(tmp, 'nope.jsonl')), 'nope.jsonl', /no such file/);
    const badJson = write('bad.jsonl', '{"text":"a","label":"x"}\n\n{"text": "b", "label": }\n');
    await rejects(loadJsonl(badJson), `${badJson}:3: invalid JSON`);
    const noText = write('notext.jsonl', '{"text":"a","label":"x"}\n{"label":"y"}\n');
    await rejects(loadJsonl(noText), `${noText}:2: "text" is missing`);
    const numText = write('numtext.jsonl', '{"text":5,"label":"y"}\n');
    await rejects(loadJsonl(numText), `${numText}:1: "text" is not a string`);
    const noLabel = write('nolabel.jsonl', '{"text":"a","label":"x"}\n{"text":"b"}\n');
    await rejects(loadJsonl(noLabel), `${noLabel}:2: "label" is missing`);
    const floatLabel = write('float.jsonl', '{"text":"a","label":1.5}\n');
    await rejects(loadJsonl(floatLabel), `${floatLabel}:1: "label" must be a string or a non-negative integer`);
    const mixed = write('mixed.jsonl', '{"text":"a","label":"x"}\n{"text":"b","label":3}\n');
    await rejects(loadJsonl(mixed), `${mixed}:2: label 3 is a number`);
    const array = write('array.jsonl', '[1,2]\n');
    await rejects(loadJsonl(array), `${array}:1: expected a JSON object`);
    const unknown = write('unknown.jsonl', '{"text":"a","label":"x"}\n{"text":"b","label":"z"}\n');
    await rejects(loadJsonl(unknown, { classes: ['x', 'y'] }), `${unknown}:2: label "z" is not one of the classes`);
    const ragged = write('ragged.csv', 'text,label\n"a\nb",x\nc,y,extra\n');
    await rejects(loadCsv(ragged), `${ragged}:4: 3 fields, the header has 2`);
    const noCol = write('nocol.csv', 'body,label\na,x\n');
    await rejects(loadCsv(noCol), `${noCol}:1: no column "text"`);
    const unterminated = write('unterminated.csv', 'text,label\na,x\n"b,y\n');
    await rejects(loadCsv(unterminated), `${unterminated}:3: unterminated quoted field`);
    await rejects(loadCsv(write('empty.csv', '')), /empty CSV/);
  });
});

describe('text batching and MLM', async () => {
  const tok = await WordPieceTokenizer.fromVocabFile('../shared/assets/bert/vocab.txt');
  const examples: TextExample[] = [
    { text: 'The quick brown fox jumps over the lazy dog.', label: 1 },
    { text: 'Short.', label: 0 },
    { text: 'A sentence', pair: 'and its pair', label: 2 },
  ];

  it('fixed padding: rows equal the tokenizer with padToMaxLength', () => {
    const b = encodeBatch(tok, examples, { maxLength: 16 });
    expect(b.shape).toEqual([3, 16]);
    examples.forEach((ex, i) => {
      const e = tok.encode(ex.text, { pair: ex.pair, maxLength: 16, padToMaxLength: true });
      expect(Array.from(b.inputIds.subarray(16 * i, 16 * i + 16))).toEqual(e.inputIds);
      expect(Array.from(b.attentionMask.subarray(16 * i, 16 * i + 16))).toEqual(e.attentionMask);
      expect(Array.from(b.tokenTypeIds.subarray(16 * i, 16 * i + 16))).toEqual(e.tokenTypeIds);
    });
    expect(Array.from(b.labels)).toEqual([1, 0, 2]);
  });

  it('dynamic padding: longest row rounded up to a multiple of 8; truncation at maxLength', () => {
    const lens = examples.map((ex) => tok.encode(ex.text, { pair: ex.pair }).inputIds.length);
    const b = encodeBatch(tok, examples, { maxLength: 64, padding: 'longest' });
    expect(b.shape).toEqual([3, Math.ceil(Math.max(...lens) / 8) * 8]);
    const T = b.shape[1];
    lens.forEach((n, i) => {
      expect(Array.from(b.attentionMask.subarray(i * T, (i + 1) * T)).reduce((a, x) => a + x, 0)).toBe(n);
      expect(b.inputIds[i * T + n - 1]).toBe(tok.id('[SEP]'));
      for (let t = n; t < T; t++) expect(b.inputIds[i * T + t]).toBe(tok.id('[PAD]'));
    });
    const short = encodeBatch(tok, examples, { maxLength: 6, padding: 'longest', multipleOf: 1 });
    expect(short.shape).toEqual([3, 6]);
    expect(Array.from(short.inputIds.subarray(0, 6))).toEqual(tok.encode(examples[0]!.text, { maxLength: 6 }).inputIds);
    const collate = textCollate(tok, { maxLength: 16, padding: 'longest' });
    expect(collate(examples).shape).toEqual([3, 16]);
  });

  it('maskTokens on real text: ≈15% of eligible tokens, 80/10/10, specials and padding never masked', async () => {
    const spam = await loadSpamAssassin({ limit: 400, maxChars: 1500, groups: ['easy-ham-1', 'spam-2'] });
    const b = encodeBatch(tok, spam.items, { maxLength: 128 });
    const specials = new Set(specialTokenIds(tok));
    expect([...specials].sort((x, y) => x - y)).toEqual([0, 100, 101, 102, 103]);
    const maskId = tok.id('[MASK]');
    const m = maskTokens(b.inputIds, b.attentionMask, { seed: 1234, vocabSize: tok.size, maskId, specialIds: specials });
    let eligible = 0;
    let selected = 0;
    let asMask = 0;
    let kept = 0;
    let random = 0;
    const randomIds = new Set<number>();
    const violations: string[] = [];
    for (let i = 0; i < b.inputIds.length; i++) {
      const orig = b.inputIds[i]!;
      const isEligible = b.attentionMask[i] !== 0 && !specials.has(orig);
      if (isEligible) eligible++;
      if (m.labels[i] === IGNORE_INDEX) {
        if (m.inputIds[i] !== orig) violations.push(`${i}: unselected token changed`);
        continue;
      }
      if (!isEligible) violations.push(`${i}: special or padding token ${orig} selected`);
      if (m.labels[i] !== orig) violations.push(`${i}: label ${m.labels[i]} is not the original ${orig}`);
      selected++;
      if (m.inputIds[i] === maskId) asMask++;
      else if (m.inputIds[i] === orig) kept++;
      else {
        random++;
        randomIds.add(m.inputIds[i]!);
        if (!(m.inputIds[i]! >= 0 && m.inputIds[i]! < tok.size)) violations.push(`${i}: random id ${m.inputIds[i]} outside the vocabulary`);
      }
    }
    expect(violations.slice(0, 5)).toEqual([]);
    expect(eligible).toBeGreaterThan(20000);
    // Binomial tolerances (≥ 4 standard deviations).
    expect(Math.abs(selected / eligible - 0.15)).toBeLessThan(4 * Math.sqrt((0.15 * 0.85) / eligible) + 1e-3);
    expect(Math.abs(asMask / selected - 0.8)).toBeLessThan(4 * Math.sqrt((0.8 * 0.2) / selected));
    expect(Math.abs(kept / selected - 0.1)).toBeLessThan(4 * Math.sqrt((0.1 * 0.9) / selected));
    expect(Math.abs(random / selected - 0.1)).toBeLessThan(4 * Math.sqrt((0.1 * 0.9) / selected));
    expect(randomIds.size).toBeGreaterThan(0.9 * random);
    // Seeded: same seed → same masking; another seed → different.
    const again = maskTokens(b.inputIds, b.attentionMask, { seed: 1234, vocabSize: tok.size, maskId, specialIds: specials });
    expect(Buffer.compare(Buffer.from(again.inputIds.buffer), Buffer.from(m.inputIds.buffer))).toBe(0);
    const other = maskTokens(b.inputIds, b.attentionMask, { seed: 1235, vocabSize: tok.size, maskId, specialIds: specials });
    expect(Array.from(other.labels)).not.toEqual(Array.from(m.labels));
    // prob 1 selects every eligible token and nothing else.
    const all = maskTokens(b.inputIds, b.attentionMask, { seed: 1, prob: 1, vocabSize: tok.size, maskId, specialIds: specials });
    expect(all.labels.filter((l) => l !== IGNORE_INDEX).length).toBe(eligible);
    expect(() => maskTokens(b.inputIds, b.attentionMask, { vocabSize: 10, maskId, specialIds: [] })).toThrow(/rng or seed/);
    expect(() => maskTokens([1, 2], [1], { seed: 1, vocabSize: 10, maskId, specialIds: [] })).toThrow(GraftError);
  });

  it('mlmCollate through the DataLoader: masks reproducible per (seed, epoch, position) and after resume', async () => {
    const spam = await loadSpamAssassin({ limit: 40, maxChars: 400 });
    const ds = new ArrayDataset(spam.items);
    const opts = { batchSize: 8, shuffle: true, seed: 5, collate: mlmCollate(tok, { maxLength: 64, padding: 'longest' as const }) };
    const a = new DataLoader(ds, opts);
    const ref = [...a, ...a].map((x) => [Array.from(x.inputIds), Array.from(x.labels), x.shape]);
    const b = new DataLoader(ds, opts);
    b.next();
    b.next();
    b.next();
    const c = new DataLoader(ds, opts);
    c.setState(b.state());
    const rest = Array.from({ length: 7 }, () => c.next()).map((x) => [Array.from(x.inputIds), Array.from(x.labels), x.shape]);
    expect(rest).toEqual(ref.slice(3));
    const first = a.next();
    expect(first.shape[1] % 8).toBe(0);
    expect(first.labels.some((l) => l !== IGNORE_INDEX)).toBe(true);
  });
});
