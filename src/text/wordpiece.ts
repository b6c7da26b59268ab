// WordPiece tokenizer for BERT: vocab.txt or tokenizer.json, special tokens, truncation, pairs, padding.
import { readFile } from 'node:fs/promises';
import { GraftError } from '../runtime/errors.js';
import { normalizeBert, preTokenizeBert, type NormalizeOptions } from './bert-normalize.js';

export interface WordPieceOptions extends Partial<NormalizeOptions> {
  unkToken?: string;
  prefix?: string;
  maxInputCharsPerWord?: number;
  /** Tokens matched verbatim in the raw text before normalisation (HF "added tokens"). */
  specialTokens?: string[];
}

export interface EncodeOptions {
  /** Second sequence (sentence pairs get token type 1). */
  pair?: string;
  /** Total length including [CLS]/[SEP]; longer inputs are truncated (longest-first for pairs). */
  maxLength?: number;
  /** Pad with [PAD] up to maxLength (attention mask 0 there). */
  padToMaxLength?: boolean;
  addSpecialTokens?: boolean;
}

export interface Encoding {
  inputIds: number[];
  tokenTypeIds: number[];
  attentionMask: number[];
  tokens: string[];
}

export class WordPieceTokenizer {
  readonly vocab: Map<string, number>;
  readonly idToToken: string[];
  private readonly norm: NormalizeOptions;
  private readonly unk: string;
  private readonly prefix: string;
  private readonly maxChars: number;
  private readonly special: string[];

  constructor(tokens: string[], o: WordPieceOptions = {}) {
    this.idToToken = tokens;
    this.vocab = new Map(tokens.map((t, i) => [t, i]));
    this.norm = {
      cleanText: o.cleanText ?? true,
      handleChineseChars: o.handleChineseChars ?? true,
      stripAccents: o.stripAccents ?? null,
      lowercase: o.lowercase ?? true,
    };
    this.unk = o.unkToken ?? '[UNK]';
    this.prefix = o.prefix ?? '##';
    this.maxChars = o.maxInputCharsPerWord ?? 100;
    this.special = (o.specialTokens ?? ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']).filter((t) => this.vocab.has(t));
    for (const t of [this.unk, '[CLS]', '[SEP]', '[PAD]']) {
      if (!this.vocab.has(t)) throw new GraftError(`vocabulary has no '${t}' token`);
    }
  }

  /** From a vocab.txt (one token per line, id = line number). */
  static async fromVocabFile(path: string, o: WordPieceOptions = {}): Promise<WordPieceTokenizer> {
    const text = await readFile(path, 'utf8').catch((e: Error) => {
      throw new GraftError(`cannot read vocabulary ${path}: ${e.message}`);
    });
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return new WordPieceTokenizer(lines.map((l) => l.replace(/\r$/, '')), o);
  }

  /** From a Hugging Face tokenizer.json with a BertNormalizer + WordPiece model. */
  static async fromTokenizerJson(path: string): Promise<WordPieceTokenizer> {
    let j: TokenizerJson;
    try {
      j = JSON.parse(await readFile(path, 'utf8')) as TokenizerJson;
    } catch (e) {
      throw new GraftError(`cannot read tokenizer ${path}: ${(e as Error).message}`);
    }
    if (j.model?.type !== 'WordPiece' || !j.model.vocab) throw new GraftError(`${path}: not a WordPiece tokenizer (model type ${j.model?.type})`);
    const tokens: string[] = [];
    for (const [t, id] of Object.entries(j.model.vocab)) tokens[id] = t;
    const n = j.normalizer ?? {};
    return new WordPieceTokenizer(tokens, {
      cleanText: n.clean_text ?? true,
      handleChineseChars: n.handle_chinese_chars ?? true,
      stripAccents: n.strip_accents ?? null,
      lowercase: n.lowercase ?? true,
      unkToken: j.model.unk_token,
      prefix: j.model.continuing_subword_prefix,
      maxInputCharsPerWord: j.model.max_input_chars_per_word,
      specialTokens: (j.added_tokens ?? []).map((t) => t.content),
    });
  }

  get size(): number {
    return this.idToToken.length;
  }

  id(token: string): number {
    return this.vocab.get(token) ?? this.vocab.get(this.unk)!;
  }

  /** Greedy longest-match-first WordPiece of one pre-token; the whole word is [UNK] if any piece fails. */
  wordPiece(word: string): string[] {
    const chars = [...word];
    if (chars.length > this.maxChars) return [this.unk];
    const out: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length;
      let found: string | null = null;
      while (start < end) {
        const piece = (start > 0 ? this.prefix : '') + chars.slice(start, end).join('');
        if (this.vocab.has(piece)) {
          found = piece;
          break;
        }
        end--;
      }
      if (found === null) return [this.unk];
      out.push(found);
      start = end;
    }
    return out;
  }

