// Seeded PRNG, stratified/random splits, subsets and the DataLoader: reproducible orders, dropLast, resume mid-epoch.
import { describe, expect, it } from 'vitest';
import {
  ArrayDataset,
  DataLoader,
  LabelledArrayDataset,
  Rng,
  deriveSeed,
  loadFashionMnist,
  randomSplit,
  stratifiedIndices,
  stratifiedSplit,
  subset,
  type BatchContext,
} from '../src/data/index.js';
import { GraftError } from '../src/runtime/errors.js';

/** Labels with deliberately uneven classes: class c has 10 + 7c + (c % 3) members, shuffled in. */
function unevenLabels(classes: number, seed: number): Int32Array {
  const out: number[] = [];
  for (let c = 0; c < classes; c++) for (let k = 0; k < 10 + 7 * c + (c % 3); k++) out.push(c);
  return new Rng(seed).shuffle(Int32Array.from(out));
}

function classCounts(labels: ArrayLike<number>, idx: ArrayLike<number>, classes: number): number[] {
  const n = new Array<number>(classes).fill(0);
  for (let k = 0; k < idx.length; k++) n[labels[idx[k]!]!]!++;
  return n;
}

describe('Rng', () => {
  it('is deterministic per seed and differs across seeds / derived streams', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 100 }, () => a.uint32());
    expect(Array.from({ length: 100 }, () => b.uint32())).toEqual(xs);
    const c = new Rng(43);
    expect(Array.from({ length: 100 }, () => c.uint32())).not.toEqual(xs);
    expect(deriveSeed(7, 1, 2)).toBe(deriveSeed(7, 1, 2));
    const seen = new Set<number>();
    for (let s = 0; s < 20; s++) for (let e = 0; e < 20; e++) seen.add(deriveSeed(s, e));
    expect(seen.size).toBe(400);
    expect(deriveSeed(1, 2, 3)).not.toBe(deriveSeed(1, 3, 2));
    expect(deriveSeed(1, 2 ** 33)).not.toBe(deriveSeed(1, 0));
    expect(() => new Rng(1.5)).toThrow(GraftError);
  });

  it('int(n) is uniform (chi-square), float in [0, 1), permutation is a permutation', () => {
    const r = new Rng(9);
    const n = 7;
    const draws = 70000;
    const counts = new Array<number>(n).fill(0);
    for (let i = 0; i < draws; i++) counts[r.int(n)]!++;
    const e = draws / n;
    const chi2 = counts.reduce((s, o) => s + (o - e) ** 2 / e, 0);
    expect(chi2).toBeLessThan(22.5); // 6 d.o.f., p ≈ 0.001
    for (let i = 0; i < 1000; i++) {
      const f = r.float();
      expect(f >= 0 && f < 1).toBe(true);
    }
    const p = r.permutation(1000);
    expect(Array.from(p).sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(p)).not.toEqual(Array.from({ length: 1000 }, (_, i) => i));
    // Each position of a 4-permutation takes each value ~1/4 of the time.
    const pos = new Array<number>(16).fill(0);
    for (let t = 0; t < 8000; t++) r.permutation(4).forEach((v, i) => pos[4 * i + v]!++);
    for (const c of pos) expect(Math.abs(c - 2000)).toBeLessThan(200);
  });
});

