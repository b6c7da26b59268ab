// Hub downloads against a local HTTP server in the hub's URL layout: full, resumed, Range ignored, bad checksum, 404, offline.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { hubDownload, hubSnapshotDir, hubFileUrl, isHubModelId, HUB_OPTIONAL_FILES } from '../src/io/hub.js';
import { downloadFile, etagSha256, HttpNotFoundError, IntegrityError } from '../src/io/http-download.js';

interface FileSpec {
  body: Buffer;
  /** Serve via a 302 to /cdn/<sha> with X-Linked-ETag / X-Linked-Size (how the hub serves LFS files). */
  lfs?: boolean;
  /** On the first request, send the headers and half the body, then cut the connection. */
  dropOnce?: boolean;
  /** Answer 200 with the whole body even when a Range is asked. */
  ignoreRange?: boolean;
  /** Announce this sha256 instead of the real one. */
  etag?: string;
}

interface Logged {
  path: string;
  range: string | undefined;
  auth: string | undefined;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A tiny hub: /<repo>/resolve/<rev>/<file>, LFS redirects to /cdn/<sha256>. */
class FakeHub {
  files = new Map<string, FileSpec>();
  log: Logged[] = [];
  private dropped = new Set<string>();
  server: Server;
  /** Where LFS redirects point (another server tests that credentials are not forwarded). */
  cdnBase: string | null = null;

