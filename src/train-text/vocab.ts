// Domain vocabulary: cut a WordPiece vocabulary to the pieces a corpus actually uses (small output layer for MLM from scratch).
import { GraftError } from '../runtime/errors.js';
import { WordPieceTokenizer } from '../text/wordpiece.js';

export interface TrimVocabResult {
  tokenizer: WordPieceTokenizer;
  /** Share of the corpus' tokens (under the full vocabulary) that the kept pieces cover. */
  coverage: number;
  /** Tokens of the corpus under the full vocabulary. */
  corpusTokens: number;
}

/**
 * A vocabulary of at most `size` entries taken from `tok`: its special tokens first ([PAD], [UNK], [CLS],
 * [SEP], [MASK] where present), then every character of the corpus' pieces as a piece with and without
 * the '##' prefix (where the vocabulary has it, so any word of the corpus can still be spelled), then the most frequent
 * remaining pieces of `texts` tokenized with the full vocabulary (ties: lower original id first). Kept
 * pieces stay in their original relative order. Tokenizer options are the BERT-uncased defaults.
 */
export function trimVocab(tok: WordPieceTokenizer, texts: readonly string[], size: number): TrimVocabResult {
  if (!Number.isInteger(size) || size < 8) throw new GraftError(`vocabulary size must be an integer ≥ 8, got ${size}`);
  const counts = new Map<number, number>();
  let corpusTokens = 0;
  for (const t of texts) {
    for (const piece of tok.tokenize(t)) {
      const id = tok.id(piece);
      counts.set(id, (counts.get(id) ?? 0) + 1);
      corpusTokens++;
    }
  }
  const keep = new Set<number>();
  for (const s of ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']) if (tok.vocab.has(s)) keep.add(tok.vocab.get(s)!);
  // every character of the corpus as a word start and as a continuation: any word stays spellable
  for (const id of counts.keys()) {
    const p = tok.idToToken[id]!;
    for (const ch of p.startsWith('##') ? p.slice(2) : p) {
      for (const piece of [ch, `##${ch}`]) if (tok.vocab.has(piece)) keep.add(tok.vocab.get(piece)!);
    }
  }
  if (keep.size > size) throw new GraftError(`vocabulary size ${size} is below the ${keep.size} special and single-character pieces this corpus needs`);
  const ranked = [...counts.entries()].filter(([id]) => !keep.has(id)).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  for (const [id] of ranked) {
    if (keep.size >= size) break;
    keep.add(id);
  }
  let covered = 0;
  for (const [id, n] of counts) if (keep.has(id)) covered += n;
  const ids = [...keep].sort((a, b) => a - b);
  return { tokenizer: new WordPieceTokenizer(ids.map((i) => tok.idToToken[i]!)), coverage: corpusTokens ? covered / corpusTokens : 1, corpusTokens };
}