describe('splits', () => {
  const labels = unevenLabels(6, 1);
  const items = Array.from(labels, (label, i) => ({ label, i }));
  const ds = new LabelledArrayDataset(items, ['a', 'b', 'c', 'd', 'e', 'f']);

  it('stratified by fractions: disjoint, sizes exact, every class within 1 of its share', () => {
    for (const fractions of [[0.8, 0.2], [0.7, 0.15, 0.15], [0.5, 0.25]]) {
      const parts = stratifiedIndices(labels, { fractions, seed: 5 });
      const n = labels.length;
      const all = parts.flatMap((p) => Array.from(p));
      expect(new Set(all).size).toBe(all.length);
      const sum = fractions.reduce((a, b) => a + b, 0);
      expect(all.length).toBe(Math.round(n * sum));
      const total = classCounts(labels, Int32Array.from({ length: n }, (_, i) => i), 6);
      parts.forEach((p, s) => {
        expect(Math.abs(p.length - (fractions[s]! / sum) * Math.round(n * sum))).toBeLessThanOrEqual(1);
        const cc = classCounts(labels, p, 6);
        cc.forEach((k, c) => expect(Math.abs(k - (total[c]! * p.length) / n), `split ${s} class ${c}`).toBeLessThanOrEqual(1));
        for (let k = 1; k < p.length; k++) expect(p[k]! > p[k - 1]!).toBe(true);
      });
      if (sum === 1) expect(all.length).toBe(n);
    }
  });

  it('stratified by counts; same seed → same indices, other seed → different', () => {
    const a = stratifiedIndices(labels, { counts: [50, 30], seed: 11 });
    const b = stratifiedIndices(labels, { counts: [50, 30], seed: 11 });
    const c = stratifiedIndices(labels, { counts: [50, 30], seed: 12 });
    expect(a.map((x) => x.length)).toEqual([50, 30]);
    expect(a.map((x) => Array.from(x))).toEqual(b.map((x) => Array.from(x)));
    expect(Array.from(a[0]!)).not.toEqual(Array.from(c[0]!));
    const total = classCounts(labels, Int32Array.from({ length: labels.length }, (_, i) => i), 6);
    classCounts(labels, a[0]!, 6).forEach((k, cl) => expect(Math.abs(k - (total[cl]! * 50) / labels.length)).toBeLessThanOrEqual(1));
  });

  it('stratifiedSplit returns labelled subsets over the same examples; randomSplit is reproducible', () => {
    const [train, val] = stratifiedSplit(ds, { fractions: [0.9, 0.1], seed: 3 });
    expect(train!.length + val!.length).toBe(ds.length);
    expect(train!.classes).toEqual(ds.classes);
    for (let k = 0; k < val!.length; k++) {
      expect(val!.get(k)).toBe(ds.get(val!.indices[k]!));
      expect(val!.labelOf(k)).toBe(labels[val!.indices[k]!]);
    }
    // Also works on a dataset that is not Labelled (labels read through get()).
    const plain = new ArrayDataset(items);
    const [p1] = stratifiedSplit(plain, { fractions: [0.9, 0.1], seed: 3 });
    expect(Array.from(p1!.indices)).toEqual(Array.from(train!.indices));
    const r1 = randomSplit(ds, { counts: [40, 20], seed: 8 });
    const r2 = randomSplit(ds, { counts: [40, 20], seed: 8 });
    expect(r1.map((s) => Array.from(s.indices))).toEqual(r2.map((s) => Array.from(s.indices)));
    expect(new Set([...r1[0]!.indices, ...r1[1]!.indices]).size).toBe(60);
  });

  it('stratified split of real Fashion-MNIST (first 3,000): per-class counts within 1 of the share', async () => {
    const fm = await loadFashionMnist({ split: 'train', limit: 3000 });
    const [a, b] = stratifiedSplit(fm, { fractions: [5 / 6, 1 / 6], seed: 2024 });
    expect([a!.length, b!.length]).toEqual([2500, 500]);
    const total = classCounts(fm.labels, Int32Array.from({ length: 3000 }, (_, i) => i), 10);
    classCounts(fm.labels, b!.indices, 10).forEach((k, c) => expect(Math.abs(k - total[c]! / 6)).toBeLessThanOrEqual(1));
  });

  it('rejects bad arguments with GraftErrors', () => {
    expect(() => stratifiedIndices(labels, { fractions: [0.8, 0.3], seed: 1 })).toThrow(/add up to at most 1/);
    expect(() => stratifiedIndices(labels, { counts: [labels.length, 1], seed: 1 })).toThrow(/more than the/);
    expect(() => stratifiedIndices(labels, { seed: 1 })).toThrow(/exactly one of fractions or counts/);
    expect(() => stratifiedIndices(labels, { counts: [1], seed: 0.5 })).toThrow(/seed must be an integer/);
    expect(() => subset(ds, [0, ds.length])).toThrow(GraftError);
    expect(() => subset(ds, [0, 1.5])).toThrow(GraftError);
  });
});

