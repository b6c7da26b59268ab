// Labelled text for the text CLI: SpamAssassin or a JSONL file, split stratified and seeded into train / test (cut to limits).
import { existsSync } from 'node:fs';
import { GraftError } from '../runtime/errors.js';
import type { LabelledArrayDataset, TextExample } from '../data/dataset.js';
import { loadSpamAssassin } from '../data/spam-assassin.js';
import { loadJsonl } from '../data/text-files.js';
import { stratifiedSplit } from '../data/split.js';

async function labelled(data: string): Promise<LabelledArrayDataset<TextExample>> {
  if (data === 'spam-assassin') return loadSpamAssassin({ maxChars: 2000 });
  if (!data.endsWith('.jsonl')) throw new GraftError(`--data must be 'spam-assassin' or a .jsonl file with text and label fields, got '${data}'`);
  if (!existsSync(data)) throw new GraftError(`--data ${data}: no such file`);
  return loadJsonl(data);
}

/** Stratified seeded split of --data, then the same split cut to the limits (stratified again). */
export async function textSplits(f: { data: string; trainLimit?: number; testLimit?: number; testFraction?: number; seed?: number }): Promise<{ train: TextExample[]; test: TextExample[] }> {
  const ds = await labelled(f.data);
  const tf = f.testFraction ?? 0.2;
  const seed = f.seed ?? 0;
  const [tr, te] = stratifiedSplit(ds, { fractions: [1 - tf, tf], seed });
  const cut = (s: NonNullable<typeof tr>, limit: number | undefined, salt: number): TextExample[] => {
    const idx = limit !== undefined && limit < s.length ? stratifiedSplit(s, { counts: [limit], seed: seed + salt })[0]! : s;
    return Array.from({ length: idx.length }, (_, i) => idx.get(i));
  };
  return { train: cut(tr!, f.trainLimit, 1), test: cut(te!, f.testLimit, 2) };
}