  constructor() {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  put(repo: string, rev: string, file: string, spec: FileSpec): void {
    this.files.set(`/${repo}/resolve/${encodeURIComponent(rev)}/${file}`, spec);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = decodeURI(req.url ?? '');
    this.log.push({ path, range: req.headers.range, auth: req.headers.authorization });
    if (path.startsWith('/cdn/')) {
      const spec = [...this.files.values()].find((s) => sha(s.body) === path.slice(5));
      if (!spec) return void res.writeHead(404).end();
      return this.send(path, spec, req, res, false);
    }
    const spec = this.files.get(path);
    if (!spec) return void res.writeHead(404, { 'content-type': 'text/plain' }).end('Entry not found');
    if (spec.lfs) {
      const s = spec.etag ?? sha(spec.body);
      res.writeHead(302, {
        location: `${this.cdnBase ?? ''}/cdn/${sha(spec.body)}`,
        'x-linked-etag': `"${s}"`,
        'x-linked-size': String(spec.body.length),
        etag: '"0123456789abcdef0123456789abcdef01234567"',
      });
      return void res.end();
    }
    this.send(path, spec, req, res, true);
  }

  private send(path: string, spec: FileSpec, req: IncomingMessage, res: ServerResponse, withEtag: boolean): void {
    const body = spec.body;
    const etag = withEtag ? { etag: `"${spec.etag ?? sha(body)}"` } : {};
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m && !spec.ignoreRange) {
      const start = Number(m[1]);
      if (start >= body.length) return void res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      res.writeHead(206, { 'content-length': String(body.length - start), 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, ...etag });
      return void res.end(body.subarray(start));
    }
    res.writeHead(200, { 'content-length': String(body.length), ...etag });
    if (spec.dropOnce && !this.dropped.has(path)) {
      this.dropped.add(path);
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  }
}

const hub = new FakeHub();
let base = '';
let cache = '';
const REPO = 'graft-test/bert-mini';

beforeAll(async () => {
  base = await hub.start();
});
afterAll(async () => {
  await hub.stop();
});

function freshCache(): string {
  cache = mkdtempSync(join(tmpdir(), 'graft-hub-'));
  return cache;
}
afterEach(() => {
  if (cache) rmSync(cache, { recursive: true, force: true });
  cache = '';
  hub.log = [];
});

/** A small BERT-like repo: config, LFS weights, vocab and tokenizer_config (other optional files 404). */
function bertRepo(repo: string, weights: FileSpec): Record<string, Buffer> {
  const files: Record<string, Buffer> = {
    'config.json': Buffer.from('{"model_type": "bert", "hidden_size": 8}\n'),
    'vocab.txt': Buffer.from('[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n'),
    'tokenizer_config.json': Buffer.from('{"do_lower_case": true}\n'),
    'model.safetensors': weights.body,
  };
  for (const [f, b] of Object.entries(files)) hub.put(repo, 'main', f, f === 'model.safetensors' ? weights : { body: b });
  return files;
}

const requestsFor = (file: string) => hub.log.filter((l) => l.path.endsWith(`/${file}`) || (file === 'cdn' && l.path.startsWith('/cdn/')));

describe('hub download', () => {
  it('model ids, URLs and cache folders', () => {
    expect(isHubModelId('sentence-transformers/all-MiniLM-L6-v2')).toBe(true);
    expect(isHubModelId('bert-base-uncased')).toBe(true);
    for (const bad of ['', '../x', 'a/b/c', '/abs', 'a/..', 'a b']) expect(isHubModelId(bad), bad).toBe(false);
    expect(hubFileUrl('org/m', '1_Pooling/config.json', 'refs/pr/1', 'http://h/')).toBe('http://h/org/m/resolve/refs%2Fpr%2F1/1_Pooling/config.json');
    expect(hubSnapshotDir('org/m', 'v1.0', '/c')).toBe('/c/hub/org--m/v1.0');
    expect(etagSha256('W/"' + 'a'.repeat(64) + '"')).toBe('a'.repeat(64));
    expect(etagSha256('"0123456789abcdef0123456789abcdef01234567"')).toBeNull();
  });

  it('downloads config, LFS weights (redirect, verified) and whichever tokenizer files exist; second call is a cache hit', async () => {
    const weights = randomBytes(300_000);
    const files = bertRepo(REPO, { body: weights, lfs: true });
    const events: string[] = [];
    let last = 0;
    const snap = await hubDownload(REPO, {
      baseUrl: base,
      cacheDir: freshCache(),
      onFile: (f, s) => events.push(`${f}:${s}`),
      onProgress: (p) => {
        if (p.file === 'model.safetensors') {
          expect(p.done).toBeGreaterThanOrEqual(last);
          expect(p.total).toBe(weights.length);
          last = p.done;
        }
      },
    });
    expect(last).toBe(weights.length);
    expect(snap.dir).toBe(join(cache, 'hub', 'graft-test--bert-mini', 'main'));
    for (const [f, b] of Object.entries(files)) expect(readFileSync(join(snap.dir, f)).equals(b), f).toBe(true);
    expect(new Set(snap.files)).toEqual(new Set(Object.keys(files)));
    expect(new Set(snap.missing)).toEqual(new Set(HUB_OPTIONAL_FILES.filter((f) => !(f in files))));
    expect(snap.downloaded).toHaveLength(4);
    expect(events).toContain('tokenizer.json:missing');
    expect(events).toContain('model.safetensors:downloaded');
    expect(readdirSync(snap.dir).filter((f) => f.endsWith('.part'))).toEqual([]);
    // the weights came from the CDN hop
    expect(requestsFor('cdn')).toHaveLength(1);

    hub.log = [];
    const again = await hubDownload(REPO, { baseUrl: base, cacheDir: cache });
    expect(hub.log).toEqual([]);
    expect(again.downloaded).toEqual([]);
    expect(new Set(again.files)).toEqual(new Set(snap.files));
  });

  it('resumes with a Range request after the server drops the connection mid-file', async () => {
    const repo = 'graft-test/dropper';
    const weights = randomBytes(1_000_003);
    bertRepo(repo, { body: weights, dropOnce: true });
    const snap = await hubDownload(repo, { baseUrl: base, cacheDir: freshCache(), files: ['config.json', 'model.safetensors'] });
    expect(readFileSync(join(snap.dir, 'model.safetensors')).equals(weights)).toBe(true);
    const reqs = requestsFor('model.safetensors');
    expect(reqs.length).toBe(2);
    expect(reqs[0]!.range).toBeUndefined();
    const m = /^bytes=(\d+)-$/.exec(reqs[1]!.range ?? '');
    expect(m, `second request range: ${reqs[1]!.range}`).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(Number(m![1])).toBeLessThan(weights.length);
  });

  it('continues a .part left by an earlier run (Range), and restarts when the server ignores Range', async () => {
    const body = randomBytes(200_001);
    hub.put('o/r', 'main', 'w.bin', { body });
    hub.put('o/r', 'main', 'w2.bin', { body, ignoreRange: true });
    const dir = freshCache();
    const dest = join(dir, 'w.bin');
    writeFileSync(`${dest}.part`, body.subarray(0, 70_000));
    const r = await downloadFile(hubFileUrl('o/r', 'w.bin', 'main', base), dest, { retries: 0 });
    expect(r.resumed).toBe(true);
    expect(r.restarted).toBe(false);
    expect(r.verified).toBe(sha(body));
    expect(readFileSync(dest).equals(body)).toBe(true);
    expect(requestsFor('w.bin').map((l) => l.range)).toEqual(['bytes=70000-']);

    // A .part holding garbage and a server that answers 200 to the Range: the file is rewritten from zero.
    const dest2 = join(dir, 'w2.bin');
    writeFileSync(`${dest2}.part`, Buffer.alloc(150_000, 7));
    const r2 = await downloadFile(hubFileUrl('o/r', 'w2.bin', 'main', base), dest2, { retries: 0 });
    expect(r2.restarted).toBe(true);
    expect(readFileSync(dest2).equals(body)).toBe(true);
    expect(existsSync(`${dest2}.part`)).toBe(false);
  });

  it('rejects a checksum mismatch and leaves nothing under the final name', async () => {
    const repo = 'graft-test/corrupt';
    bertRepo(repo, { body: randomBytes(50_000), lfs: true, etag: 'f'.repeat(64) });
    const c = freshCache();
    await expect(hubDownload(repo, { baseUrl: base, cacheDir: c })).rejects.toThrow(/sha256 .* does not match the expected f{64}/);
    const dir = hubSnapshotDir(repo, 'main', c);
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
    expect(existsSync(join(dir, 'model.safetensors.part'))).toBe(false);
    expect(existsSync(join(dir, '.graft-hub.json'))).toBe(false);
    // downloadFile reports the same as a typed error
    hub.put('o/r', 'main', 'bad.bin', { body: randomBytes(1000), etag: '0'.repeat(64) });
    await expect(downloadFile(hubFileUrl('o/r', 'bad.bin', 'main', base), join(c, 'bad.bin'))).rejects.toBeInstanceOf(IntegrityError);
  });

  it('404: optional files are skipped, a missing config or missing weights is an error', async () => {
    const c = freshCache();
    await expect(hubDownload('graft-test/nothing-here', { baseUrl: base, cacheDir: c })).rejects.toThrow(/config\.json not found on the hub/);
    hub.put('graft-test/no-weights', 'main', 'config.json', { body: Buffer.from('{}') });
    await expect(hubDownload('graft-test/no-weights', { baseUrl: base, cacheDir: c })).rejects.toThrow(/neither model\.safetensors nor model\.safetensors\.index\.json/);
    await expect(downloadFile(hubFileUrl('o/r', 'nope', 'main', base), join(c, 'nope'))).rejects.toBeInstanceOf(HttpNotFoundError);
  });

  it('sharded checkpoints: the index and every shard it names', async () => {
    const repo = 'graft-test/sharded';
    const s1 = randomBytes(40_000);
    const s2 = randomBytes(30_000);
    const index = { metadata: {}, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors', c: 'model-00001-of-00002.safetensors' } };
    hub.put(repo, 'v2', 'config.json', { body: Buffer.from('{}') });
    hub.put(repo, 'v2', 'model.safetensors.index.json', { body: Buffer.from(JSON.stringify(index)) });
    hub.put(repo, 'v2', 'model-00001-of-00002.safetensors', { body: s1, lfs: true });
    hub.put(repo, 'v2', 'model-00002-of-00002.safetensors', { body: s2, lfs: true });
    const snap = await hubDownload(repo, { baseUrl: base, cacheDir: freshCache(), revision: 'v2' });
    expect(snap.dir.endsWith(join('graft-test--sharded', 'v2'))).toBe(true);
    expect(readFileSync(join(snap.dir, 'model-00001-of-00002.safetensors')).equals(s1)).toBe(true);
    expect(readFileSync(join(snap.dir, 'model-00002-of-00002.safetensors')).equals(s2)).toBe(true);
    expect(snap.missing).not.toContain('model.safetensors');
    // offline: the sharded snapshot is served from the cache
    const off = await hubDownload(repo, { baseUrl: 'http://127.0.0.1:9', cacheDir: cache, revision: 'v2', offline: true });
    expect(off.files).toContain('model-00002-of-00002.safetensors');
  });

  it('offline mode: cache hits work without a server, misses name the file; GRAFT_OFFLINE / HF_HUB_OFFLINE', async () => {
    const repo = 'graft-test/offline';
    bertRepo(repo, { body: randomBytes(10_000), lfs: true });
    const c = freshCache();
    await hubDownload(repo, { baseUrl: base, cacheDir: c });
    hub.log = [];
    const dead = 'http://127.0.0.1:9';
    const snap = await hubDownload(repo, { baseUrl: dead, cacheDir: c, offline: true, force: true });
    expect(snap.files).toContain('model.safetensors');
    expect(snap.files).toContain('vocab.txt');
    expect(hub.log).toEqual([]);
    await expect(hubDownload('graft-test/never-fetched', { baseUrl: base, cacheDir: c, offline: true })).rejects.toThrow(
      /offline mode: config\.json of graft-test\/never-fetched@main is not in the cache/,
    );
    // weights missing from an otherwise cached folder
    const partial = hubSnapshotDir('graft-test/partial', 'main', c);
    mkdirSync(partial, { recursive: true });
    writeFileSync(join(partial, 'config.json'), '{}');
    await expect(hubDownload('graft-test/partial', { cacheDir: c, offline: true })).rejects.toThrow(/model\.safetensors of graft-test\/partial@main is not in the cache/);
    for (const env of ['GRAFT_OFFLINE', 'HF_HUB_OFFLINE']) {
      process.env[env] = '1';
      try {
        await expect(hubDownload('graft-test/never-fetched', { baseUrl: base, cacheDir: c })).rejects.toThrow(/offline mode/);
      } finally {
        delete process.env[env];
      }
    }
    expect(hub.log).toEqual([]);
  });

  it('sends the token to the hub but not to a CDN on another host; GRAFT_HUB_URL picks the server', async () => {
    const cdn = new FakeHub();
    const cdnBase = await cdn.start();
    try {
      const body = randomBytes(5000);
      const repo = 'graft-test/private';
      hub.put(repo, 'main', 'model.safetensors', { body, lfs: true });
      cdn.put(repo, 'main', 'model.safetensors', { body }); // so /cdn/<sha> resolves there
      hub.cdnBase = cdnBase;
      process.env.GRAFT_HUB_URL = base;
      const snap = await hubDownload(repo, { cacheDir: freshCache(), token: 'secret', files: ['model.safetensors'] });
      expect(readFileSync(join(snap.dir, 'model.safetensors')).equals(body)).toBe(true);
      expect(requestsFor('model.safetensors')[0]!.auth).toBe('Bearer secret');
      expect(cdn.log).toHaveLength(1);
      expect(cdn.log[0]!.auth).toBeUndefined();
    } finally {
      delete process.env.GRAFT_HUB_URL;
      hub.cdnBase = null;
      await cdn.stop();
    }
  });
});