describe('DataLoader', () => {
  const ds = new ArrayDataset(Array.from({ length: 23 }, (_, i) => i));
  const ids = (xs: number[]) => xs;

  it('without shuffle: dataset order, last batch partial or dropped', () => {
    const l = new DataLoader(ds, { batchSize: 5, collate: ids });
    expect(l.length).toBe(5);
    const batches = [...l];
    expect(batches.map((b) => b.length)).toEqual([5, 5, 5, 5, 3]);
    expect(batches.flat()).toEqual(Array.from({ length: 23 }, (_, i) => i));
    expect(l.state()).toEqual({ epoch: 1, index: 0, seed: 0 });
    const d = new DataLoader(ds, { batchSize: 5, dropLast: true, collate: ids });
    expect(d.length).toBe(4);
    expect([...d].map((b) => b.length)).toEqual([5, 5, 5, 5]);
  });

  it('shuffle: a permutation per epoch, fixed by (seed, epoch), different across epochs and seeds', () => {
    const mk = (seed: number) => new DataLoader(ds, { batchSize: 4, shuffle: true, seed, collate: ids });
    const a = mk(1);
    const e0 = [...a].flat();
    const e1 = [...a].flat();
    expect([...e0].sort((x, y) => x - y)).toEqual(Array.from({ length: 23 }, (_, i) => i));
    expect(e1).not.toEqual(e0);
    const b = mk(1);
    expect([...b].flat()).toEqual(e0);
    expect([...b].flat()).toEqual(e1);
    expect([...mk(2)].flat()).not.toEqual(e0);
    expect(Array.from(mk(1).order(1))).toEqual(e1);
  });

  it('resume mid-epoch (also off a batch boundary) gives the same remaining batches, transforms and collate draws', () => {
    const seen: string[] = [];
    const opts = {
      batchSize: 4,
      shuffle: true,
      seed: 77,
      transform: (x: number, rng: Rng) => x * 1000 + rng.int(1000),
      collate: (xs: number[], ctx: BatchContext) => ({ xs, draw: ctx.rng.uint32(), epoch: ctx.epoch, start: ctx.start }),
    };
    const ref = new DataLoader(ds, opts);
    const all = [...ref, ...ref, ...ref];
    expect(all.length).toBe(18);
    // 6 batches per epoch: stop after 7 (epoch 1, batch 0), save, resume in a fresh loader.
    const run = new DataLoader(ds, opts);
    for (let k = 0; k < 7; k++) seen.push(JSON.stringify(run.next()));
    const saved = JSON.parse(JSON.stringify(run.state())) as ReturnType<typeof run.state>;
    expect(saved).toEqual({ epoch: 1, index: 4, seed: 77 });
    const resumed = new DataLoader(ds, { ...opts, seed: 0 });
    resumed.setState(saved);
    for (let k = 7; k < 18; k++) seen.push(JSON.stringify(resumed.next()));
    expect(seen).toEqual(all.map((b) => JSON.stringify(b)));
    // for..of on a resumed loader yields the rest of that epoch only.
    const r2 = new DataLoader(ds, opts);
    r2.setState({ epoch: 1, index: 8, seed: 77 });
    expect([...r2].map((b) => JSON.stringify(b))).toEqual(all.slice(8, 12).map((b) => JSON.stringify(b)));
    expect(r2.state()).toEqual({ epoch: 2, index: 0, seed: 77 });
    // An index off the batch grid: the next batch starts at that example of the epoch order.
    const r3 = new DataLoader(ds, opts);
    r3.setState({ epoch: 0, index: 6, seed: 77 });
    const b = r3.next();
    expect(b.xs.map((v) => Math.floor(v / 1000))).toEqual(Array.from(ref.order(0).slice(6, 10)));
    expect(b.xs).toEqual([...all[1]!.xs.slice(2), ...all[2]!.xs.slice(0, 2)]);
  });

  it('breaking out of for..of keeps the position; next() rolls over epochs', () => {
    const l = new DataLoader(ds, { batchSize: 10, collate: ids });
    for (const _ of l) break;
    expect(l.state()).toEqual({ epoch: 0, index: 10, seed: 0 });
    l.next();
    l.next();
    expect(l.state()).toEqual({ epoch: 0, index: 23, seed: 0 });
    expect(l.next()).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(l.state()).toEqual({ epoch: 1, index: 10, seed: 0 });
  });

  it('validates options and state', () => {
    expect(() => new DataLoader(ds, { batchSize: 0, collate: ids })).toThrow(GraftError);
    const l = new DataLoader(ds, { batchSize: 4, dropLast: true, collate: ids });
    expect(() => l.setState({ epoch: 0, index: 21, seed: 0 })).toThrow(/outside the epoch \[0, 20\]/);
    expect(() => l.setState({ epoch: -1, index: 0, seed: 0 })).toThrow(GraftError);
    const tiny = new DataLoader(new ArrayDataset([1, 2]), { batchSize: 4, dropLast: true, collate: ids });
    expect(() => tiny.next()).toThrow(/no batches/);
  });
});
