// BERT text normalisation and pre-tokenisation (the rules of HF's BertNormalizer and BertPreTokenizer).

export interface NormalizeOptions {
  cleanText: boolean;
  handleChineseChars: boolean;
  /** null = follow `lowercase` (HF default). */
  stripAccents: boolean | null;
  lowercase: boolean;
}

const CONTROL = /\p{C}/u; // Cc, Cf, Cs, Co, Cn
const WHITESPACE = /\s/u;
const MARK_NONSPACING = /\p{Mn}/u;
const UNICODE_PUNCT = /\p{P}/u;

function isWhitespace(c: string): boolean {
  return c === '\t' || c === '\n' || c === '\r' || WHITESPACE.test(c);
}

function isControl(c: string): boolean {
  if (c === '\t' || c === '\n' || c === '\r') return false;
  return CONTROL.test(c);
}

/** CJK Unified Ideograph blocks (not Hangul, Hiragana or Katakana), as in the original BERT. */
export function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** ASCII punctuation (incl. $ + < = > ^ ` | ~) or any Unicode P* character. */
export function isPunctuation(c: string): boolean {
  const cp = c.codePointAt(0)!;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return UNICODE_PUNCT.test(c);
}

export function normalizeBert(text: string, o: NormalizeOptions): string {
  let out = '';
  for (const c of text) {
    const cp = c.codePointAt(0)!;
    if (o.cleanText) {
      if (cp === 0 || cp === 0xfffd || isControl(c)) continue;
      if (isWhitespace(c)) {
        out += ' ';
        continue;
      }
    }
    if (o.handleChineseChars && isChineseChar(cp)) out += ` ${c} `;
    else out += c;
  }
  if (o.stripAccents ?? o.lowercase) {
    let s = '';
    for (const c of out.normalize('NFD')) if (!MARK_NONSPACING.test(c)) s += c;
    out = s;
  }
  if (o.lowercase) out = out.toLowerCase();
  return out;
}

/** Split on whitespace (dropped) and punctuation (each its own token). */
export function preTokenizeBert(text: string): string[] {
  const words: string[] = [];
  let cur = '';
  for (const c of text) {
    if (isWhitespace(c)) {
      if (cur) words.push(cur);
      cur = '';
    } else if (isPunctuation(c)) {
      if (cur) words.push(cur);
      words.push(c);
      cur = '';
    } else cur += c;
  }
  if (cur) words.push(cur);
  return words;
}