  /** Text → WordPiece tokens (special tokens in the text are kept whole). */
  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const part of this.splitSpecial(text)) {
      if (part.special) out.push(part.text);
      else for (const w of preTokenizeBert(normalizeBert(part.text, this.norm))) out.push(...this.wordPiece(w));
    }
    return out;
  }

  encode(text: string, o: EncodeOptions = {}): Encoding {
    const add = o.addSpecialTokens ?? true;
    let a = this.tokenize(text);
    let b = o.pair !== undefined ? this.tokenize(o.pair) : null;
    if (o.maxLength !== undefined) {
      const budget = o.maxLength - (add ? (b ? 3 : 2) : 0);
      if (budget < 0) throw new GraftError(`maxLength ${o.maxLength} leaves no room for the special tokens`);
      if (!b) a = a.slice(0, budget);
      else [a, b] = truncateLongestFirst(a, b, budget);
    }
    const tokens = add ? ['[CLS]', ...a, '[SEP]', ...(b ? [...b, '[SEP]'] : [])] : [...a, ...(b ?? [])];
    const typeIds = tokens.map((_, i) => (b && i >= (add ? a.length + 2 : a.length) ? 1 : 0));
    const ids = tokens.map((t) => this.id(t));
    const mask = ids.map(() => 1);
    if (o.padToMaxLength && o.maxLength !== undefined) {
      const pad = this.vocab.get('[PAD]')!;
      while (ids.length < o.maxLength) {
        ids.push(pad);
        typeIds.push(0);
        mask.push(0);
        tokens.push('[PAD]');
      }
    }
    return { inputIds: ids, tokenTypeIds: typeIds, attentionMask: mask, tokens };
  }

  /** Ids → text: drop special tokens ([UNK] included, as HF does), glue ## pieces, clean spaces. */
  decode(ids: number[], o: { skipSpecialTokens?: boolean } = {}): string {
    const skip = o.skipSpecialTokens ?? true;
    const words: string[] = [];
    for (const id of ids) {
      const t = this.idToToken[id] ?? this.unk;
      if (skip && this.special.includes(t)) continue;
      if (t.startsWith(this.prefix) && words.length) words[words.length - 1] += t.slice(this.prefix.length);
      else words.push(t);
    }
    return cleanUpSpaces(words.join(' '));
  }

  private splitSpecial(text: string): { text: string; special: boolean }[] {
    if (!this.special.length) return [{ text, special: false }];
    const parts: { text: string; special: boolean }[] = [];
    let i = 0;
    let last = 0;
    while (i < text.length) {
      const hit = this.special.find((s) => text.startsWith(s, i));
      if (hit) {
        if (i > last) parts.push({ text: text.slice(last, i), special: false });
        parts.push({ text: hit, special: true });
        i += hit.length;
        last = i;
      } else i++;
    }
    if (last < text.length) parts.push({ text: text.slice(last), special: false });
    return parts;
  }
}

/** Hugging Face's `clean_up_tokenization_spaces` rules. */
function cleanUpSpaces(s: string): string {
  return s
    .replaceAll(' .', '.')
    .replaceAll(' ?', '?')
    .replaceAll(' !', '!')
    .replaceAll(' ,', ',')
    .replaceAll(" ' ", "'")
    .replaceAll(" n't", "n't")
    .replaceAll(" 'm", "'m")
    .replaceAll(" 's", "'s")
    .replaceAll(" 've", "'ve")
    .replaceAll(" 're", "'re");
}

/** HF's longest-first rule: shorten the longer sequence first, then split the budget evenly. */
function truncateLongestFirst(a: string[], b: string[], max: number): [string[], string[]] {
  if (a.length + b.length <= max) return [a, b];
  const swap = a.length > b.length;
  let n1 = swap ? b.length : a.length;
  let n2: number;
  if (n1 > max) n2 = n1;
  else n2 = Math.max(n1, max - n1);
  if (n1 + n2 > max) {
    n1 = Math.floor(max / 2);
    n2 = n1 + (max % 2);
  }
  const [na, nb] = swap ? [n2, n1] : [n1, n2];
  return [a.slice(0, na), b.slice(0, nb)];
}

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; unk_token?: string; continuing_subword_prefix?: string; max_input_chars_per_word?: number };
  normalizer?: { clean_text?: boolean; handle_chinese_chars?: boolean; strip_accents?: boolean | null; lowercase?: boolean };
  added_tokens?: { content: string }[];
}
