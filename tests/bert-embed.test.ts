// `graft embed` in-process: a local folder and a hub id (local HTTP server), sentence-transformers settings, flags, one-line errors.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Command } from 'commander';
import { useRuntime } from './helpers/gpu.js';
import { expectClose } from './helpers/close.js';
import { GraftError } from '../src/runtime/errors.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { readBertConfig, bertConfigJson, bertConfig } from '../src/models/bert-config.js';
import { bertSynthCheckpoint } from '../src/models/bert-synthetic.js';
import { embedCommand, registerEmbedCommand, runEmbed } from '../src/cli/embed.js';

const ASSETS = join(import.meta.dirname, '..', '..', 'shared', 'assets', 'bert');
const fixture = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'bert-parity.json'), 'utf8')) as {
  cases: { name: string; mean_pooled: number[] }[];
};
const getRt = useRuntime();
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'graft-embed-'));
  dirs.push(d);
  return d;
};

let model = ''; // bert-tiny folder: asset config + tokenizer, synthetic weights
let server: Server;
let base = '';

beforeAll(async () => {
  model = tmp();
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) copyFileSync(join(ASSETS, 'bert-tiny', f), join(model, f));
  await writeSafetensors(join(model, 'model.safetensors'), bertSynthCheckpoint(await readBertConfig(join(model, 'config.json'))));
  // the folder served in the hub's layout: /<org>/<name>/resolve/main/<file>
  server = createServer((req, res) => {
    const m = /^\/graft-test\/tiny\/resolve\/main\/(.+)$/.exec(decodeURIComponent(req.url ?? ''));
    const file = m ? join(model, m[1]!) : '';
    if (!m || relative(model, file).startsWith('..') || !statSync(file, { throwIfNoEntry: false })?.isFile()) return void res.writeHead(404).end();
    const body = readFileSync(file);
    res.writeHead(200, { 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Run the registered command with argv; returns stdout lines. */
async function cli(...args: string[]): Promise<string[]> {
  const out: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((s: unknown) => void out.push(String(s)));
  try {
    const program = new Command().exitOverride();
    registerEmbedCommand(program);
    await program.parseAsync(['node', 'graft', 'embed', ...args]);
  } finally {
    spy.mockRestore();
  }
  return out;
}

const norm = (v: number[]): number => Math.hypot(...v);

describe('graft embed', () => {
  it('mean-pooled embedding of a local folder equals the PyTorch reference (same text, no padding)', async () => {
    const tiny = fixture.cases.find((c) => c.name === 'bert-tiny')!;
    const H = 128;
    const lines = await cli('--model', model, '--text', 'Hello, graft!', '--text', 'The quick brown fox jumps over the lazy dog.', '--json');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!) as { model: string; dim: number; embeddings: number[][]; normalized: boolean; pooling: string };
    expect(r).toMatchObject({ model, dim: H, normalized: false, pooling: 'mean' });
    expect(r.embeddings).toHaveLength(2);
    // fixture row 1 is 'Hello, graft!' (padded there, alone here: padding must not change it)
    expectClose(r.embeddings[0]!, tiny.mean_pooled.slice(H, 2 * H), { atol: 1e-4, rtol: 0 }, 'embed vs fixture');
    const n = await cli('--model', model, '--text', 'Hello, graft!', '--json', '--normalize');
    const e = (JSON.parse(n[0]!) as { embeddings: number[][] }).embeddings[0]!;
    expect(norm(e)).toBeCloseTo(1, 5);
    expectClose(e, r.embeddings[0]!.map((v) => v / norm(r.embeddings[0]!)), { atol: 1e-6 });
    // plain output: one line of numbers per text
    const plain = await cli('--model', model, '--text', 'a', '--text', 'b c');
    expect(plain).toHaveLength(2);
    expect(plain[0]!.split(' ').map(Number)).toHaveLength(H);
  }, 300_000);

  it("follows a sentence-transformers folder's Normalize module unless --no-normalize; --pooling cls", async () => {
    const st = tmp();
    for (const f of readdirSync(model)) copyFileSync(join(model, f), join(st, f));
    copyFileSync(join(ASSETS, 'all-MiniLM-L6-v2', 'modules.json'), join(st, 'modules.json'));
    mkdirSync(join(st, '1_Pooling'));
    copyFileSync(join(ASSETS, 'all-MiniLM-L6-v2', '1_Pooling', 'config.json'), join(st, '1_Pooling', 'config.json'));
    const a = await runEmbed({ model: st, text: ['graft'] }, getRt());
    expect(a.normalized).toBe(true);
    expect(norm(a.embeddings[0]!)).toBeCloseTo(1, 5);
    const b = await runEmbed({ model: st, text: ['graft'], normalize: false }, getRt());
    expect(b.normalized).toBe(false);
    expect(Math.abs(norm(b.embeddings[0]!) - 1)).toBeGreaterThan(1e-3);
    const c = await runEmbed({ model: st, text: ['graft', 'graft'], pooling: 'cls', normalize: false }, getRt());
    expect(c.pooling).toBe('cls');
    expect(c.embeddings[0]).toEqual(c.embeddings[1]);
    expect(c.embeddings[0]).not.toEqual(b.embeddings[0]);
    const lines = await cli('--model', st, '--text', 'graft', '--no-normalize', '--json');
    expect((JSON.parse(lines[0]!) as { normalized: boolean }).normalized).toBe(false);
  }, 300_000);

  it('a hub id: downloaded from GRAFT_HUB_URL into --cache-dir, then served offline', async () => {
    const cache = tmp();
    process.env.GRAFT_HUB_URL = base;
    try {
      const local = await runEmbed({ model, text: ['offline works'] }, getRt());
      const hub = await runEmbed({ model: 'graft-test/tiny', text: ['offline works'], cacheDir: cache, json: true }, getRt());
      expect(hub.embeddings).toEqual(local.embeddings);
      expect(readdirSync(join(cache, 'hub', 'graft-test--tiny', 'main')).sort()).toEqual(
        ['.graft-hub.json', 'config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json'].sort(),
      );
      process.env.GRAFT_HUB_URL = 'http://127.0.0.1:9';
      const off = await runEmbed({ model: 'graft-test/tiny', text: ['offline works'], cacheDir: cache, offline: true, json: true }, getRt());
      expect(off.embeddings).toEqual(local.embeddings);
      await expect(runEmbed({ model: 'graft-test/other', text: ['x'], cacheDir: cache, offline: true, json: true }, getRt())).rejects.toThrow(
        /offline mode: config\.json of graft-test\/other@main is not in the cache/,
      );
    } finally {
      delete process.env.GRAFT_HUB_URL;
    }
  }, 300_000);

  it('bad input gives one-line GraftErrors: missing folder, bad config, corrupt weights, shape mismatch, no text', async () => {
    const oneLine = async (flags: Parameters<typeof embedCommand>[0], re: RegExp) => {
      const e = await embedCommand(flags).catch((x: unknown) => x);
      expect(e, String(e)).toBeInstanceOf(GraftError);
      const msg = (e as Error).message;
      expect(msg).toMatch(re);
      expect(msg).not.toContain('\n');
    };
    await oneLine({ model: '/nonexistent/bert', text: ['x'] }, /--model \/nonexistent\/bert: no such folder, and not a hub model id/);
    await oneLine({ model, text: [] }, /give at least one --text/);
    const bad = tmp();
    for (const f of readdirSync(model)) copyFileSync(join(model, f), join(bad, f));
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(model, 'config.json'), 'utf8')), hidden_act: 'swish' }));
    await oneLine({ model: bad, text: ['x'] }, /hidden_act 'swish' is not supported/);
    const corrupt = tmp();
    for (const f of readdirSync(model)) copyFileSync(join(model, f), join(corrupt, f));
    truncateSync(join(corrupt, 'model.safetensors'), 100_000);
    await oneLine({ model: corrupt, text: ['x'] }, /model\.safetensors: .*(truncated|data section)/);
    const wrong = tmp();
    for (const f of readdirSync(model)) copyFileSync(join(model, f), join(wrong, f));
    const cfg = bertConfig({ ...(await readBertConfig(join(model, 'config.json'))), intermediateSize: 256 });
    writeFileSync(join(wrong, 'config.json'), JSON.stringify(bertConfigJson(cfg)));
    await oneLine({ model: wrong, text: ['x'] }, /6 tensor\(s\) do not fit the model built from config\.json: encoder\.layer\.0\.intermediate\.dense\.weight: checkpoint \[512, 128\], model \[256, 128\]/);
    await oneLine({ model, text: ['x'], pooling: 'max' as 'mean' }, /--pooling must be 'mean' or 'cls'/);
  }, 300_000);
});
