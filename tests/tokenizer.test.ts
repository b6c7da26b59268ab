// WordPiece tokenizer: ids equal Hugging Face's tokenizer on tricky strings (fixture from scripts/fixtures/tokenizer_cases.mjs).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WordPieceTokenizer } from '../src/text/wordpiece.js';

const assets = '../shared/assets/bert';
const fixture = JSON.parse(readFileSync('tests/fixtures/tokenizer-cases.json', 'utf8')) as {
  cases: { text: string; pair?: string; ids: number[]; typeIds: number[]; decoded: string }[];
};

describe('WordPiece tokenizer', async () => {
  const fromJson = await WordPieceTokenizer.fromTokenizerJson(`${assets}/bert-tiny/tokenizer.json`);
  const fromVocab = await WordPieceTokenizer.fromVocabFile(`${assets}/vocab.txt`);

  it('has the 30,522-token uncased vocabulary either way', () => {
    expect(fromJson.size).toBe(30522);
    expect(fromVocab.size).toBe(30522);
    expect(fromVocab.id('[PAD]')).toBe(0);
    expect(fromJson.id('[MASK]')).toBe(103);
  });

  for (const [name, tok] of [
    ['tokenizer.json', fromJson],
    ['vocab.txt', fromVocab],
  ] as const) {
    it(`matches Hugging Face ids on ${fixture.cases.length} tricky strings (${name})`, () => {
      for (const c of fixture.cases) {
        const e = tok.encode(c.text, { pair: c.pair });
        expect(e.inputIds, JSON.stringify(c.text)).toEqual(c.ids);
        expect(e.tokenTypeIds, JSON.stringify(c.text)).toEqual(c.typeIds);
      }
    });
  }

  it('truncates single sequences and pairs longest-first, and pads', () => {
    const t = fromVocab;
    const one = t.encode('a b c d e f g h', { maxLength: 6 });
    expect(one.tokens).toEqual(['[CLS]', 'a', 'b', 'c', 'd', '[SEP]']);
    // 8 + 2 tokens into a budget of 7: the longer side shrinks to max(2, 7-2) = 5.
    const p = t.encode('a b c d e f g h', { pair: 'x y', maxLength: 10 });
    expect(p.tokens).toEqual(['[CLS]', 'a', 'b', 'c', 'd', 'e', '[SEP]', 'x', 'y', '[SEP]']);
    expect(p.tokenTypeIds).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    // both long: budget 7 split 3 / 4 (the remainder goes to the second).
    const q = t.encode('a b c d e f', { pair: 'u v w x y z', maxLength: 10 });
    expect(q.tokens).toEqual(['[CLS]', 'a', 'b', 'c', '[SEP]', 'u', 'v', 'w', 'x', '[SEP]']);
    const padded = t.encode('hello', { maxLength: 6, padToMaxLength: true });
    expect(padded.inputIds).toEqual([101, 7592, 102, 0, 0, 0]);
    expect(padded.attentionMask).toEqual([1, 1, 1, 0, 0, 0]);
    expect(() => t.encode('x', { pair: 'y', maxLength: 2 })).toThrow(/no room/);
  });

  it('decodes like Hugging Face (special tokens skipped, ## glued, spaces cleaned)', () => {
    for (const c of fixture.cases) expect(fromVocab.decode(c.ids), JSON.stringify(c.text)).toBe(c.decoded);
  });
});
