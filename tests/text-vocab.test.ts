// Domain vocabulary trimming (specials, single characters, most frequent pieces; no [UNK] on the corpus) and the MLM text set that leaves out finetune-text's test split.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WordPieceTokenizer } from '../src/text/wordpiece.js';
import { trimVocab } from '../src/train-text/vocab.js';
import { textSplits } from '../src/train-text/data.js';
import { readTexts } from '../src/cli/pretrain-mlm.js';
import { GraftError } from '../src/runtime/errors.js';

const VOCAB = join(import.meta.dirname, '..', '..', 'shared', 'assets', 'bert', 'vocab.txt');

describe('trimVocab', () => {
  it('keeps the special tokens, every single-character piece the corpus uses and the most frequent pieces; the corpus still tokenizes without [UNK]', async () => {
    const full = await WordPieceTokenizer.fromVocabFile(VOCAB);
    const texts = ['The cheapest pills online!!! Click here: www.example.com', 'Meeting moved to Thursday; see the agenda attached.', 'the the the click click'];
    const { tokenizer: t, coverage, corpusTokens } = trimVocab(full, texts, 70);
    expect(t.size).toBe(70);
    expect(t.idToToken.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    // original relative order kept (ids ascending in the full vocabulary)
    const orig = t.idToToken.map((p) => full.vocab.get(p)!);
    expect(orig).toEqual([...orig].sort((a, b) => a - b));
    // the most frequent multi-character pieces are in
    expect(t.vocab.has('the')).toBe(true);
    expect(t.vocab.has('click')).toBe(true);
    const counts = new Map<string, number>();
    for (const s of texts) for (const p of full.tokenize(s)) counts.set(p, (counts.get(p) ?? 0) + 1);
    expect(corpusTokens).toBe([...counts.values()].reduce((a, b) => a + b, 0));
    let kept = 0;
    for (const [p, n] of counts) if (t.vocab.has(p)) kept += n;
    expect(coverage).toBeCloseTo(kept / corpusTokens, 12);
    expect(coverage).toBeLessThan(1);
    for (const s of texts) expect(t.tokenize(s)).not.toContain('[UNK]');
    // a vocabulary that keeps everything covers everything
    expect(trimVocab(full, texts, 5000).coverage).toBe(1);
    expect(() => trimVocab(full, texts, 20)).toThrow(GraftError);
  });

  it("pretrain-mlm's SpamAssassin texts leave out exactly finetune-text's test split", async () => {
    const { train, test } = await textSplits({ data: 'spam-assassin', testFraction: 0.2, seed: 0 });
    const mlm = await readTexts('spam-assassin', undefined, { testFraction: 0.2, seed: 0 });
    expect(mlm.length).toBe(train.length);
    const seen = new Set(mlm);
    const trainTexts = new Set(train.map((e) => e.text));
    // a test text may equal a train text (duplicate mails); every other test text is absent
    const leaked = test.filter((e) => seen.has(e.text) && !trainTexts.has(e.text));
    expect(leaked.length).toBe(0);
    expect(test.filter((e) => !trainTexts.has(e.text)).length).toBeGreaterThan(0.9 * test.length);
    const all = await readTexts('spam-assassin', undefined, { testFraction: 0, seed: 0 });
    expect(all.length).toBe(train.length + test.length);
  });
});
